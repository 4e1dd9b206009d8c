"""Exact k nearest neighbours (kernel: csrc/knn; structure and exactness argument: docs/neighbours.md)."""
from __future__ import annotations

import numpy as np

from iaenet.ops._arrays import as_float_array, check_same_kind, empty_like_kind, stream_of, to_numpy
from iaenet.ops._ext import ext
from iaenet.ops._params import check_k

# Larger coordinates could overflow float32 squared distances ((2e18)^2 * 3 < 3.4e38 does not).
_MAX_ABS_COORDINATE = 1e18
# Queries per chunk in knn_reference: a (chunk, N) float32 distance block plus its (chunk, N, 3) differences.
_REFERENCE_CHUNK_ELEMENTS = 1 << 22


def knn(points, k: int, queries=None):
    """The k nearest `points` of every query, exactly.

    points: (N, 3) float array (numpy, or torch on CPU/CUDA), finite, |coordinates| <= 1e18. k: 1..N.
    queries: (M, 3) float array of the same kind and device, or None for the points themselves (each point is
    then its own first neighbour, at distance 0, unless an exact duplicate with a lower index precedes it).
    Returns (idx, dist2): (M, k) int64 indices into `points` and (M, k) float32 squared Euclidean distances,
    of the same kind and device as `points`. Each row is sorted by distance ascending; equal distances go to
    the lower index. Distances are float32 in the fixed order (dx*dx + dy*dy) + dz*dz.
    """
    points = as_float_array(points, "points", ndim=2, last_dim=3)
    n = int(points.shape[0])
    if n == 0:
        raise ValueError("points: the cloud is empty (shape (0, 3))")
    k = check_k(k, n)
    if queries is None:
        queries = points
    else:
        queries = as_float_array(queries, "queries", ndim=2, last_dim=3)
        check_same_kind(points, "points", queries=queries)
    for name, array in (("points", points), ("queries", queries)):
        if array.shape[0] and float(abs(array).max()) > _MAX_ABS_COORDINATE:
            raise ValueError(f"{name}: coordinates beyond +-{_MAX_ABS_COORDINATE:g} would overflow float32 distances")
    m = int(queries.shape[0])
    idx = empty_like_kind(points, (m, k), "int64")
    dist2 = empty_like_kind(points, (m, k), "float32")
    ext().knn(points, queries, idx, dist2, stream_of(points))
    return idx, dist2


def knn_reference(points, k: int, queries=None) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force kNN in numpy, chunked over the queries (for tests).

    The same float32 expression as the kernel; the exact tie rule comes from selecting on a unique key
    (distance bits above, index below: non-negative float32 bit patterns order like their values).
    """
    p = to_numpy(points).astype(np.float32, copy=False)
    q = p if queries is None else to_numpy(queries).astype(np.float32, copy=False)
    index = np.arange(len(p), dtype=np.int64)
    idx = np.empty((len(q), k), dtype=np.int64)
    dist2 = np.empty((len(q), k), dtype=np.float32)
    step = max(1, _REFERENCE_CHUNK_ELEMENTS // max(1, len(p)))
    for lo in range(0, len(q), step):
        d = p[None, :, :] - q[lo : lo + step, None, :]
        d2 = d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]
        key = (d2.view(np.int32).astype(np.int64) << 32) | index
        part = np.argpartition(key, k - 1, axis=1)[:, :k] if k < len(p) else np.broadcast_to(index, key.shape)
        part_keys = np.take_along_axis(key, part, axis=1)
        chosen = np.take_along_axis(part, np.argsort(part_keys, axis=1), axis=1)
        idx[lo : lo + step] = chosen
        dist2[lo : lo + step] = np.take_along_axis(d2, chosen, axis=1)
    return idx, dist2
