import numpy as np
import pytest
import torch

from iaenet.ops import restricted_knn
from iaenet.ops._ext import ext
from iaenet.ops.retrieval import restricted_knn_reference


def random_csr(rng, bank_rows: int, patches: int, lo: int = 1, hi: int = 30):
    counts = rng.integers(lo, hi, patches)
    rows = [np.sort(rng.choice(bank_rows, min(c, bank_rows), replace=False)) for c in counts]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    return indptr, np.concatenate(rows).astype(np.int64)


def fixed_order_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(C, U) float32 dot products in the kernel's documented order (retrieval_math.h): lane j % 8 accumulates
    fma(a_j, b_j, s) in increasing j, then ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)). The FMA is
    emulated in float64 (the product of two float32 is exact there) and rounded once more to float32; that
    double rounding differs from a true FMA only for sums within 2^-29 of a float32 midpoint."""
    s = np.zeros((len(a), len(b), 8), np.float32)
    for j in range(a.shape[1]):
        prod = a[:, None, j].astype(np.float64) * b[None, :, j].astype(np.float64)
        s[:, :, j % 8] = (prod + s[:, :, j % 8]).astype(np.float32)
    return ((s[..., 0] + s[..., 1]) + (s[..., 2] + s[..., 3])) + ((s[..., 4] + s[..., 5]) + (s[..., 6] + s[..., 7]))


def fixed_order_sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a|^2 + |b|^2 - 2 a.b in the kernel's order, clamped at 0."""
    na = np.diagonal(fixed_order_dots(a, a))[:, None]
    nb = np.diagonal(fixed_order_dots(b, b))[None, :]
    dots = fixed_order_dots(a, b)
    return np.maximum((na + nb) - (dots + dots), np.float32(0))


def candidates(indptr, rows, patches) -> np.ndarray:
    return np.unique(np.concatenate([rows[indptr[p]:indptr[p + 1]] for p in patches]))


@pytest.mark.parametrize("d", [1, 7, 8, 9, 33, 153, 801])
def test_matches_reference(rng, d):
    bank = rng.standard_normal((400, d)).astype(np.float32)
    indptr, rows = random_csr(rng, 400, 60)
    patches = rng.integers(0, 60, 25)
    queries = rng.standard_normal((37, d)).astype(np.float32)
    idx, dist2 = restricted_knn(bank, indptr, rows, patches, queries, 5)
    ref_idx, ref_dist2 = restricted_knn_reference(bank, indptr, rows, patches, queries, 5)
    np.testing.assert_allclose(dist2, ref_dist2, rtol=1e-5, atol=1e-5)
    # Where the reference's distances are clearly apart, the neighbours themselves must agree.
    gaps = np.diff(ref_dist2, axis=1).min(axis=1) > 1e-4 * ref_dist2.max()
    np.testing.assert_array_equal(idx[gaps], ref_idx[gaps])
    assert np.isin(idx, candidates(indptr, rows, patches)).all()


@pytest.mark.parametrize("portable", [False, True], ids=["simd", "portable"])
@pytest.mark.parametrize("d", [5, 8, 21, 160])
def test_bit_exact_against_the_documented_order(rng, d, portable):
    # 43 candidates and 9 queries: the SIMD micro-kernel's padded edge groups are exercised; `portable` runs the
    # scalar retrieval_math.h functions the CUDA path runs. Both must give the bits of the documented order.
    bank = rng.standard_normal((43, d)).astype(np.float32)
    indptr = np.array([0, 43], np.int64)
    rows = np.arange(43, dtype=np.int64)
    queries = rng.standard_normal((9, d)).astype(np.float32)
    idx, dist2 = np.empty((9, 43), np.int64), np.empty((9, 43), np.float32)
    ext().retrieval(bank, indptr, rows, np.array([0], np.int64), queries, idx, dist2, 0, portable)
    want = fixed_order_sq_dist(queries, bank)
    np.testing.assert_array_equal(dist2, np.take_along_axis(want, idx, axis=1))
    np.testing.assert_array_equal(np.sort(want, axis=1), dist2)


