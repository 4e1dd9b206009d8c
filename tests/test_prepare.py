"""PreparedScan: the working grid, its points, and the cleaned full-resolution grid."""
import numpy as np
import pytest

from iaenet.data.datasets import open_dataset
from iaenet.data.preprocess import preprocess_scan
from iaenet.data.scan import Scan
from iaenet.prepare import prepare_clean, prepare_scan


def test_prepared_scan_matches_preprocessing_and_keeps_the_full_grid(mvtec_tiny):
    scan = open_dataset(mvtec_tiny, "cable_gland", "test")[0]
    prepared = prepare_scan(scan, 64)
    reference = preprocess_scan(scan, 64)
    assert np.array_equal(prepared.scan.points, reference.points)
    assert np.array_equal(prepared.scan.gt, reference.gt)
    points, index = reference.valid_points()
    assert np.array_equal(prepared.points, points) and np.array_equal(prepared.index, index)
    assert prepared.grid_shape == (64, 64) and prepared.full.shape == (100, 100, 3)
    # the working grid is a nearest sampling of the cleaned full grid
    rows = (np.arange(64) * 100) // 64
    assert np.array_equal(prepared.scan.points, prepared.full[rows[:, None], rows[None, :]])
    assert np.array_equal(prepared.point_gt(), prepared.scan.gt.reshape(-1)[index])
    again = prepare_clean(Scan(points=prepared.full, name="clean"), 64)
    assert np.array_equal(again.points, prepared.points)


def test_cloud_is_used_as_is():
    cloud = np.random.default_rng(0).random((50, 3)).astype(np.float32) + 0.1
    prepared = prepare_scan(Scan(points=cloud, name="cloud"))
    assert prepared.full is None and prepared.grid_shape is None
    assert np.array_equal(prepared.points, cloud) and np.array_equal(prepared.index, np.arange(50))


def test_nothing_left_is_an_error_naming_the_scan():
    grid = np.zeros((40, 40, 3), np.float32)
    grid[21, 21] = (0.01, 0.01, 0.5)  # not on the 8 x 8 sampling (rows and columns 0, 5, 10, ...)
    with pytest.raises(ValueError, match="lonely"):
        prepare_scan(Scan(points=grid, name="lonely"), 8, remove_background=False)
