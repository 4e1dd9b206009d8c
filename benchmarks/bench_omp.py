"""OMP residuals of the scored cells of one test scan: the kernel (iaenet.ops.omp_residuals) against the
reference style (one sklearn sparse_encode OMP call per cell, as Shape-Guided).

Run:  PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_omp.py --benchmark-columns=min,mean,median,rounds
Sizes: C = 576 cells (the synthetic scan of bench_retrieval) with their K = 5 atoms, 3 atoms picked, D = 97 (the
2D expert's EfficientNet-Lite0 + FPFH features) and 801 (WRN-50-2). Under --benchmark-disable the two agree.
"""
import numpy as np
import pytest
import torch

from iaenet.ops import omp_residuals

CELLS, ATOMS, PICKED = 576, 5, 3


@pytest.fixture(scope="module", params=[97, 801], ids=lambda d: f"D{d}")
def problem(request):
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    d = request.param
    bank = rng.standard_normal((20000, d)).astype(np.float32)
    queries = rng.standard_normal((CELLS, d)).astype(np.float32)
    idx = rng.integers(0, len(bank), (CELLS, ATOMS))
    return bank, queries, idx


def sklearn_style(bank, queries, idx):
    from sklearn.decomposition import sparse_encode

    out = np.empty(len(queries), np.float32)
    for i in range(len(queries)):
        atoms = bank[idx[i]]
        code = sparse_encode(queries[i:i + 1], atoms, algorithm="omp", n_nonzero_coefs=PICKED)
        out[i] = np.linalg.norm(queries[i] - (code @ atoms)[0])
    return out


@pytest.mark.benchmark(group="OMP residuals per scan")
def test_kernel(benchmark, problem):
    bank, queries, idx = problem
    out = benchmark(omp_residuals, bank, queries, idx, PICKED)
    assert out.shape == (CELLS,) and np.isfinite(out).all()  # agreement: test_sklearn_per_cell


@pytest.mark.benchmark(group="OMP residuals per scan")
def test_sklearn_per_cell(benchmark, problem):
    bank, queries, idx = problem
    out = benchmark.pedantic(sklearn_style, (bank, queries, idx), rounds=2, iterations=1)
    np.testing.assert_allclose(out, omp_residuals(bank, queries, idx, PICKED), rtol=1e-4, atol=1e-4)
