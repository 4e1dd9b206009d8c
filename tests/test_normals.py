import numpy as np
import pytest
import torch

from iaenet.ops._ext import ext
from iaenet.ops.normals import (
    estimate_normals,
    estimate_normals_grid,
    estimate_normals_reference,
    normals_from_neighbors,
)
from _feature_inputs import FakeCudaArray, angle_between, smooth_cloud, valid_points


def _kdtree_neighbours(pts, k):
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(pts).query(pts, k=k)
    return idx.astype(np.int64), (dist**2).astype(np.float32)


@pytest.mark.parametrize("shape", ["wave", "sphere"])
def test_knn_matches_open3d_on_smooth_clouds(rng, shape):
    pts = smooth_cloud(rng, 4000, shape)
    ours = estimate_normals(pts, k=30)
    ref = estimate_normals_reference(pts, k=30)
    assert ours.dtype == np.float32 and ours.shape == pts.shape
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    assert angle_between(ours, ref).max() < 1e-3
    # Both oriented to the camera at the origin: same sign, not only the same line.
    assert ((ours * ref).sum(1) > 0).all()


def test_hybrid_radius_matches_open3d(rng):
    pts = smooth_cloud(rng, 3000)
    radius = 0.004  # small enough that many points have fewer than 30 neighbours inside it
    ours = estimate_normals(pts, k=30, radius=radius)
    ref = estimate_normals_reference(pts, k=30, radius=radius)
    defined = np.linalg.norm(ours, axis=1) > 0
    assert defined.mean() > 0.99
    assert angle_between(ours[defined], ref[defined]).max() < 1e-3
    # Open3D puts (0, 0, 1) where fewer than 3 points are inside the radius; we give a zero normal.
    idx, d2 = _kdtree_neighbours(pts, 30)
    np.testing.assert_array_equal(~defined, (d2 <= radius * radius).sum(1) < 3)


def test_real_scans_match_open3d(mvtec_tiny, mvtec_dev):
    tiny = sorted((mvtec_tiny / "cable_gland" / "test").glob("*/xyz/*.tiff"))[0]
    dev = mvtec_dev / "cable_gland" / "train" / "good" / "xyz" / "000.tiff"
    for path in (tiny, dev):
        pts = valid_points(path)
        ours = estimate_normals(pts, k=30)
        ref = estimate_normals_reference(pts, k=30)
        angle = angle_between(ours, ref)
        assert angle.max() < 1e-3, f"{path}: max angle {angle.max()}"
        assert ((ours * ref).sum(1) > 0).all()


def test_oriented_towards_given_camera(rng):
    pts = smooth_cloud(rng, 1000, "sphere")
    for camera in [(0.0, 0.0, 0.0), (0.3, -0.2, 2.0)]:
        n = estimate_normals(pts, k=20, camera=camera)
        assert ((n * (np.asarray(camera) - pts)).sum(1) >= 0).all()
    unoriented = estimate_normals(pts, k=20, camera=None)
    assert angle_between(unoriented, estimate_normals(pts, k=20)).max() < 1e-6


def test_from_neighbours_and_counts(rng):
    pts = smooth_cloud(rng, 500)
    idx, _ = _kdtree_neighbours(pts, 12)
    np.testing.assert_array_equal(normals_from_neighbors(pts, idx), estimate_normals(pts, k=12))
    count = np.full(len(pts), 12, np.int64)
    count[:10] = 2  # fewer than 3 neighbours: undefined
    got = normals_from_neighbors(pts, idx, count)
    assert (got[:10] == 0).all()
    np.testing.assert_array_equal(got[10:], estimate_normals(pts, k=12)[10:])
    # Only the first count[i] entries are read: garbage after them changes nothing.
    scrambled = idx.copy()
    scrambled[:, 8:] = scrambled[::-1, 8:]
    count[:] = 8
    np.testing.assert_array_equal(normals_from_neighbors(pts, scrambled, count), estimate_normals(pts, k=8))


def test_coincident_points_give_zero_normal():
    pts = np.zeros((5, 3), np.float32) + 0.5
    assert (estimate_normals(pts, k=5) == 0).all()


