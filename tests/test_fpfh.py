import numpy as np
import pytest
import torch

from iaenet.ops._ext import ext
from iaenet.ops import knn
from iaenet.ops._arrays import to_numpy
from iaenet.ops.fpfh import UNIT_TOLERANCE, fpfh, fpfh_from_neighbors, fpfh_reference
from iaenet.ops.normals import estimate_normals_reference
from _feature_inputs import FakeCudaArray, smooth_cloud, valid_points


def _open3d_normals(pts, k=30):
    """Open3D's oriented normals, rounded to float32: the exact normals both implementations then get."""
    return estimate_normals_reference(pts, k=k)


def _open3d_pipeline(pts, k=100, normals_k=30):
    return fpfh_reference(pts, _open3d_normals(pts, normals_k), k=k)


def _assert_part_sums(feat, expected=200.0):
    sums = feat.reshape(len(feat), 3, 11).sum(-1)
    np.testing.assert_allclose(sums, expected, atol=1e-3)


def _cosine(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("shape", ["wave", "sphere"])
@pytest.mark.parametrize("k,radius", [(100, None), (40, None), (100, 0.006)])
def test_matches_open3d_given_the_same_normals(rng, shape, k, radius):
    pts = smooth_cloud(rng, 3000, shape)
    normals = _open3d_normals(pts)
    ours = fpfh(pts, normals, k=k, radius=radius)
    ref = fpfh_reference(pts, normals, k=k, radius=radius)
    assert ours.shape == (3000, 33) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 1e-3
    _assert_part_sums(ours)


def test_real_scans_match_open3d(mvtec_tiny, mvtec_dev):
    import tifffile

    tiny = valid_points(sorted((mvtec_tiny / "cable_gland" / "test").glob("*/xyz/*.tiff"))[0])
    grid = tifffile.imread(mvtec_dev / "cable_gland" / "test" / "hole" / "xyz" / "000.tiff")[::2, ::2]
    dev = np.ascontiguousarray(grid[np.any(grid != 0, axis=2)])
    for pts in (tiny, dev):
        normals = _open3d_normals(pts)
        ours = fpfh(pts, normals, k=100)
        ref = fpfh_reference(pts, normals, k=100)
        assert np.abs(ours - ref).max() < 1e-3
        _assert_part_sums(ours)


def test_with_our_normals_close_to_open3d_pipeline(rng, mvtec_tiny):
    tiny = valid_points(sorted((mvtec_tiny / "cable_gland" / "train" / "good").glob("xyz/*.tiff"))[0])
    for pts in (smooth_cloud(rng, 5000), tiny):
        ours = fpfh(pts)  # normals kNN-30 oriented to the origin, FPFH kNN-100: BTF/CPMF in effect
        cos = _cosine(ours, _open3d_pipeline(pts))
        assert (cos > 0.999).mean() >= 0.999, np.sort(cos)[:5]


def test_normals_radius_and_wider_normals_search(rng):
    from iaenet.ops.normals import estimate_normals

    pts = smooth_cloud(rng, 2000)
    defined = np.linalg.norm(estimate_normals(pts, k=30, radius=0.004), axis=1) > 0
    assert 0.9 < defined.mean() < 1.0  # the normals radius leaves some points without a normal
    # Open3D gives (0, 0, 1) where no normal is defined, we give (0, 0, 0): feed it ours there.
    normals = estimate_normals_reference(pts, k=30, radius=0.004)
    normals[~defined] = 0
    ref = fpfh_reference(pts, normals, k=20, radius=0.008)
    ours = fpfh(pts, k=20, radius=0.008, normals_k=30, normals_radius=0.004)
    assert (_cosine(ours, ref) > 0.999).mean() >= 0.999


def test_point_without_neighbours_gets_zeros(rng):
    pts = np.vstack([smooth_cloud(rng, 500), [[1.0, 1.0, 1.0]]]).astype(np.float32)
    normals = _open3d_normals(pts, k=10)
    ours = fpfh(pts, normals, k=20, radius=0.01)
    ref = fpfh_reference(pts, normals, k=20, radius=0.01)
    assert (ours[-1] == 0).all() and (ref[-1] == 0).all()
    assert np.abs(ours - ref).max() < 1e-3


def test_coincident_neighbours_follow_open3d():
    # Zero-distance pairs add to the middle bins of the SPFH and are left out of the weighting.
    pts = np.array([[0, 0, 0.5], [0, 0, 0.5], [0.01, 0, 0.5], [0, 0.01, 0.51], [0.01, 0.01, 0.5]], np.float32)
    normals = np.tile(np.array([[0, 0, -1]], np.float32), (5, 1))
    normals[3] = [0, -0.6, -0.8]
    idx = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 0, 1, 4], [3, 0, 1, 4], [4, 2, 3, 0]], np.int64)
    got = fpfh_from_neighbors(pts, normals, idx)
    assert np.isfinite(got).all()
    _assert_part_sums(got)
    spfh_middle = 100.0 / 3  # the (0, 1) pair: zero features, bins 5, 16, 27 of point 0's SPFH
    assert got[0, 5] >= spfh_middle and got[0, 16] >= spfh_middle and got[0, 27] >= spfh_middle
    # All other neighbours coincide with the point: the weighted part is empty and only the SPFH remains.
    only_twins = fpfh_from_neighbors(pts, normals, idx[:, :2].copy())
    _assert_part_sums(only_twins[:2], 100.0)


