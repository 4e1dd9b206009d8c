import numpy as np
import pytest
import torch

from iaenet.ops import farthest_point_sample
from iaenet.ops.sampling import farthest_point_sample_reference


@pytest.mark.parametrize("n,s", [(1, 1), (50, 50), (2000, 64), (20000, 400)])
def test_matches_reference(rng, n, s):
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    got = farthest_point_sample(pts, s, start=n // 2)
    np.testing.assert_array_equal(got, farthest_point_sample_reference(pts, s, n // 2))
    assert len(np.unique(got)) == s


def test_torch_in_torch_out_and_seeded(rng):
    pts = rng.random((500, 3), dtype=np.float32)
    a = farthest_point_sample(torch.from_numpy(pts), 20, seed=3)
    b = farthest_point_sample(pts, 20, seed=3)
    assert isinstance(a, torch.Tensor) and a.dtype == torch.int64
    np.testing.assert_array_equal(a.numpy(), b)
    assert not np.array_equal(b, farthest_point_sample(pts, 20, seed=4))


def test_ties_go_to_lowest_index():
    pts = np.zeros((6, 3), np.float32)
    pts[2], pts[4] = [1, 0, 0], [-1, 0, 0]
    np.testing.assert_array_equal(farthest_point_sample(pts, 3, start=0), [0, 2, 4])


def test_real_scan(mvtec_tiny):
    import tifffile

    xyz = tifffile.imread(next((mvtec_tiny / "cable_gland" / "train" / "good" / "xyz").glob("*.tiff")))
    pts = xyz.reshape(-1, 3)
    pts = np.ascontiguousarray(pts[np.all(pts != 0, axis=1)])
    got = farthest_point_sample(pts, 100, start=0)
    np.testing.assert_array_equal(got, farthest_point_sample_reference(pts, 100, 0))


@pytest.mark.parametrize(
    "points,count,err",
    [
        (np.zeros((0, 3), np.float32), 1, ValueError),
        (np.zeros((5, 2), np.float32), 1, ValueError),
        (np.zeros((5, 3), np.float32), 6, ValueError),
        (np.zeros((5, 3), np.float32), 0, ValueError),
        (np.zeros((5, 3), np.float32), 2.0, TypeError),
        (np.array([[0, 0, np.nan]], np.float32), 1, ValueError),
        ("not an array", 1, TypeError),
    ],
)
def test_bad_input(points, count, err):
    with pytest.raises(err):
        farthest_point_sample(points, count, start=0)


def test_bad_start(rng):
    with pytest.raises(ValueError, match="start"):
        farthest_point_sample(rng.random((5, 3)), 2, start=5)


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(start=float("inf")), TypeError, "start: expected an int"),  # int(inf) raised OverflowError
    (dict(start=1.5), TypeError, "start: expected an int"),           # int(1.5) picked point 1
    (dict(start="1"), TypeError, "start: expected an int"),
    (dict(seed=-1), ValueError, "seed: need seed >= 0"),
    (dict(seed=0.5), TypeError, "seed: expected an int"),
])
def test_bad_start_and_seed_types(rng, kwargs, err, match):
    with pytest.raises(err, match=match):
        farthest_point_sample(rng.random((5, 3)), 2, **kwargs)


def test_non_contiguous_and_float64_are_converted(rng):
    pts = rng.random((100, 6))[:, ::2]
    np.testing.assert_array_equal(
        farthest_point_sample(pts, 10, start=1), farthest_point_sample_reference(pts.astype(np.float32), 10, 1)
    )


@pytest.mark.cuda
def test_cuda_matches_cpu(rng):
    pts = rng.normal(size=(20000, 3)).astype(np.float32)
    got = farthest_point_sample(torch.from_numpy(pts).cuda(), 400, start=7)
    assert got.is_cuda
    np.testing.assert_array_equal(got.cpu().numpy(), farthest_point_sample(pts, 400, start=7))