def test_ties_go_to_the_lower_bank_row(rng):
    base = rng.standard_normal((4, 16)).astype(np.float32)
    bank = np.concatenate([base, base, base])  # rows i, i + 4, i + 8 are identical
    indptr = np.array([0, 6, 12], np.int64)
    rows = np.array([8, 0, 5, 9, 10, 11, 4, 1, 2, 3, 6, 7], np.int64)
    idx, dist2 = restricted_knn(bank, indptr, rows, np.array([1, 0]), base[[2]], 3)
    np.testing.assert_array_equal(idx, [[2, 6, 10]])
    np.testing.assert_array_equal(dist2, [[0, 0, 0]])


def test_duplicate_patches_and_empty_patches(rng):
    bank = rng.standard_normal((50, 12)).astype(np.float32)
    indptr = np.array([0, 0, 10, 10, 20], np.int64)  # patches 0 and 2 own no rows
    rows = np.concatenate([np.arange(10), np.arange(5, 15)]).astype(np.int64)
    queries = rng.standard_normal((6, 12)).astype(np.float32)
    a = restricted_knn(bank, indptr, rows, np.array([1, 3, 1, 0, 2, 3]), queries, 4)
    b = restricted_knn(bank, indptr, rows, np.array([3, 1]), queries, 4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a[0].max() < 15


def test_torch_in_torch_out_and_deterministic(rng):
    bank = rng.standard_normal((300, 40)).astype(np.float32)
    indptr, rows = random_csr(rng, 300, 30)
    queries = rng.standard_normal((20, 40)).astype(np.float32)
    patches = np.arange(30)
    idx_t, dist_t = restricted_knn(torch.from_numpy(bank), torch.from_numpy(indptr), torch.from_numpy(rows),
                                   torch.from_numpy(patches), torch.from_numpy(queries), 5)
    assert isinstance(idx_t, torch.Tensor) and idx_t.dtype == torch.int64 and dist_t.dtype == torch.float32
    idx, dist2 = restricted_knn(bank, indptr, rows, patches, queries, 5)
    np.testing.assert_array_equal(idx_t.numpy(), idx)
    np.testing.assert_array_equal(dist_t.numpy(), dist2)
    idx2, dist22 = restricted_knn(bank, indptr, rows, patches, queries, 5)
    np.testing.assert_array_equal(idx, idx2)
    np.testing.assert_array_equal(dist2, dist22)


def test_no_queries_gives_empty_output(rng):
    bank = rng.standard_normal((10, 4)).astype(np.float32)
    idx, dist2 = restricted_knn(bank, np.array([0, 10]), np.arange(10), np.array([0]), np.zeros((0, 4)), 3)
    assert idx.shape == (0, 3) and dist2.shape == (0, 3)


def _bad_cases():
    bank = np.zeros((10, 4), np.float32)
    ip, rows, pt, q = np.array([0, 5, 10]), np.arange(10), np.array([0, 1]), np.zeros((3, 4), np.float32)
    nan_q = q.copy()
    nan_q[1, 2] = np.nan
    nan_bank = bank.copy()
    nan_bank[3, 0] = np.inf
    return [
        ((bank, ip, rows, pt, q, 11), ValueError, "fewer than k"),
        ((bank, ip, rows, np.array([0]), q, 6), ValueError, "fewer than k"),
        ((bank, ip, rows, pt, q, 0), ValueError, "k: need k >= 1"),
        ((bank, ip, rows, pt, q, 2.0), TypeError, "k: expected an int"),
        ((bank, ip, rows, pt, nan_q, 2), ValueError, "queries: contains NaN"),
        ((nan_bank, ip, rows, pt, q, 2), ValueError, "bank: contains NaN"),
        ((bank, ip, rows, pt, np.zeros((3, 5), np.float32), 2), ValueError, "queries: dimension 5"),
        ((bank, np.array([0, 6, 5]), rows[:5], pt, q, 2), ValueError, "indptr"),
        ((bank, np.array([1, 5, 10]), rows, pt, q, 2), ValueError, "indptr"),
        ((bank, ip, np.arange(2, 12), pt, q, 2), ValueError, r"rows: bank rows must lie in \[0, 10\)"),
        ((bank, ip, rows, np.array([2]), q, 2), ValueError, r"patches: patch ids must lie in \[0, 2\)"),
        ((bank, ip, rows, np.array([0.5]), q, 2), TypeError, "patches: expected an integer"),
        ((bank, np.array([], np.int64), np.array([], np.int64), np.array([0]), q, 2), ValueError, "indptr"),
        ((bank[0], ip, rows, pt, q, 2), ValueError, "bank: expected 2 dimensions"),
        (("bank", ip, rows, pt, q, 2), TypeError, "bank: expected a numeric array"),
    ]


@pytest.mark.parametrize("args,err,match", _bad_cases())
def test_bad_input(args, err, match):
    with pytest.raises(err, match=match):
        restricted_knn(*args)


@pytest.mark.cuda
def test_cuda_matches_cpu(rng):
    bank = rng.standard_normal((3000, 153)).astype(np.float32)
    indptr, rows = random_csr(rng, 3000, 400, 20, 60)
    patches = rng.integers(0, 400, 500)
    queries = rng.standard_normal((300, 153)).astype(np.float32)
    idx, dist2 = restricted_knn(bank, indptr, rows, patches, queries, 5)
    dev = [torch.from_numpy(x).cuda() for x in (bank, indptr, rows, patches, queries)]
    idx_c, dist_c = restricted_knn(*dev, 5)
    assert idx_c.is_cuda
    np.testing.assert_array_equal(idx_c.cpu().numpy(), idx)
    np.testing.assert_array_equal(dist_c.cpu().numpy(), dist2)


@pytest.mark.cuda
def test_cuda_k_limit_and_shortage(rng):
    bank = torch.randn(100, 8, device="cuda")
    indptr = torch.tensor([0, 100], device="cuda")
    rows = torch.arange(100, device="cuda")
    with pytest.raises(ValueError, match="CUDA limit"):
        restricted_knn(bank, indptr, rows, torch.tensor([0], device="cuda"), bank[:3], 17)
    with pytest.raises(ValueError, match="fewer than k"):
        restricted_knn(bank, torch.tensor([0, 3, 100], device="cuda"), rows, torch.tensor([0], device="cuda"),
                       bank[:3], 4)


@pytest.mark.parametrize("d", [64, 97, 801])
def test_simd_path_equals_portable_path_on_clustered_rows(rng, d):
    # Clustered rows, queries on or very close to some of them, exact duplicates of bank rows (distance 0, ties)
    # and near-ties: the AVX2 kernel must return exactly what the portable path (the CUDA arithmetic) returns.
    centres = rng.standard_normal((20, d)).astype(np.float32)
    bank = (centres[rng.integers(0, 20, 1500)] + 0.05 * rng.standard_normal((1500, d))).astype(np.float32)
    bank[700:710] = bank[100]
    queries = np.concatenate([bank[[100, 5, 900]], bank[rng.integers(0, 1500, 60)] + 1e-4,
                              centres + 0.01 * rng.standard_normal((20, d))]).astype(np.float32)
    indptr = np.array([0, 1500], np.int64)
    rows = np.arange(1500, dtype=np.int64)
    out = {}
    for portable in (False, True):
        idx, dist2 = np.empty((len(queries), 7), np.int64), np.empty((len(queries), 7), np.float32)
        ext().retrieval(bank, indptr, rows, np.array([0], np.int64), queries, idx, dist2, 0, portable)
        out[portable] = idx, dist2
    np.testing.assert_array_equal(out[False][0], out[True][0])
    np.testing.assert_array_equal(out[False][1], out[True][1])
    np.testing.assert_array_equal(out[False][0][0], [100, 700, 701, 702, 703, 704, 705])
