"""OMP reconstruction residuals (kernel: csrc/omp).

How well each query is rebuilt from a few of its own atoms by orthogonal matching pursuit: the 2D expert's X2
is the residual of a test cell over its k2 nearest M2D rows (Shape-Guided reconstructs them with sklearn's
OMP, one call per cell). The kernel runs sklearn's Gram OMP in float64 for all queries at once, reading the atoms
straight from the bank by index, without gathering them into a (C, K, D) array.
"""
from __future__ import annotations

from iaenet.ops._arrays import (as_float_array, as_index_array, check_same_kind, empty_like_kind, is_cuda, stream_of,
                                to_numpy)
from iaenet.ops._ext import ext
from iaenet.ops._params import check_int

MAX_ATOMS = 16  # K per query (csrc/omp/omp.h, kOmpMaxAtoms)


def omp_residuals(bank, queries, idx, n_atoms: int, *, return_codes: bool = False, check_finite: bool = True):
    """|q - sum_j gamma_j a_j| for each query q over its atoms a = bank[idx[i]], gamma from `n_atoms` steps of OMP.

    All arrays of one kind: numpy, or torch on one device (else ValueError).
    bank: (R, D) float rows (numpy, or torch on CPU/CUDA); queries: (C, D) float; idx: (C, K) int bank rows,
    1 <= K <= 16 (e.g. the queries' K nearest rows from `restricted_knn`); n_atoms: 1..K non-zero coefficients.
    The pursuit equals sklearn `sparse_encode(algorithm="omp", n_nonzero_coefs=n_atoms)` per query (float64,
    early stop on negligible correlation or a linearly dependent atom). check_finite: check `bank` and `queries`
    for NaN/inf (a caller that validated them may skip it).
    Returns (C,) float32 residual norms of the kind and device of `queries`, and with return_codes also the
    (C, K) float64 coefficients (0 for atoms not picked).
    """
    queries = as_float_array(queries, "queries", ndim=2, check_finite=check_finite)
    bank = as_float_array(bank, "bank", ndim=2, check_finite=check_finite)
    idx = as_index_array(idx, "idx", ndim=2)
    check_same_kind(queries, "queries", bank=bank, idx=idx)
    n_atoms = check_int(n_atoms, "n_atoms", minimum=1)
    if bank.shape[1] != queries.shape[1]:
        raise ValueError(f"queries: dimension {queries.shape[1]} differs from the bank's {bank.shape[1]}")
    if idx.shape[0] != queries.shape[0] or not 1 <= idx.shape[1] <= MAX_ATOMS:
        raise ValueError(f"idx: expected ({queries.shape[0]}, K) with 1 <= K <= {MAX_ATOMS}, got {tuple(idx.shape)}")
    if n_atoms > idx.shape[1]:
        raise ValueError(f"n_atoms: {n_atoms} exceeds the {idx.shape[1]} atoms per query")
    if idx.shape[0]:
        ix = to_numpy(idx.cpu() if is_cuda(idx) else idx)
        if ix.min() < 0 or ix.max() >= bank.shape[0]:
            raise ValueError(f"idx: bank rows must lie in [0, {bank.shape[0]}), got [{ix.min()}, {ix.max()}]")
    residual = empty_like_kind(queries, (int(queries.shape[0]),), "float32")
    codes = empty_like_kind(queries, (int(queries.shape[0]), int(idx.shape[1])), "float64") if return_codes else None
    ext().omp_residuals(bank, queries, idx, n_atoms, residual, codes, stream_of(queries))
    return (residual, codes) if return_codes else residual

