"""Restricted nearest-neighbour retrieval (kernel: csrc/retrieval).

The shape-guided M2D search of IAENet: the candidates of a test scan are only the bank rows that its
selected training patches reference (a CSR map patch -> rows), and every query takes its k nearest among
them. The kernel gathers the deduplicated candidate union, computes the distances and keeps the top k in
one pass, without a per-query candidate matrix. With a `BankProjection` (the bank's principal axes) the CPU path
rules most candidates out by an exact lower bound on their distance and returns the same neighbours, bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iaenet.ops._arrays import (as_float_array, as_index_array, check_same_kind, empty_like_kind, is_cuda,
                                stream_of, to_numpy)
from iaenet.ops._ext import ext
from iaenet.ops._params import check_int


# The projection columns must be orthonormal to this many float32 units in the last place (entrywise V^T V - I):
# the kernel's rounding allowances assume it (csrc/retrieval/retrieval_pruned_cpu.cpp, Slack::rho).
_ORTHONORMAL_ULPS = 2.0


@dataclass(frozen=True)
class BankProjection:
    """The leading principal axes of a bank, for exact pruning in `restricted_knn` (CPU).

    basis: (D, p) float32 orthonormal columns; centre: (D,) float32; rows: (R, p) float32, the bank projected
    ((bank - centre) @ basis); explained: share of the bank's variance along the p axes (0..1). numpy arrays.
    Distances in the projection never exceed the true ones, so a candidate whose projected distance exceeds a
    query's current k-th distance (plus a rounding allowance) cannot be among its k nearest. Pruning pays when
    the axes hold most of the variance (real CNN/FPFH features: ~0.9 for p = 16); for isotropic data (explained
    ~ p / D) nearly nothing is pruned and the dense path is faster.
    """

    basis: np.ndarray
    centre: np.ndarray
    rows: np.ndarray
    explained: float

    @classmethod
    def fit(cls, bank, dims: int = 16, max_rows: int = 8192) -> "BankProjection":
        """Principal axes from at most `max_rows` evenly strided rows of `bank` (R, D) (float64 covariance and
        eigendecomposition; deterministic), and the whole bank projected. dims: p in 1..D."""
        x = to_numpy(as_float_array(bank, "bank", ndim=2, check_finite=False))
        r, d = x.shape
        dims = check_int(dims, "dims", minimum=1)
        if r == 0 or dims > d:
            raise ValueError(f"dims: expected 1..D = {d} axes of a non-empty bank, got {dims} for {r} rows")
        sample = x[::max(1, -(-r // check_int(max_rows, "max_rows", minimum=1)))].astype(np.float64)
        centre = sample.mean(axis=0)
        centred = sample - centre
        values, vectors = np.linalg.eigh(centred.T @ centred)  # ascending
        basis = np.ascontiguousarray(vectors[:, ::-1][:, :dims], dtype=np.float32)
        error = np.abs(basis.astype(np.float64).T @ basis.astype(np.float64) - np.eye(dims)).max()
        if error > _ORTHONORMAL_ULPS * 2.0 ** -24:
            raise ValueError(f"bank: its principal axes are not orthonormal in float32 (error {error:.3g}); "
                             "the bank may hold values too large for float32 arithmetic")
        total = float(np.clip(values, 0, None).sum())
        explained = float(np.clip(values[-dims:], 0, None).sum()) / total if total > 0 else 1.0
        centre = centre.astype(np.float32)
        return cls(basis=basis, centre=centre, rows=_project(x, centre, basis), explained=explained)

    @property
    def dims(self) -> int:
        return int(self.basis.shape[1])

    def project(self, x) -> np.ndarray:
        """(n, D) float rows -> (n, p) float32 numpy."""
        return _project(to_numpy(as_float_array(x, "x", ndim=2, check_finite=False)), self.centre, self.basis)

    def check_fitted_on(self, bank) -> None:
        """ValueError unless `bank` has the fitted shape and a few of its rows (evenly spaced) project onto the
        stored ones: pruning with another bank's projection would not be exact."""
        r, d = self.rows.shape[0], self.basis.shape[0]
        if tuple(bank.shape) != (r, d):
            raise ValueError(f"projection: fitted on a bank of shape ({r}, {d}), not this one {tuple(bank.shape)}")
        probe = np.linspace(0, r - 1, min(r, 8)).astype(np.int64)
        rows = to_numpy(bank[probe] if not is_cuda(bank) else bank[probe].cpu())
        if not np.allclose(_project(rows, self.centre, self.basis), self.rows[probe], rtol=1e-4, atol=1e-5):
            raise ValueError("projection: its rows are not the projections of this bank's rows; fit it on this bank")


