"""Object scores: one number per scan from its per-point anomaly scores.

Rules (`OBJECT_RULES`):
- "max": the largest point score (the paper's s1 = max X1, s2 = max X2).
- "max_s4": the largest value of the point scores scattered to the working grid and smoothed by the sigma-4 float
  Gaussian: what the official MVTec 3D-AD script takes from the (smoothed) maps the references submit.
- "max_knn": the largest mean score over each point's k = 32 nearest points in 3-D: a maximum over a small
  neighbourhood, so one outlying point cannot set it on its own.
- "top1": the mean of the highest 1 % of the point scores.
"""
from __future__ import annotations

import numpy as np

from iaenet.metrics import smooth_map

OBJECT_RULES = ("max", "max_s4", "max_knn", "top1")
KNN_NEIGHBOURS = 32


def object_score(point_scores, index=None, rule: str = "max", grid: int = 224, points=None) -> float:
    """One scan's object score from its (N,) point scores.

    index: (N,) flat index of each point in the grid x grid working grid (needed by "max_s4").
    points: (N, 3) coordinates (needed by "max_knn").
    """
    scores = np.asarray(point_scores, dtype=np.float32)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"point_scores: expected a non-empty (N,) array, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("point_scores: contains NaN or inf")
    if rule == "max":
        return float(scores.max())
    if rule == "max_s4":
        if index is None:
            raise ValueError("index: the 'max_s4' rule needs each point's flat grid index")
        grid_map = np.zeros(grid * grid, np.float32)
        grid_map[np.asarray(index)] = scores
        return float(smooth_map(grid_map.reshape(grid, grid), 4.0).max())
    if rule == "max_knn":
        if points is None:
            raise ValueError("points: the 'max_knn' rule needs the point coordinates")
        from iaenet.ops import knn

        idx, _ = knn(np.ascontiguousarray(points, dtype=np.float32), k=min(KNN_NEIGHBOURS, len(scores)))
        return float(scores[np.asarray(idx)].mean(axis=1).max())
    if rule == "top1":
        count = max(1, int(np.ceil(0.01 * scores.size)))
        return float(np.partition(scores, scores.size - count)[-count:].mean())
    raise ValueError(f"rule: expected one of {OBJECT_RULES}, got {rule!r}")