def test_torch_in_torch_out(rng):
    pts = smooth_cloud(rng, 300)
    got = estimate_normals(torch.from_numpy(pts), k=10)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), estimate_normals(pts, k=10))


def test_same_input_same_output(rng):
    pts = smooth_cloud(rng, 2000)
    np.testing.assert_array_equal(estimate_normals(pts), estimate_normals(pts))


def _sphere_grid(h=60, w=60, radius=0.05, centre_z=0.6, pixel=0.0012):
    """An organized grid of the camera-facing half of a sphere, with its exact outward normals."""
    ys, xs = np.mgrid[0:h, 0:w]
    x = (xs - w / 2 + 0.5) * pixel
    y = (ys - h / 2 + 0.5) * pixel
    r2 = x * x + y * y
    inside = r2 < (0.9 * radius) ** 2
    z = centre_z - np.sqrt(np.maximum(radius * radius - r2, 0))
    grid = np.stack([x, y, z], -1) * inside[..., None]
    normals = (grid - np.array([0, 0, centre_z])) / radius * inside[..., None]
    return grid.astype(np.float32), normals, inside


def test_grid_normals_on_a_sphere():
    from scipy.ndimage import binary_erosion

    grid, exact, inside = _sphere_grid()
    got = estimate_normals_grid(grid, window=3)
    assert got.shape == grid.shape and got.dtype == np.float32
    assert (got[~inside] == 0).all()
    assert ((got[inside] * -grid[inside]).sum(1) > 0).all()  # towards the camera at the origin
    # Full windows fit the curved surface closely; at the silhouette the window is one-sided.
    interior = binary_erosion(inside, np.ones((3, 3)))
    assert angle_between(got[interior], exact[interior]).max() < 0.005
    assert np.median(angle_between(got[inside], exact[inside])) < 0.001
    assert angle_between(got[inside], exact[inside]).max() < 0.05
    wide = estimate_normals_grid(grid, window=5)
    interior = binary_erosion(inside, np.ones((5, 5)))
    assert angle_between(wide[interior], exact[interior]).max() < 0.03


def test_grid_undefined_normals_are_zero():
    grid = np.zeros((5, 6, 3), np.float32)
    grid[2, 1:5] = [[x, 0.0, 0.6] for x in (0.0011, 0.002, 0.003, 0.004)]  # one collinear row
    grid[0, 0] = [0.1, 0.1, 0.6]  # an isolated pixel
    assert (estimate_normals_grid(grid, window=3) == 0).all()


def test_grid_agrees_with_knn_on_a_real_scan(mvtec_dev):
    import tifffile

    grid = tifffile.imread(mvtec_dev / "cable_gland" / "train" / "good" / "xyz" / "000.tiff")
    valid = np.any(grid != 0, axis=2)
    got = estimate_normals_grid(grid)[valid]
    knn = estimate_normals(grid[valid], k=30)
    a = angle_between(got, knn)
    defined = np.linalg.norm(got, axis=1) > 0
    assert defined.mean() > 0.999
    # Different neighbourhoods (5x5 pixels vs 30 nearest points) on a noisy scan: close in the median, not
    # equal (figures in docs/features.md).
    assert np.median(a[defined]) < 0.2
    assert ((got[defined] * knn[defined]).sum(1) >= 0).mean() > 0.99


