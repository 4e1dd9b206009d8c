"""The OMP residual kernel against sklearn's OMP."""
import numpy as np
import pytest
import torch

from iaenet.ops import omp_residuals
from iaenet.ops._ext import ext


def problem(rng, c=40, r=120, d=33, k=5):
    bank = rng.standard_normal((r, d)).astype(np.float32)
    queries = rng.standard_normal((c, d)).astype(np.float32)
    idx = np.stack([rng.choice(r, k, replace=False) for _ in range(c)]).astype(np.int64)
    return bank, queries, idx


@pytest.mark.parametrize("k, n_atoms", [(1, 1), (5, 3), (5, 5), (16, 4)])
def test_matches_sklearn_sparse_encode(rng, k, n_atoms):
    from sklearn.decomposition import sparse_encode

    bank, queries, idx = problem(rng, k=k)
    residual, codes = omp_residuals(bank, queries, idx, n_atoms, return_codes=True)
    for i in range(len(queries)):
        atoms = bank[idx[i]].astype(np.float64)
        want = sparse_encode(queries[i:i + 1].astype(np.float64), atoms, algorithm="omp",
                             n_nonzero_coefs=n_atoms)[0]
        np.testing.assert_allclose(codes[i], want, rtol=1e-9, atol=1e-10)
        rebuilt = want @ atoms
        assert residual[i] == pytest.approx(np.linalg.norm(queries[i] - rebuilt), rel=1e-6)


def test_exact_members_and_dependent_atoms(rng):
    bank, queries, idx = problem(rng, c=6, d=20)
    queries[:3] = bank[idx[:3, 0]]  # a query that is one of its atoms: residual 0 after one step
    bank[idx[3, 1]] = 2 * bank[idx[3, 0]]  # two parallel atoms: the second cannot join (Schur complement 0)
    residual, codes = omp_residuals(bank, queries, idx, 3, return_codes=True)
    np.testing.assert_allclose(residual[:3], 0, atol=1e-6)
    assert (np.count_nonzero(codes[:3], axis=1) == 1).all()
    assert np.count_nonzero(codes[3, :2]) <= 1
    assert np.isfinite(residual).all() and np.isfinite(codes).all()


def test_zero_query_and_zero_atoms(rng):
    bank, queries, idx = problem(rng, c=4, d=10)
    queries[0] = 0
    bank[idx[1]] = 0
    residual, codes = omp_residuals(bank, queries, idx, 3, return_codes=True)
    assert residual[0] == 0 and not codes[0].any()
    assert residual[1] == pytest.approx(np.linalg.norm(queries[1]), rel=1e-6) and not codes[1].any()


def test_torch_in_torch_out_and_determinism(rng):
    bank, queries, idx = problem(rng)
    a = omp_residuals(torch.from_numpy(bank), torch.from_numpy(queries), torch.from_numpy(idx), 3)
    assert isinstance(a, torch.Tensor) and a.dtype == torch.float32
    b = omp_residuals(bank, queries, idx, 3)
    np.testing.assert_array_equal(a.numpy(), b)


def test_bad_input(rng):
    bank, queries, idx = problem(rng)
    with pytest.raises(ValueError, match="idx: bank rows"):
        omp_residuals(bank, queries, np.where(idx == idx[0, 0], 500, idx), 3)
    with pytest.raises(ValueError, match="idx: bank rows"):
        omp_residuals(bank, queries, -idx - 1, 3)
    with pytest.raises(ValueError, match="n_atoms"):
        omp_residuals(bank, queries, idx, 6)
    with pytest.raises(ValueError, match="n_atoms"):
        omp_residuals(bank, queries, idx, 0)
    with pytest.raises(ValueError, match="idx: expected"):
        omp_residuals(bank, queries, np.zeros((len(queries), 17), np.int64), 3)
    with pytest.raises(ValueError, match="idx: expected"):
        omp_residuals(bank, queries, idx[:3], 3)
    with pytest.raises(ValueError, match="dimension"):
        omp_residuals(bank, queries[:, :5], idx, 3)
    with pytest.raises(ValueError, match="NaN"):
        omp_residuals(np.where(bank > 2, np.nan, bank), queries, idx, 3)
    with pytest.raises(TypeError, match="idx"):
        omp_residuals(bank, queries, idx.astype(np.float32), 3)
    with pytest.raises(ValueError, match="1..16"):
        ext().omp_residuals(bank, queries, np.zeros((len(queries), 17), np.int64), 3, np.empty(len(queries), np.float32))


@pytest.mark.cuda
def test_cuda_equals_cpu(rng):
    bank, queries, idx = problem(rng, c=300, d=97)
    cpu = omp_residuals(bank, queries, idx, 3, return_codes=True)
    t = [torch.from_numpy(x).cuda() for x in (bank, queries, idx)]
    gpu = omp_residuals(*t, 3, return_codes=True)
    np.testing.assert_array_equal(gpu[0].cpu().numpy(), cpu[0])
    np.testing.assert_array_equal(gpu[1].cpu().numpy(), cpu[1])
