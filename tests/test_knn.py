import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from iaenet.ops._ext import ext
from iaenet.ops.neighbours import knn, knn_reference


def assert_same(got, want):
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


def valid_points(xyz: np.ndarray) -> np.ndarray:
    pts = xyz.reshape(-1, 3)
    return np.ascontiguousarray(pts[np.all(pts != 0, axis=1)])


@pytest.mark.parametrize("n,k", [(1, 1), (2, 1), (2, 2), (500, 1), (500, 7), (500, 500), (3000, 30), (4000, 100)])
def test_self_queries_equal_brute_force(rng, n, k):
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    assert_same(knn(pts, k), knn_reference(pts, k))


@pytest.mark.parametrize("m,k", [(0, 3), (1, 1), (700, 16)])
def test_separate_queries_equal_brute_force(rng, m, k):
    pts = rng.random((2000, 3), dtype=np.float32)
    queries = (rng.random((m, 3)) * 1.4 - 0.2).astype(np.float32)  # some outside the points' box
    idx, dist2 = knn(pts, k, queries)
    assert idx.shape == (m, k) and idx.dtype == np.int64 and dist2.dtype == np.float32
    assert_same((idx, dist2), knn_reference(pts, k, queries))


def test_reference_agrees_with_scipy(rng):
    """The reference itself against an independent implementation (distances close, index sets where distinct)."""
    pts = rng.normal(size=(3000, 3)).astype(np.float32)
    idx, dist2 = knn_reference(pts, 20)
    sd, si = cKDTree(pts.astype(np.float64)).query(pts, 20)
    np.testing.assert_allclose(dist2, sd**2, rtol=1e-5, atol=1e-9)
    distinct = np.all(np.diff(dist2, axis=1) > 0, axis=1)
    np.testing.assert_array_equal(np.sort(idx[distinct], axis=1), np.sort(si[distinct], axis=1))


def test_self_is_first_neighbour(rng):
    pts = rng.random((1000, 3), dtype=np.float32)
    idx, dist2 = knn(pts, 5)
    np.testing.assert_array_equal(idx[:, 0], np.arange(1000))
    assert np.all(dist2[:, 0] == 0) and np.all(np.diff(dist2, axis=1) >= 0)


def degenerate_clouds(rng):
    n = 1500
    t = rng.random((n, 3), dtype=np.float32)
    plane = t.copy()
    plane[:, 2] = 0.5
    tilted = np.ascontiguousarray(t[:, :2] @ np.array([[1, 0.3, -0.2], [0.1, 1, 0.7]], np.float32))
    line = np.outer(t[:, 0], np.array([1, 2, 3], np.float32))
    duplicates = np.repeat(t[:300], 5, axis=0)  # every point five times: ties everywhere
    same = np.full((200, 3), 0.25, np.float32)
    grid = np.stack(np.meshgrid(*[np.arange(12, dtype=np.float32)] * 3), -1).reshape(-1, 3)  # equal distances
    needle = t * np.array([1000, 1, 1e-3], np.float32)
    clusters = np.concatenate([t[:700] * 1e-3, t[700:] * 1e-3 + 50])  # two tiny clusters far apart
    outlier = np.concatenate([t[:999] * 1e-4, [[1e4, -1e4, 1e4]]]).astype(np.float32)
    return {"plane": plane, "tilted plane": tilted, "line": line, "duplicates": duplicates, "one point x200": same,
            "integer grid": grid, "anisotropic box": needle, "far clusters": clusters, "far outlier": outlier}


@pytest.mark.parametrize("name", list(degenerate_clouds(np.random.default_rng(0))))
@pytest.mark.parametrize("k", [1, 8, 64])
def test_degenerate_clouds(name, k):
    pts = degenerate_clouds(np.random.default_rng(0))[name]
    assert_same(knn(pts, k), knn_reference(pts, k))


@pytest.mark.parametrize("name", ["duplicates", "far clusters", "far outlier"])
def test_degenerate_clouds_k_equals_n(name):
    pts = degenerate_clouds(np.random.default_rng(0))[name]
    assert_same(knn(pts, len(pts)), knn_reference(pts, len(pts)))


def test_extreme_but_valid_coordinates():
    pts = np.array([[1e18, -1e18, 1e18], [-1e18, 1e18, -1e18], [0, 0, 0], [1e-30, 0, 0], [0, 1e-30, 0]], np.float32)
    idx, dist2 = knn(pts, 5)
    assert np.all(np.isfinite(dist2))
    assert_same((idx, dist2), knn_reference(pts, 5))


def test_ties_go_to_the_lower_index():
    pts = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32)
    idx, dist2 = knn(pts, 5, np.zeros((1, 3), np.float32))
    np.testing.assert_array_equal(idx, [[0, 4, 1, 2, 3]])
    np.testing.assert_array_equal(dist2, [[0, 0, 1, 1, 1]])


def test_real_scans_tiny(mvtec_tiny):
    import tifffile

    files = sorted((mvtec_tiny / "cable_gland").rglob("xyz/*.tiff"))
    pts = valid_points(tifffile.imread(files[0]))  # ~6k points
    want_idx, want_dist2 = knn_reference(pts, 30)
    assert_same(knn(pts, 30), (want_idx, want_dist2))
    assert_same(knn(pts, 1), (want_idx[:, :1], want_dist2[:, :1]))  # rows are sorted: k=1 is the first column
    for f in files[1:3]:
        pts = valid_points(tifffile.imread(f))
        queries = np.ascontiguousarray(pts[::7])
        assert_same(knn(pts, 30, queries), knn_reference(pts, 30, queries))
        assert_same(knn(pts, len(pts), pts[::301]), knn_reference(pts, len(pts), pts[::301]))