@pytest.mark.parametrize(
    "call,err,message",
    [
        (lambda p: estimate_normals(p, k=0), ValueError, "k: need k >= 3"),
        (lambda p: estimate_normals(p, k=2), ValueError, "k: need k >= 3"),
        (lambda p: estimate_normals(p, k=11), ValueError, "only 10 points"),
        (lambda p: estimate_normals(p, k=3.0), TypeError, "k: expected an int"),
        (lambda p: estimate_normals(p, radius=-1.0, k=5), ValueError, "radius"),
        (lambda p: estimate_normals(p, radius=float("nan"), k=5), ValueError, "radius"),
        (lambda p: estimate_normals(p, k=5, camera=(0, 0)), ValueError, "camera"),
        (lambda p: estimate_normals(p, k=5, camera=(0, 0, np.inf)), ValueError, "camera"),
        (lambda p: estimate_normals(p[:, :2], k=5), ValueError, "points: expected last dimension 3"),
        (lambda p: estimate_normals(p[None], k=5), ValueError, "points: expected 2 dimensions"),
        (lambda p: estimate_normals(np.where(p > 0.5, np.nan, p), k=5), ValueError, "points: contains NaN"),
        (lambda p: estimate_normals(np.where(p > 0.5, np.inf, p), k=5), ValueError, "points: contains NaN or inf"),
        (lambda p: estimate_normals("xyz", k=5), TypeError, "points"),
        (lambda p: normals_from_neighbors(p, np.zeros((10, 4)) + 0.5), TypeError, "nbr_idx: expected an integer"),
        (lambda p: normals_from_neighbors(p, np.zeros((9, 4), np.int64)), ValueError, r"nbr_idx: expected shape \(10, K\)"),
        (lambda p: normals_from_neighbors(p, np.full((10, 4), 10)), ValueError, r"nbr_idx: indices must lie in \[0, 10\)"),
        (lambda p: normals_from_neighbors(p, np.zeros((10, 4), np.int64)), ValueError, "row 1 starts with 0"),
        (lambda p: normals_from_neighbors(p, np.arange(10)[:, None], np.full(10, 2)), ValueError, "nbr_count"),
        (lambda p: normals_from_neighbors(p, np.arange(10)[:, None], np.ones(9, np.int64)), ValueError, "nbr_count"),
        (lambda p: estimate_normals_grid(p), ValueError, "organized: expected 3 dimensions"),
        (lambda p: estimate_normals_grid(p.reshape(2, 5, 3), window=4), ValueError, "window"),
        (lambda p: estimate_normals_grid(p.reshape(2, 5, 3), window=1), ValueError, "window"),
    ],
)
def test_bad_input(rng, call, err, message):
    pts = rng.random((10, 3)).astype(np.float32)
    with pytest.raises(err, match=message):
        call(pts)


def test_non_contiguous_and_float64_are_converted(rng):
    pts = rng.random((200, 6))
    np.testing.assert_array_equal(estimate_normals(pts[:, ::2], k=8), estimate_normals(pts[:, ::2].astype(np.float32), k=8))


def test_extension_rejects_bad_arrays(rng):
    pts = rng.random((10, 3)).astype(np.float32)
    idx = np.tile(np.arange(10), (10, 1)).astype(np.int64)
    out = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError, match="points: expected a C-contiguous"):
        ext().normals_knn(np.zeros((10, 6), np.float32)[:, :3], idx, None, None, out)
    with pytest.raises((TypeError, ValueError), match="nbr_idx: expected dtype int64"):
        ext().normals_knn(pts, idx.astype(np.int32), None, None, out)
    with pytest.raises((TypeError, ValueError), match="out: expected shape"):
        ext().normals_knn(pts, idx, None, None, np.zeros((9, 3), np.float32))


@pytest.mark.skipif(ext().cuda_built, reason="checks the CPU-only build")
def test_cuda_array_on_cpu_only_build_is_refused():
    pts = FakeCudaArray(torch.zeros(10, 3))
    idx = FakeCudaArray(torch.zeros(10, 4, dtype=torch.int64))
    out = FakeCudaArray(torch.zeros(10, 3))
    with pytest.raises((ValueError, RuntimeError), match="built without CUDA"):
        ext().normals_knn(pts, idx, None, None, out)
    with pytest.raises((ValueError, RuntimeError), match="built without CUDA"):
        ext().normals_grid(FakeCudaArray(torch.zeros(4, 4, 3)), 1, None, FakeCudaArray(torch.zeros(4, 4, 3)))


@pytest.mark.cuda
def test_cuda_matches_cpu(rng, mvtec_dev):
    import tifffile

    pts = smooth_cloud(rng, 20000)
    got = estimate_normals(torch.from_numpy(pts).cuda(), k=30, radius=0.004)
    assert got.is_cuda
    np.testing.assert_array_equal(got.cpu().numpy(), estimate_normals(pts, k=30, radius=0.004))
    grid = tifffile.imread(mvtec_dev / "cable_gland" / "train" / "good" / "xyz" / "000.tiff")
    np.testing.assert_array_equal(
        estimate_normals_grid(torch.from_numpy(grid).cuda()).cpu().numpy(), estimate_normals_grid(grid)
    )
