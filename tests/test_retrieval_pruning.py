"""The pruned CPU retrieval (BankProjection) returns the dense path's neighbours and distances bit for bit."""
import numpy as np
import pytest
import torch

from iaenet.ops import BankProjection, restricted_knn
from iaenet.ops._ext import ext


def clustered(rng, n: int, d: int, rank: int = 6, noise: float = 0.05) -> np.ndarray:
    """Rows near a `rank`-dimensional subspace, each part unit-normalised like the 2D expert's features: most of
    the variance lies on a few axes, as in real cell features, so pruning engages."""
    basis = rng.standard_normal((rank, d))
    x = rng.standard_normal((n, rank)) @ basis + noise * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def scene(rng, d: int, bank_rows: int = 900, patches: int = 120, queries: int = 61):
    rows_all = clustered(rng, bank_rows + queries, d)
    bank, q = rows_all[:bank_rows], rows_all[bank_rows:]
    counts = rng.integers(5, 40, patches)
    rows = np.concatenate([np.sort(rng.choice(bank_rows, c, replace=False)) for c in counts]).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return bank, indptr, rows, rng.integers(0, patches, 40).astype(np.int64), q


def kernel(bank, indptr, rows, patches, queries, k, projection=None, portable=False):
    idx = np.empty((len(queries), k), np.int64)
    dist2 = np.empty((len(queries), k), np.float32)
    if projection is None:
        ext().retrieval(bank, indptr, rows, patches, queries, idx, dist2, 0, portable)
    else:
        ext().retrieval(bank, indptr, rows, patches, queries, idx, dist2, 0, portable, projection.rows,
                        projection.project(queries), float(np.linalg.norm(projection.centre)))
    return idx, dist2