def test_from_neighbours_equals_search_path(rng):
    from scipy.spatial import cKDTree

    pts = smooth_cloud(rng, 800)
    normals = _open3d_normals(pts)
    idx = cKDTree(pts).query(pts, k=25)[1].astype(np.int64)
    np.testing.assert_array_equal(fpfh_from_neighbors(pts, normals, idx), fpfh(pts, normals, k=25))
    count = np.full(len(pts), 25, np.int64)
    count[::3] = 10
    got = fpfh_from_neighbors(pts, normals, idx, count)
    assert np.isfinite(got).all()
    _assert_part_sums(got)
    assert not np.array_equal(got, fpfh(pts, normals, k=25))


def test_torch_in_torch_out_and_deterministic(rng):
    pts = smooth_cloud(rng, 600)
    got = fpfh(torch.from_numpy(pts), k=30)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.shape == (600, 33)
    np.testing.assert_array_equal(got.numpy(), fpfh(pts, k=30))
    np.testing.assert_array_equal(fpfh(pts, k=30), fpfh(pts, k=30))


@pytest.mark.parametrize(
    "call,err,message",
    [
        (lambda p, n: fpfh(p, n, k=1), ValueError, "k: need k >= 2"),
        (lambda p, n: fpfh(p, n, k=0), ValueError, "k: need k >= 2"),
        (lambda p, n: fpfh(p, n, k=13), ValueError, "only 12 points"),
        (lambda p, n: fpfh(p, k=5, normals_k=2), ValueError, "normals_k: need normals_k >= 3"),
        (lambda p, n: fpfh(p, n, k=5, radius=0.0), ValueError, "radius"),
        (lambda p, n: fpfh(p, n[:11], k=5), ValueError, r"normals: expected shape \(12, 3\)"),
        (lambda p, n: fpfh(p, n[:, :2], k=5), ValueError, "normals: expected last dimension 3"),
        (lambda p, n: fpfh(p, np.where(n > 0, np.nan, n), k=5), ValueError, "normals: contains NaN"),
        (lambda p, n: fpfh(np.where(p > 0.5, np.inf, p), n, k=5), ValueError, "points: contains NaN or inf"),
        (lambda p, n: fpfh(p, torch.from_numpy(n), k=5), ValueError, "normals: must be of the same kind"),
        (lambda p, n: fpfh(np.full((12, 3), "x"), n, k=5), TypeError, "points: expected a numeric array"),
        (lambda p, n: fpfh_from_neighbors(p, n, np.full((12, 3), -1)), ValueError, "nbr_idx: indices must lie"),
        (lambda p, n: fpfh_from_neighbors(p, n, np.arange(12)[:, None], np.full(12, 2)), ValueError, "nbr_count"),
        (lambda p, n: fpfh_from_neighbors(p, n, np.zeros((12, 3), np.int64)), ValueError, "row 1 starts with 0"),
        (lambda p, n: fpfh_from_neighbors(p, n, np.arange(12.0)[:, None]), TypeError, "nbr_idx: expected an integer"),
        (lambda p, n: fpfh_from_neighbors(p, n, torch.arange(12)[:, None]), ValueError, "nbr_idx: must be of the same kind"),
    ],
)
def test_bad_input(rng, call, err, message):
    pts = rng.random((12, 3)).astype(np.float32)
    normals = np.tile(np.array([[0, 0, 1]], np.float32), (12, 1))
    with pytest.raises(err, match=message):
        call(pts, normals)


