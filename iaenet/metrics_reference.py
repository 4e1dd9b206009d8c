"""Plain re-implementations of AU-PRO, written from the published definitions, that the tests and
benchmarks check and time ``iaenet.metrics`` against. Use ``iaenet.metrics`` for evaluation.

- :func:`au_pro_thresholds_reference` follows the structure of the ``au_pro_util`` module that BTF, M3DM,
  CPMF and Shape-Guided vendor: every ground-truth region keeps its sorted scores and a pointer, and a
  Python loop walks the thresholds and, inside, the regions.
- :func:`exact_pro_curve_bruteforce` evaluates FPR and PRO at every distinct score with whole-array masks
  (O(thresholds x pixels)): slow, obviously right, for small inputs only.
"""
from __future__ import annotations

from bisect import bisect_right

import numpy as np
from scipy import ndimage

_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=int)


class _RegionScores:
    """Sorted scores of one ground-truth region and how many of them lie at or below the last threshold."""

    def __init__(self, scores: np.ndarray):
        self.sorted_scores = np.sort(scores)
        self.at_or_below = 0

    def overlap_above(self, threshold: float) -> float:
        """Fraction of the region's pixels scoring above ``threshold`` (thresholds must not decrease)."""
        scores = self.sorted_scores
        while self.at_or_below < len(scores) and scores[self.at_or_below] <= threshold:
            self.at_or_below += 1
        return 1.0 - self.at_or_below / len(self.sorted_scores)


def au_pro_thresholds_reference(maps, gts, limit: float = 0.3, num_thresholds: int = 100) -> float:
    """AU-PRO with thresholds at equal steps through the sorted normal-pixel scores (au_pro_util style)."""
    regions = []
    normal_scores = []
    for anomaly_map, gt in zip(maps, gts):
        labelled, n_regions = ndimage.label(np.asarray(gt) > 0, _EIGHT_NEIGHBOURS)
        normal_scores.append(anomaly_map[labelled == 0].astype(np.float64))
        for region_id in range(1, n_regions + 1):
            regions.append(_RegionScores(anomaly_map[labelled == region_id]))
    normal_scores = np.sort(np.concatenate(normal_scores))

    fprs, pros = [1.0], [1.0]
    for position in np.linspace(0, len(normal_scores) - 1, num=num_thresholds, dtype=int):
        threshold = normal_scores[position]
        fprs.append(1.0 - (position + 1) / len(normal_scores))
        pros.append(sum(region.overlap_above(threshold) for region in regions) / len(regions))
    return trapezoid_to_limit(fprs[::-1], pros[::-1], limit) / limit


def exact_pro_curve_bruteforce(maps, gts) -> tuple[list[float], list[float]]:
    """(FPR, PRO) at every distinct score, highest first, framed by (0, 0) and (1, 1)."""
    normal_scores = []
    region_scores = []
    for anomaly_map, gt in zip(maps, gts):
        labelled, n_regions = ndimage.label(np.asarray(gt) > 0, _EIGHT_NEIGHBOURS)
        normal_scores.append(anomaly_map[labelled == 0])
        region_scores += [anomaly_map[labelled == region_id] for region_id in range(1, n_regions + 1)]
    normal_scores = np.concatenate(normal_scores)
    all_scores = np.concatenate([normal_scores, *region_scores])

    fprs, pros = [0.0], [0.0]
    for threshold in np.unique(all_scores)[::-1]:
        fprs.append(float(np.mean(normal_scores >= threshold)))
        pros.append(float(np.mean([np.mean(scores >= threshold) for scores in region_scores])))
    return fprs + [1.0], pros + [1.0]


def trapezoid_to_limit(x, y, limit: float) -> float:
    """Trapezoid area of y over sorted x up to ``limit``, y interpolated linearly at the limit."""
    cut = bisect_right(list(x), limit)
    area = 0.0
    for i in range(1, cut):
        area += 0.5 * (y[i] + y[i - 1]) * (x[i] - x[i - 1])
    if x[cut - 1] != limit:
        y_limit = y[cut - 1] + (y[cut] - y[cut - 1]) * (limit - x[cut - 1]) / (x[cut] - x[cut - 1])
        area += 0.5 * (y_limit + y[cut - 1]) * (limit - x[cut - 1])
    return area
