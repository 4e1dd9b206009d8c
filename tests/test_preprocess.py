"""Preprocessing: corner-aligned nearest resize, padding, RANSAC plane, grid components, agreement
with the references' Open3D pipeline on real scans."""
import numpy as np
import pytest
import tifffile

from iaenet.data.datasets import open_dataset
from iaenet.data.preprocess import (fit_background_plane, foreground_mask, largest_grid_component,
                                    nearest_indices, pad_to_square, preprocess_scan, remove_background,
                                    resize_nearest_like, resize_organized)
from iaenet.data.scan import Scan

# ----------------------------------------------------------------------------- resize and pad


@pytest.mark.parametrize("source", [400, 800, 600, 100, 224, 57])
def test_nearest_indices_match_torch_legacy_nearest(source):
    torch = pytest.importorskip("torch")
    ramp = torch.arange(source, dtype=torch.float64).view(1, 1, source, 1)
    sampled = torch.nn.functional.interpolate(ramp, size=(224, 1), mode="nearest").view(-1).numpy()
    np.testing.assert_array_equal(nearest_indices(source, 224), sampled.astype(np.int64))


def test_resize_organized_matches_torch_on_points(rng):
    torch = pytest.importorskip("torch")
    points = rng.random((300, 400, 3)).astype(np.float32)
    points[rng.random((300, 400)) < 0.3] = 0
    expected = torch.nn.functional.interpolate(torch.from_numpy(points).permute(2, 0, 1)[None],
                                               size=(224, 224), mode="nearest")[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(resize_organized(points), expected)


def test_gt_follows_the_points():
    # each point stores its own source pixel; the resized gt must mark exactly the pixels whose
    # point came from an anomalous source pixel
    rows, cols = np.mgrid[0:400, 0:400]
    points = np.stack([rows + 1, cols + 1, np.ones_like(rows)], axis=-1).astype(np.float32)
    gt = ((rows - 200) ** 2 + (cols - 150) ** 2) < 30 ** 2
    small_points, small_gt = resize_organized(points), resize_nearest_like(gt)
    source = small_points[..., :2].astype(int) - 1
    np.testing.assert_array_equal(small_gt, gt[source[..., 0], source[..., 1]])


def test_pad_to_square_centres():
    array = np.arange(2 * 5).reshape(2, 5) + 1
    padded = pad_to_square(array)
    assert padded.shape == (5, 5)
    np.testing.assert_array_equal(padded[1:3], array)
    assert not padded[[0, 3, 4]].any()
    assert pad_to_square(np.ones((3, 3, 3))).shape == (3, 3, 3)


def test_resize_bad_input():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        resize_organized(np.zeros((10, 3), np.float32))
    with pytest.raises(ValueError, match="positive integer"):
        resize_nearest_like(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="H, W > 0"):
        resize_nearest_like(np.zeros((0, 4)), 8)


# ----------------------------------------------------------------------------- plane and components


def _table_with_box(rng, size=120, noise=0.0005):
    """A tilted table at ~0.6 m seen from above with a 2 cm high box on it, a speck, missing pixels."""
    v, u = np.mgrid[0:size, 0:size] * 0.0005  # 0.5 mm pixels
    z = 0.6 + 0.1 * u + 0.05 * v  # tilted plane
    box = (np.abs(u - 0.03) < 0.01) & (np.abs(v - 0.03) < 0.012)
    speck = (np.abs(u - 0.05) < 0.001) & (np.abs(v - 0.008) < 0.001)  # 2 cm above the table, far away
    height = np.where(box, 0.02, 0.0) + np.where(speck, 0.02, 0.0)
    normal = np.array([-0.1, -0.05, 1.0]) / np.linalg.norm([-0.1, -0.05, 1.0])
    points = np.stack([u, v, z], axis=-1) - height[..., None] * normal
    points += rng.normal(0, noise, points.shape)
    points[rng.random((size, size)) < 0.2] = 0
    return points.astype(np.float32), box, normal


def test_fit_background_plane_recovers_the_table(rng):
    points, _, normal = _table_with_box(rng)
    valid = np.all(points != 0, axis=-1)
    plane = fit_background_plane(points, valid)
    assert abs(abs(plane[:3] @ normal) - 1) < 1e-4 and np.isclose(np.linalg.norm(plane[:3]), 1)
    np.testing.assert_array_equal(plane, fit_background_plane(points, valid))  # seeded


def test_foreground_keeps_the_box_only(rng):
    points, box, _ = _table_with_box(rng)
    keep = foreground_mask(points)
    valid = np.all(points != 0, axis=-1)
    assert keep[box & valid].mean() > 0.97  # box points, except the odd noisy one at its foot
    assert not keep[~box].any()  # neither the table nor the speck
    cleaned = remove_background(points)
    assert np.all(cleaned[~keep] == 0) and np.array_equal(cleaned[keep], points[keep])


def test_components_join_across_missing_rows_like_dbscan(rng):
    # a flat object with 3 missing rows through it: the grid alone splits it, DBSCAN (eps 6 mm) does not
    v, u = np.mgrid[0:60, 0:60] * 0.0005
    points = np.stack([u, v, np.full_like(u, 0.6)], axis=-1).astype(np.float32)
    mask = np.ones((60, 60), bool)
    mask[33:36] = False
    top = np.zeros_like(mask)
    top[:33] = True
    joined = largest_grid_component(points, mask)
    np.testing.assert_array_equal(joined, mask)
    np.testing.assert_array_equal(largest_grid_component(points, mask, join_near=False), top)
    # move the lower part 1 cm away: too far to join
    far = points.copy()
    far[36:, :, 2] += 0.01
    np.testing.assert_array_equal(largest_grid_component(far, mask), top)


def test_largest_component_edge_cases():
    points = np.ones((4, 4, 3), np.float32)
    assert not largest_grid_component(points, np.zeros((4, 4), bool)).any()


def test_foreground_bad_input(rng):
    with pytest.raises(ValueError, match=r"scan-x: points must be an \(H, W, 3\)"):
        foreground_mask(np.zeros((5, 3), np.float32), name="scan-x")
    points = np.zeros((40, 40, 3), np.float32)
    points[20, 20] = (0.1, 0.1, 0.6)  # nothing on the border
    with pytest.raises(ValueError, match="only 0 valid point"):
        foreground_mask(points, name="scan-y")
    for option in ("border", "eps", "plane_distance", "iterations"):
        with pytest.raises(ValueError, match=f"scan-z: {option} must be positive"):
            foreground_mask(points, name="scan-z", **{option: 0})


# ----------------------------------------------------------------------------- preprocess_scan


def test_preprocess_scan_real_tiny(mvtec_tiny):
    for scan in open_dataset(mvtec_tiny, "cable_gland", "test"):
        before = scan.points.copy()
        out = preprocess_scan(scan)
        np.testing.assert_array_equal(scan.points, before)  # input untouched
        assert out.points.shape == (224, 224, 3) and out.rgb.shape == (224, 224, 3) and out.gt.shape == (224, 224)
        assert out.label == scan.label and out.defect == scan.defect and out.name == scan.name
        keep = foreground_mask(scan.points)
        np.testing.assert_array_equal(out.valid_mask, resize_nearest_like(keep))
        np.testing.assert_array_equal(out.gt, resize_nearest_like(scan.gt))
        np.testing.assert_array_equal(preprocess_scan(scan).points, out.points)  # deterministic


def test_preprocess_scan_real_dev(mvtec_dev):
    scan = open_dataset(mvtec_dev, "cable_gland", "test")[8]
    out = preprocess_scan(scan)
    kept = foreground_mask(scan.points).sum()
    assert 20_000 < kept < 30_000  # the ~24k object points of a 400x400 cable gland
    assert out.num_valid == pytest.approx(kept * (224 / 400) ** 2, rel=0.1)


def test_preprocess_pads_non_square(rng):
    points, box, _ = _table_with_box(rng, size=120)
    normals = np.tile(np.float32([0, 0, -1]), (120, 90, 1))
    scan = Scan(points=points[:, :90], gt=box[:, :90], label=1, name="crop", normals=normals)
    out = preprocess_scan(scan, size=60)
    assert out.points.shape == (60, 60, 3) and out.normals.shape == (60, 60, 3)
    np.testing.assert_array_equal(out.normals[out.valid_mask], np.tile([0, 0, -1], (out.num_valid, 1)))
    assert not out.normals[~out.valid_mask].any()  # normals of dropped points go with them
    assert not out.valid_mask[:, :7].any() and not out.valid_mask[:, -7:].any()  # 15-column pads -> 7.5 px
    with pytest.raises(ValueError, match="'crop'.*left no points"):  # options reach foreground_mask
        preprocess_scan(scan, plane_distance=0.05)


def test_preprocess_unorganized_and_empty(rng):
    cloud = Scan(points=rng.random((30, 3)).astype(np.float32) + 0.1)
    assert preprocess_scan(cloud) is cloud
    plane_only = np.zeros((40, 40, 3), np.float32)
    plane_only[..., 0], plane_only[..., 1] = np.mgrid[1:41, 1:41] * 0.001
    plane_only[..., 2] = 0.6
    with pytest.raises(ValueError, match="'flat'.*left no points"):
        preprocess_scan(Scan(points=plane_only, name="flat"))
    out = preprocess_scan(Scan(points=plane_only, name="flat"), remove_background=False, size=20)
    assert out.num_valid == 400


# ----------------------------------------------------------------------------- agreement with Open3D


@pytest.mark.parametrize("path", ["train/good/xyz/006.tiff", "test/hole/xyz/003.tiff"])
def test_same_points_as_open3d_reference(mvtec_dev, path):
    """On full-resolution scans the kept points match segment_plane + cluster_dbscan (IoU >= 0.999;
    0.99985-1.0 measured on all 57 dev scans). 006 has a 269-point part that DBSCAN keeps apart."""
    pytest.importorskip("open3d")
    from iaenet.data.reference import open3d_foreground_mask

    points = tifffile.imread(mvtec_dev / "cable_gland" / path)
    ours, reference = foreground_mask(points), open3d_foreground_mask(points)
    assert (ours & reference).sum() / (ours | reference).sum() >= 0.999
