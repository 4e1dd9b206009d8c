"""Restricted nearest-neighbour retrieval (kernel: csrc/retrieval).

The shape-guided M2D search of IAENet: the candidates of a test scan are only the bank rows that its
selected training patches reference (a CSR map patch -> rows), and every query takes its k nearest among
them. The kernel gathers the deduplicated candidate union, computes the distances and keeps the top k in
one pass, without a per-query candidate matrix.
"""
from __future__ import annotations

import numpy as np

from iaenet.ops._arrays import (as_float_array, as_index_array, empty_like_kind, is_cuda, is_torch, stream_of,
                                to_numpy)
from iaenet.ops._ext import ext
from iaenet.ops._params import check_int


def restricted_knn(bank, indptr, rows, patches, queries, k: int, *, check_bank: bool = True):
    """The k nearest bank rows of each query among the rows referenced by the selected patches.

    bank: (R, D) float rows (numpy, or torch on CPU/CUDA). indptr: (M + 1,) int CSR offsets, rows: (indptr[M],)
    int bank rows of each of the M patches (patch p owns rows[indptr[p]:indptr[p+1]]). patches: (Q,) int
    selected patch ids in [0, M), duplicates allowed. queries: (C, D) float. k: neighbours per query.
    check_bank: check `bank` for NaN/inf (O(R*D)); a caller that validated its bank once may skip it.
    Returns (idx, dist2): (C, k) int64 bank rows, nearest first, and (C, k) float32 squared Euclidean
    distances, of the kind and device of `queries`. Ties go to the lower bank row.
    ValueError when the arguments disagree, hold NaN/inf, index out of range, or the selected patches
    reference fewer than k distinct rows.
    """
    queries = as_float_array(queries, "queries", ndim=2)
    bank = as_float_array(bank, "bank", ndim=2) if check_bank else _as_float_unchecked(bank, "bank")
    indptr = as_index_array(indptr, "indptr", ndim=1)
    rows = as_index_array(rows, "rows", ndim=1)
    patches = as_index_array(patches, "patches", ndim=1)
    k = check_int(k, "k", minimum=1)
    if bank.shape[1] != queries.shape[1]:
        raise ValueError(f"queries: dimension {queries.shape[1]} differs from the bank's {bank.shape[1]}")
    _check_csr(indptr, rows, patches, int(bank.shape[0]))
    idx = empty_like_kind(queries, (int(queries.shape[0]), k), "int64")
    dist2 = empty_like_kind(queries, (int(queries.shape[0]), k), "float32")
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


def _as_float_unchecked(x, name: str):
    if is_torch(x):
        import torch

        x = x.detach().to(torch.float32).contiguous()
    else:
        x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected 2 dimensions, got shape {tuple(x.shape)}")
    return x


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