def assert_same_bits(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(np.asarray(a[1]).view(np.int32), np.asarray(b[1]).view(np.int32))


@pytest.mark.parametrize("portable", [False, True], ids=["simd", "portable"])
@pytest.mark.parametrize("d, dims, k", [(8, 1, 1), (33, 4, 5), (97, 16, 5), (153, 16, 3), (160, 24, 7)])
def test_pruned_equals_dense_bit_for_bit(rng, d, dims, k, portable):
    bank, indptr, rows, patches, queries = scene(rng, d)
    projection = BankProjection.fit(bank, dims)
    dense = kernel(bank, indptr, rows, patches, queries, k, portable=portable)
    assert_same_bits(kernel(bank, indptr, rows, patches, queries, k, projection, portable), dense)
    assert_same_bits(restricted_knn(bank, indptr, rows, patches, queries, k, projection=projection), dense)


def test_pruning_engages_on_structured_features(rng):
    # Not a speed test: the pruned path must actually skip work on the kind of data it is made for. Counted
    # through the bound: the share of (query, candidate) pairs whose projected distance exceeds the k-th.
    bank, indptr, rows, patches, queries = scene(rng, 97)
    projection = BankProjection.fit(bank, 16)
    assert projection.explained > 0.8
    _, dist2 = kernel(bank, indptr, rows, patches, queries, 5)
    cand = np.unique(np.concatenate([rows[indptr[p]:indptr[p + 1]] for p in patches]))
    pq, pb = projection.project(queries), projection.rows[cand]
    bound = ((pq[:, None, :] - pb[None]) ** 2).sum(-1)
    assert (bound > dist2[:, -1:] * 1.01).mean() > 0.5


def test_ties_and_duplicates_resolve_like_the_dense_path(rng):
    base = clustered(rng, 40, 24)
    bank = np.concatenate([base, base, base[:10]])  # exact duplicates: equal distances, ties to the lower row
    indptr = np.array([0, 50, 90], np.int64)
    rows = np.concatenate([np.arange(50), np.arange(50, 90)]).astype(np.int64)
    queries = np.concatenate([base[:7], clustered(rng, 5, 24)])
    projection = BankProjection.fit(bank, 6)
    dense = kernel(bank, indptr, rows, np.array([0, 1]), queries, 4)
    assert_same_bits(kernel(bank, indptr, rows, np.array([0, 1]), queries, 4, projection), dense)
    assert (dense[1][:7, :3] == 0).all()


def test_many_zero_rows_tie_at_distance_zero(rng):
    # The 2D expert's empty cells have all-zero features: a zero query ties with every zero row at distance 0 and
    # takes the lowest rows; the pruned path must find exactly those (it stops scanning past its k-th row).
    bank, indptr, rows, patches, queries = scene(rng, 40)
    bank[rng.choice(len(bank), 400, replace=False)] = 0
    queries[::3] = 0
    projection = BankProjection.fit(bank, 8)
    for k in (1, 5):
        dense = kernel(bank, indptr, rows, patches, queries, k)
        assert (dense[1][::3] == 0).all()
        for portable in (False, True):
            assert_same_bits(kernel(bank, indptr, rows, patches, queries, k, projection, portable), dense)


def test_fewer_candidates_than_k(rng):
    bank, _, _, _, queries = scene(rng, 16)
    indptr, rows = np.array([0, 3], np.int64), np.array([5, 9, 700], np.int64)
    projection = BankProjection.fit(bank, 4)
    pruned = kernel(bank, indptr, rows, np.array([0]), queries, 5, projection)
    assert_same_bits(pruned, kernel(bank, indptr, rows, np.array([0]), queries, 5))
    assert (pruned[0][:, 3:] == -1).all() and np.isinf(pruned[1][:, 3:]).all()
    with pytest.raises(ValueError, match="fewer than k"):
        restricted_knn(bank, indptr, rows, np.array([0]), queries, 5, projection=projection)
    no_rows = kernel(bank, np.array([0, 0], np.int64), rows[:0], np.array([0]), queries, 2, projection)
    assert (no_rows[0] == -1).all() and np.isinf(no_rows[1]).all()


def test_huge_values_fall_back_to_the_dense_path(rng):
    # A finite row whose squared norm overflows float32 gets no usable bound; the kernel then runs the dense
    # path, so the two agree even on such inputs.
    bank, _, _, _, queries = scene(rng, 12)
    bank[3] *= np.float32(3e19)
    indptr, rows = np.array([0, 6], np.int64), np.arange(6, dtype=np.int64)
    fitted = BankProjection.fit(np.delete(bank, 3, axis=0), 3)  # the axes of the sane rows
    projection = BankProjection(fitted.basis, fitted.centre, fitted.project(bank), fitted.explained)
    pruned = kernel(bank, indptr, rows, np.array([0]), queries, 6, projection)
    assert_same_bits(pruned, kernel(bank, indptr, rows, np.array([0]), queries, 6))


def test_bank_projection_fit(rng):
    bank = clustered(rng, 500, 40)
    p = BankProjection.fit(bank, 8)
    assert p.basis.shape == (40, 8) and p.rows.shape == (500, 8) and p.dims == 8
    gram = p.basis.astype(np.float64).T @ p.basis.astype(np.float64)
    assert np.abs(gram - np.eye(8)).max() <= 2 * 2.0 ** -24
    assert 0.5 < p.explained <= 1.0
    np.testing.assert_allclose(p.project(bank[:5]), p.rows[:5], rtol=1e-6, atol=1e-6)
    again = BankProjection.fit(torch.from_numpy(bank), 8)  # torch input, same axes
    np.testing.assert_array_equal(again.basis, p.basis)
    np.testing.assert_array_equal(again.rows, p.rows)
    isotropic = BankProjection.fit(rng.standard_normal((4000, 64)).astype(np.float32), 8)
    assert isotropic.explained < 0.25


def test_bank_projection_bad_input(rng):
    bank = clustered(rng, 100, 10)
    with pytest.raises(ValueError, match="dims"):
        BankProjection.fit(bank, 11)
    with pytest.raises(ValueError, match="dims"):
        BankProjection.fit(bank, 0)
    with pytest.raises(ValueError, match="dims"):
        BankProjection.fit(bank[:0], 2)
    p = BankProjection.fit(bank, 3)
    other = clustered(rng, 100, 10)
    indptr, rows = np.array([0, 100], np.int64), np.arange(100, dtype=np.int64)
    with pytest.raises(ValueError, match="not the projections of this bank"):
        restricted_knn(other, indptr, rows, np.array([0]), bank[:4], 2, projection=p)
    with pytest.raises(ValueError, match="fitted on a bank of shape"):
        restricted_knn(bank[:50], np.array([0, 50]), rows[:50], np.array([0]), bank[:4], 2, projection=p)
    with pytest.raises(ValueError, match="1..D"):
        ext().retrieval(bank, indptr, rows, np.array([0], np.int64), bank[:4], np.empty((4, 2), np.int64),
                        np.empty((4, 2), np.float32), 0, False, np.zeros((100, 0), np.float32),
                        np.zeros((4, 0), np.float32), 0.0)
    with pytest.raises(ValueError, match="proj_queries"):
        ext().retrieval(bank, indptr, rows, np.array([0], np.int64), bank[:4], np.empty((4, 2), np.int64),
                        np.empty((4, 2), np.float32), 0, False, p.rows, p.rows, 0.0)
