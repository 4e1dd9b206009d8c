import numpy as np
import pytest
import torch

from iaenet.ops.patches import group_patches, group_patches_reference


def real_points(root) -> np.ndarray:
    import tifffile

    xyz = tifffile.imread(next((root / "cable_gland" / "train" / "good" / "xyz").glob("*.tiff"))).reshape(-1, 3)
    return np.ascontiguousarray(xyz[np.all(xyz != 0, axis=1)])


def assert_matches_reference(points, centres, patches):
    ref_centres, ref_patches = group_patches_reference(points, len(centres), patches.shape[1], int(centres[0]))
    np.testing.assert_array_equal(centres, ref_centres)
    np.testing.assert_array_equal(patches, ref_patches)


@pytest.mark.parametrize("n,patch_size,num_patches", [(3000, 100, None), (1000, 1000, 3), (4000, 1, 50)])
def test_matches_reference_random(rng, n, patch_size, num_patches):
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    centres, patches = group_patches(pts, num_patches, patch_size=patch_size)
    assert centres.dtype == np.int64 and patches.dtype == np.int64
    assert patches.shape == (len(centres), patch_size)
    assert_matches_reference(pts, centres, patches)


def test_matches_reference_real_scan(mvtec_tiny):
    pts = real_points(mvtec_tiny)  # ~6k points: ~120 patches of 500
    centres, patches = group_patches(pts)
    assert len(centres) == round(len(pts) * 10 / 500)
    np.testing.assert_array_equal(patches[:, 0], centres)  # each centre is the first point of its patch
    assert len(np.unique(patches)) > 0.99 * len(pts)  # group_mul 10 covers (nearly) every point
    assert_matches_reference(pts, centres, patches)


@pytest.mark.parametrize("n,group_mul,want", [(500, 10, 10), (500, 0.01, 1), (1249, 1, 2), (1251, 1, 3), (25000, 5, 250)])
def test_default_patch_count(n, group_mul, want):
    pts = np.random.default_rng(1).random((n, 3), dtype=np.float32)
    centres, patches = group_patches(pts, group_mul=group_mul)
    assert centres.shape == (want,) and patches.shape == (want, 500)


def test_seeded(rng):
    pts = rng.random((2000, 3), dtype=np.float32)
    a = group_patches(pts, 8, patch_size=50, seed=5)
    b = group_patches(pts, 8, patch_size=50, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], group_patches(pts, 8, patch_size=50, seed=6)[0])


def test_torch_in_torch_out(rng):
    pts = rng.random((1500, 3), dtype=np.float32)
    centres, patches = group_patches(torch.from_numpy(pts), 5, patch_size=64)
    assert isinstance(centres, torch.Tensor) and isinstance(patches, torch.Tensor)
    assert_matches_reference(pts, centres.numpy(), patches.numpy())


@pytest.mark.parametrize(
    "n,kwargs,err,match",
    [
        (499, {}, ValueError, "patch_size=500"),
        (100, {"patch_size": 0}, ValueError, "patch_size"),
        (100, {"patch_size": 10.0}, TypeError, "patch_size"),
        (100, {"patch_size": 10, "num_patches": 101}, ValueError, "num_patches"),
        (100, {"patch_size": 10, "num_patches": 0}, ValueError, "num_patches"),
        (100, {"patch_size": 10, "group_mul": 0}, ValueError, "group_mul"),
        (100, {"patch_size": 10, "group_mul": "10"}, TypeError, "group_mul"),
        (100, {"patch_size": 10, "group_mul": float("nan")}, ValueError, "group_mul"),
        (100, {"patch_size": 10, "group_mul": float("inf")}, ValueError, "group_mul: must be finite and > 0"),
        (100, {"patch_size": 10, "group_mul": -float("inf")}, ValueError, "group_mul: must be finite and > 0"),
        (100, {"patch_size": 10, "group_mul": True}, TypeError, "group_mul"),
        (100, {"patch_size": 10, "group_mul": 1e300}, ValueError, "group_mul: 1e.300 asks for .* more than the 100"),
        (0, {"patch_size": 1}, ValueError, "points"),
    ],
)
def test_bad_input(n, kwargs, err, match):
    with pytest.raises(err, match=match):
        group_patches(np.random.default_rng(0).random((n, 3), dtype=np.float32), **kwargs)


def test_non_finite_points_are_rejected():
    pts = np.zeros((600, 3), np.float32)
    pts[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        group_patches(pts)


@pytest.mark.cuda
def test_cuda_matches_cpu(rng):
    pts = rng.normal(size=(20000, 3)).astype(np.float32)
    centres, patches = group_patches(torch.from_numpy(pts).cuda())
    assert centres.is_cuda and patches.is_cuda
    want = group_patches(pts)
    np.testing.assert_array_equal(centres.cpu().numpy(), want[0])
    np.testing.assert_array_equal(patches.cpu().numpy(), want[1])