def _project(x: np.ndarray, centre: np.ndarray, basis: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((x.astype(np.float32, copy=False) - centre) @ basis, dtype=np.float32)


def restricted_knn(bank, indptr, rows, patches, queries, k: int, *, check_finite: bool = True,
                   projection: BankProjection | None = None):
    """The k nearest bank rows of each query among the rows referenced by the selected patches.

    All arrays of one kind: numpy, or torch on one device (else ValueError).
    bank: (R, D) float rows (numpy, or torch on CPU/CUDA). indptr: (M + 1,) int CSR offsets, rows: (indptr[M],)
    int bank rows of each of the M patches (patch p owns rows[indptr[p]:indptr[p+1]]). patches: (Q,) int
    selected patch ids in [0, M), duplicates allowed. queries: (C, D) float. k: neighbours per query.
    check_finite: check `bank` and `queries` for NaN/inf (O(R*D)); a caller that validated them may skip it.
    projection: `BankProjection.fit(bank)` (fitted on this very bank) to prune candidates on the CPU path; the
    results are the same bits as without it. Ignored for CUDA tensors (the CUDA path is dense).
    Returns (idx, dist2): (C, k) int64 bank rows, nearest first, and (C, k) float32 squared Euclidean
    distances, of the kind and device of `queries`. Ties go to the lower bank row.
    ValueError when the arguments disagree, hold NaN/inf, index out of range, or the selected patches
    reference fewer than k distinct rows.
    """
    queries = as_float_array(queries, "queries", ndim=2, check_finite=check_finite)
    bank = as_float_array(bank, "bank", ndim=2, check_finite=check_finite)
    indptr = as_index_array(indptr, "indptr", ndim=1)
    rows = as_index_array(rows, "rows", ndim=1)
    patches = as_index_array(patches, "patches", ndim=1)
    check_same_kind(queries, "queries", bank=bank, indptr=indptr, rows=rows, patches=patches)
    k = check_int(k, "k", minimum=1)
    if bank.shape[1] != queries.shape[1]:
        raise ValueError(f"queries: dimension {queries.shape[1]} differs from the bank's {bank.shape[1]}")
    _check_csr(indptr, rows, patches, int(bank.shape[0]))
    idx = empty_like_kind(queries, (int(queries.shape[0]), k), "int64")
    dist2 = empty_like_kind(queries, (int(queries.shape[0]), k), "float32")
    if projection is not None and not is_cuda(queries):
        projection.check_fitted_on(bank)
        ext().retrieval(bank, indptr, rows, patches, queries, idx, dist2, 0, False, projection.rows,
                        projection.project(queries), float(np.linalg.norm(projection.centre)))
    else:
        ext().retrieval(bank, indptr, rows, patches, queries, idx, dist2, stream_of(queries))
    if queries.shape[0] and bool((idx[:, -1] < 0).any()):
        found = int((to_numpy(idx[0]) >= 0).sum())
        raise ValueError(f"k: the selected patches reference {found} distinct bank rows, fewer than k = {k}")
    return idx, dist2


def restricted_knn_reference(bank, indptr, rows, patches, queries, k: int):
    """The reference approach (Shape-Guided's): the candidate union built in a Python loop over the selected
    patches, torch.cdist against it, top k. Returns (idx (C, k) int64, dist2 (C, k) float32) as numpy; ties go
    to the lower bank row (stable sort over ascending candidates). For tests and benchmarks."""
    import torch

    bank_t = torch.as_tensor(to_numpy(bank), dtype=torch.float32)
    queries_t = torch.as_tensor(to_numpy(queries), dtype=torch.float32)
    indptr_np, rows_np = to_numpy(indptr), to_numpy(rows)
    union: set[int] = set()
    for p in to_numpy(patches).tolist():
        union.update(rows_np[indptr_np[p]:indptr_np[p + 1]].tolist())
    cand = torch.tensor(sorted(union), dtype=torch.long)
    dist = torch.cdist(queries_t, bank_t[cand]) ** 2
    order = torch.sort(dist, dim=1, stable=True).indices[:, :k]
    return cand[order].numpy(), torch.gather(dist, 1, order).numpy()


def _check_csr(indptr, rows, patches, bank_rows: int) -> None:
    """Contents of the CSR map and the patch selection (the kernel trusts them: they index memory)."""
    # A few scalar reductions; on CUDA each costs one synchronisation, small next to the search itself.
    ip, rw, pt = (x.cpu() if is_cuda(x) else x for x in (indptr, rows, patches))
    ip, rw, pt = to_numpy(ip), to_numpy(rw), to_numpy(pt)
    m = len(ip) - 1
    if m < 0:
        raise ValueError("indptr: needs M + 1 entries for M patches, got none")
    if ip[0] != 0 or ip[-1] != len(rw) or (m and (np.diff(ip) < 0).any()):
        raise ValueError(f"indptr: must start at 0, never decrease and end at len(rows) = {len(rw)}")
    if len(rw) and (rw.min() < 0 or rw.max() >= bank_rows):
        raise ValueError(f"rows: bank rows must lie in [0, {bank_rows}), got [{rw.min()}, {rw.max()}]")
    if len(pt) and (pt.min() < 0 or pt.max() >= m):
        raise ValueError(f"patches: patch ids must lie in [0, {m}), got [{pt.min()}, {pt.max()}]")
