"""Neighbourhoods for the feature kernels: the one call site of the exact neighbour search, and the checks
that user-given neighbour lists must pass.

A neighbourhood is `nbr_idx` (N, K) int64, row i = the K nearest points of point i, nearest first, the point
itself first, plus an optional `nbr_count` (N,) int64: only the first count[i] entries of row i are used. A
hybrid radius + max_nn search (Open3D's KDTreeSearchParamHybrid) is the K = max_nn nearest with count[i] =
how many of them lie within the radius.
"""
from __future__ import annotations

import numpy as np

from iaenet.ops._arrays import as_index_array, check_same_kind, is_torch, to_numpy
from iaenet.ops.neighbours import knn

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def search(points, k: int):
    """(nbr_idx (N, k) int64, dist2 (N, k) float32) of the same kind and device as `points`: the k nearest of
    every point (exact, iaenet.ops.knn), nearest first, the point itself first. `points` is already
    validated (N, 3) float32, k <= N.
    """
    nbr_idx, dist2 = knn(points, k)
    _put_self_first(nbr_idx)
    return nbr_idx, dist2


def counts_within(dist2, radius: float | None, limit: int):
    """Per-row neighbour counts for the kernels: how many of the first `limit` columns of each row lie within
    `radius` (Open3D's hybrid search), or None when that is the whole row (no radius, limit == K)."""
    k = int(dist2.shape[1])
    if radius is None and limit == k:
        return None
    head = dist2[:, :limit]
    if radius is None:
        n = int(dist2.shape[0])
        return torch.full((n,), limit, dtype=torch.int64, device=dist2.device) if is_torch(dist2) else np.full(n, limit, np.int64)
    within = head <= radius * radius  # rows are sorted ascending, so this is a prefix of each row
    return within.sum(dim=1, dtype=torch.int64) if is_torch(within) else within.sum(axis=1, dtype=np.int64)


def _put_self_first(nbr_idx) -> None:
    """knn lists an exact duplicate with a lower index before the point itself; Open3D's FPFH and our kernels
    skip column 0 as "the point itself", so swap the point into column 0 (at distance 0 like the copy it
    trades places with, so the row stays sorted). In place; only rows of duplicated points change."""
    n = int(nbr_idx.shape[0])
    if is_torch(nbr_idx):
        rows = torch.nonzero(nbr_idx[:, 0] != torch.arange(n, device=nbr_idx.device)).flatten()
    else:
        rows = np.flatnonzero(nbr_idx[:, 0] != np.arange(n))
    if len(rows) == 0:
        return
    sub = nbr_idx[rows]
    is_self = sub == rows[:, None]
    has_self = is_self.any(1)
    where = is_self.int().argmax(1) if is_torch(is_self) else is_self.argmax(1)
    hit, col = rows[has_self], where[has_self]
    nbr_idx[hit, col] = nbr_idx[hit, 0]
    nbr_idx[rows, 0] = rows


def check_neighbours(nbr_idx, nbr_count, n: int, like):
    """Validates user-given neighbour lists for `n` points, of the kind of `like` (numpy, or torch on its
    device); returns them as contiguous int64."""
    nbr_idx = as_index_array(nbr_idx, "nbr_idx", ndim=2)
    check_same_kind(like, "points", nbr_idx=nbr_idx)
    if tuple(nbr_idx.shape)[0] != n or nbr_idx.shape[1] < 1:
        raise ValueError(f"nbr_idx: expected shape ({n}, K) with K >= 1, got {tuple(nbr_idx.shape)}")
    k = int(nbr_idx.shape[1])
    lo, hi = int(nbr_idx.min()), int(nbr_idx.max())
    if lo < 0 or hi >= n:
        raise ValueError(f"nbr_idx: indices must lie in [0, {n}), got values in [{lo}, {hi}]")
    if nbr_count is not None:
        nbr_count = as_index_array(nbr_count, "nbr_count", ndim=1)
        check_same_kind(like, "points", nbr_count=nbr_count)
        if tuple(nbr_count.shape) != (n,):
            raise ValueError(f"nbr_count: expected shape ({n},), got {tuple(nbr_count.shape)}")
        lo, hi = int(nbr_count.min()), int(nbr_count.max())
        if lo < 0 or hi > k:
            raise ValueError(f"nbr_count: counts must lie in [0, {k}] (K of nbr_idx), got values in [{lo}, {hi}]")
    first = to_numpy(nbr_idx[:, 0])
    used = np.ones(n, bool) if nbr_count is None else to_numpy(nbr_count) > 0
    wrong = np.flatnonzero(used & (first != np.arange(n)))
    if wrong.size:
        i = int(wrong[0])
        raise ValueError(f"nbr_idx: row i must start with the point itself (i), but row {i} starts with {int(first[i])}")
    return nbr_idx, nbr_count