def test_real_scan_dev_grid(mvtec_dev):
    import tifffile

    xyz = tifffile.imread(mvtec_dev / "cable_gland" / "test" / "hole" / "xyz" / "000.tiff")
    pts = valid_points(xyz)  # ~100k points of the full 400x400 scan
    queries = np.ascontiguousarray(pts[::300])
    for k in (30, 500):
        assert_same(knn(pts, k, queries), knn_reference(pts, k, queries))


def test_torch_in_torch_out(rng):
    pts = rng.random((300, 3), dtype=np.float32)
    idx, dist2 = knn(torch.from_numpy(pts), 4, torch.from_numpy(pts[:10]))
    assert isinstance(idx, torch.Tensor) and idx.dtype == torch.int64 and dist2.dtype == torch.float32
    assert_same((idx.numpy(), dist2.numpy()), knn_reference(pts, 4, pts[:10]))


def test_deterministic_and_converts_input(rng):
    pts64 = rng.random((800, 6))[:, ::2]  # float64, non-contiguous: converted to contiguous float32
    a = knn(pts64, 10)
    assert_same(a, knn(pts64, 10))
    assert_same(a, knn_reference(pts64.astype(np.float32), 10))


@pytest.mark.parametrize(
    "points,k,queries,err,match",
    [
        (np.zeros((0, 3), np.float32), 1, None, ValueError, "empty"),
        (np.zeros((5, 3), np.float32), 0, None, ValueError, "k"),
        (np.zeros((5, 3), np.float32), -2, None, ValueError, "k"),
        (np.zeros((5, 3), np.float32), 6, None, ValueError, "k"),
        (np.zeros((5, 3), np.float32), 2.0, None, TypeError, "k"),
        (np.zeros((5, 3), np.float32), True, None, TypeError, "k"),
        (np.zeros((5, 2), np.float32), 1, None, ValueError, "points"),
        (np.zeros(15, np.float32), 1, None, ValueError, "points"),
        (np.zeros((5, 3, 1), np.float32), 1, None, ValueError, "points"),
        (np.array([[0, 0, np.nan], [1, 1, 1]], np.float32), 1, None, ValueError, "NaN"),
        (np.array([[0, 0, np.inf], [1, 1, 1]], np.float32), 1, None, ValueError, "inf"),
        ("not an array", 1, None, TypeError, "points"),
        (np.zeros((5, 3), np.float32), 1, np.zeros((2, 4), np.float32), ValueError, "queries"),
        (np.zeros((5, 3), np.float32), 1, np.array([[np.nan, 0, 0]]), ValueError, "queries"),
        (np.zeros((5, 3), np.float32), 1, torch.zeros(2, 3), ValueError, "queries"),
        (np.array([[0, 0, 0], [0, 2e18, 0]], np.float32), 1, None, ValueError, "overflow"),
        (np.zeros((5, 3), np.float32), 1, np.array([[0, 0, -3e18]]), ValueError, "queries: coordinates"),
    ],
)
def test_bad_input(points, k, queries, err, match):
    with pytest.raises(err, match=match):
        knn(points, k, queries)


def test_extension_checks_its_arguments():
    pts = np.zeros((5, 3), np.float32)
    idx, dist2 = np.empty((5, 2), np.int64), np.empty((5, 2), np.float32)
    with pytest.raises(TypeError, match="points: expected dtype float32"):
        ext().knn(pts.astype(np.float64), pts, idx, dist2)
    with pytest.raises(ValueError, match="queries: expected a C-contiguous"):
        ext().knn(pts, np.zeros((5, 6), np.float32)[:, ::2], idx, dist2)
    with pytest.raises(ValueError, match="dist2: expected shape"):
        ext().knn(pts, pts, idx, np.empty((5, 3), np.float32))
    with pytest.raises(ValueError, match="k = 6"):
        ext().knn(pts, pts, np.empty((5, 6), np.int64), np.empty((5, 6), np.float32))
    with pytest.raises(ValueError, match="read-only"):
        idx.flags.writeable = False
        ext().knn(pts, pts, idx, dist2)


@pytest.mark.cuda
@pytest.mark.parametrize("n,m,k", [(20000, None, 30), (20000, 400, 500), (3000, None, 3000), (5, 3, 5)])
def test_cuda_matches_cpu(rng, n, m, k):
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    pts[: n // 10] = pts[n // 10 : 2 * (n // 10)]  # duplicates: exact ties
    queries = None if m is None else pts[rng.choice(n, m, replace=False)]
    got = knn(torch.from_numpy(pts).cuda(), k, None if queries is None else torch.from_numpy(queries).cuda())
    assert got[0].is_cuda and got[1].is_cuda
    assert_same((got[0].cpu().numpy(), got[1].cpu().numpy()), knn(pts, k, queries))


@pytest.mark.cuda
def test_cuda_and_cpu_arrays_do_not_mix(rng):
    pts = torch.from_numpy(rng.random((50, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="queries"):
        knn(pts.cuda(), 3, pts)