@pytest.mark.parametrize("kind", [np.asarray, torch.from_numpy])
def test_normals_must_be_unit_vectors(rng, kind):
    pts = smooth_cloud(rng, 200)
    normals = _open3d_normals(pts)
    idx = knn(pts, 10)[0]
    nearly = normals * np.float32(1 + 0.5 * UNIT_TOLERANCE)  # within the tolerance: accepted as is
    np.testing.assert_array_equal(to_numpy(fpfh(kind(pts), kind(nearly), k=10)), fpfh(pts, nearly, k=10))
    for scale, row, words in ((2.0, 7, "first row 7 of length 2"), (0.0, 3, "first row 3 of length 0"),
                              (1 + 2 * UNIT_TOLERANCE, 0, "first row 0 of length 1.002")):
        bad = normals.copy()
        bad[row:row + 2] *= np.float32(scale)
        for call in (lambda n: fpfh(kind(pts), n, k=10), lambda n: fpfh_from_neighbors(kind(pts), n, kind(idx))):
            with pytest.raises(ValueError, match=rf"normals: expected unit vectors .*2 row\(s\).*{words}"):
                call(kind(bad))


def test_non_contiguous_inputs_are_converted(rng):
    pts = smooth_cloud(rng, 300)
    normals = _open3d_normals(pts)
    wide = np.zeros((300, 6), np.float64)
    wide[:, ::2] = normals
    np.testing.assert_array_equal(fpfh(pts, wide[:, ::2], k=20), fpfh(pts, normals, k=20))


def test_extension_rejects_bad_arrays(rng):
    pts = rng.random((10, 3)).astype(np.float32)
    idx = np.tile(np.arange(10), (10, 1)).astype(np.int64)
    out = np.zeros((10, 33), np.float32)
    with pytest.raises(ValueError, match=r"normals: expected shape \(10, 3\)"):
        ext().fpfh(pts, pts[:9], idx, None, out)
    with pytest.raises((TypeError, ValueError), match="normals: expected dtype float32"):
        ext().fpfh(pts, pts.astype(np.float64), idx, None, out)
    with pytest.raises(ValueError, match="nbr_count: expected shape"):
        ext().fpfh(pts, pts, idx, np.zeros(3, np.int64), out)
    with pytest.raises(ValueError, match="out: expected shape"):
        ext().fpfh(pts, pts, idx, None, np.zeros((10, 32), np.float32))


@pytest.mark.skipif(ext().cuda_built, reason="checks the CPU-only build")
def test_cuda_array_on_cpu_only_build_is_refused():
    arrays = [torch.zeros(10, 3), torch.zeros(10, 3), torch.zeros(10, 4, dtype=torch.int64), torch.zeros(10, 33)]
    with pytest.raises((ValueError, RuntimeError), match="built without CUDA"):
        ext().fpfh(*[FakeCudaArray(a) for a in arrays[:3]], None, FakeCudaArray(arrays[3]))


@pytest.mark.cuda
def test_cuda_matches_cpu(rng, mvtec_dev):
    import tifffile

    grid = tifffile.imread(mvtec_dev / "cable_gland" / "train" / "good" / "xyz" / "000.tiff")
    for pts in (smooth_cloud(rng, 20000), np.ascontiguousarray(grid[np.any(grid != 0, axis=2)])):
        for radius in (None, 0.003):
            got = fpfh(torch.from_numpy(pts).cuda(), k=100, radius=radius)
            assert got.is_cuda
            np.testing.assert_allclose(got.cpu().numpy(), fpfh(pts, k=100, radius=radius), atol=1e-4)


def test_search_puts_each_point_first_among_duplicates(rng):
    from iaenet.ops import _neighbourhoods, knn

    base = smooth_cloud(rng, 200)
    pts = np.concatenate([base, base[:50], base[:50]])  # points 200-299 duplicate 0-49 twice
    for kind in (np.asarray, torch.from_numpy):
        idx, dist2 = _neighbourhoods.search(kind(pts), 8)
        idx, dist2 = np.asarray(idx), np.asarray(dist2)
        np.testing.assert_array_equal(idx[:, 0], np.arange(len(pts)))
        ref_idx, ref_dist2 = knn(pts, 8)
        np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(ref_idx, axis=1))
        np.testing.assert_array_equal(dist2, ref_dist2)  # only zero-distance entries traded places
    got = fpfh(pts, k=8)
    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got[200:250], got[:50])  # exact copies get the same features
