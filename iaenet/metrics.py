"""Evaluation metrics for anomaly detection: O-AUROC, P-AUROC and AU-PRO.

Definitions follow the official MVTec 3D-AD evaluation code and the ``au_pro_util`` module that BTF, M3DM,
CPMF and Shape-Guided vendor (see docs/metrics.md):

- ``object_auroc``: ROC area of per-sample scores against per-sample labels, ties counted as one half
  (identical to ``sklearn.metrics.roc_auc_score``).
- ``pixel_auroc``: the same over every pixel of every map against the ground-truth masks.
- ``au_pro``: area under the per-region-overlap (PRO) curve up to an FPR limit, divided by the limit.
  Regions are the 8-connected components of each ground-truth mask; the FPR counts the normal pixels of all
  maps together. ``num_thresholds=None`` evaluates the curve at every distinct score (the official exact
  mode); ``num_thresholds=100`` reproduces the 100-threshold curve the papers report.

Everything runs through :class:`MetricAccumulator`, which takes a test set one map at a time into compact
arrays and computes all pixel metrics from one in-place sort. The module functions are one-shot wrappers
around it.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

DEFAULT_PRO_LIMITS = (0.3, 0.2, 0.1, 0.07, 0.05, 0.03, 0.01)

# 8-connectivity for ground-truth regions, as in the official code.
_REGION_STRUCTURE = np.ones((3, 3), dtype=bool)


def object_auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """ROC area of per-sample anomaly scores.

    Args:
        scores: (N,) finite real scores, higher = more anomalous.
        labels: (N,) 0/1 or bool, 1 = anomalous.

    Returns:
        The AU-ROC in [0, 1]; tied scores count one half, as in ``sklearn.metrics.roc_auc_score``.

    Raises:
        ValueError: shapes differ, a score is not finite, a label is not 0/1, or one class is missing.
    """
    scores = _as_1d_real(scores, "scores")
    labels = _as_binary_labels(labels, "labels")
    if scores.shape != labels.shape:
        raise ValueError(f"scores has shape {scores.shape} but labels has shape {labels.shape}")
    if not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores))
        raise ValueError(f"scores holds non-finite values at indices {bad[:10].tolist()}")
    return _auroc(scores, labels, what="object AU-ROC", unit="samples")


def pixel_auroc(maps: Iterable[np.ndarray] | np.ndarray, gts: Iterable[np.ndarray] | np.ndarray) -> float:
    """ROC area over all pixels of all maps (``sklearn.metrics.roc_auc_score`` on the flattened set).

    Args:
        maps: (N, H, W) array or a sequence of (H_i, W_i) anomaly maps with finite values.
        gts: ground-truth masks of the same shapes; bool, non-negative integers (> 0 = anomalous, e.g. the
            MVTec defect ids) or floats holding only 0 and 1.

    Raises:
        ValueError: on mismatched shapes, non-finite scores, non-binary masks, or when the set has no
            anomalous or no normal pixel.
    """
    return _accumulate(maps, gts).pixel_auroc()


def au_pro(
    maps: Iterable[np.ndarray] | np.ndarray,
    gts: Iterable[np.ndarray] | np.ndarray,
    limits: Sequence[float] = DEFAULT_PRO_LIMITS,
    num_thresholds: int | None = None,
) -> dict[float, float]:
    """Normalised area under the PRO curve up to each FPR limit.

    Args:
        maps, gts: as in :func:`pixel_auroc`.
        limits: FPR integration limits in (0, 1].
        num_thresholds: None for the exact curve over all distinct scores (official MVTec 3D-AD code);
            an integer >= 2 for the curve at that many thresholds taken at equal steps through the sorted
            normal-pixel scores (``au_pro_util``, 100 in the papers).

    Returns:
        {limit: AU-PRO in [0, 1]} in the order of ``limits``.
    """
    return _accumulate(maps, gts).au_pro(limits, num_thresholds)


def smooth_map(anomaly_map: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    """Gaussian smoothing of one anomaly map in floating point.

    Replaces the references' ``PIL.ImageFilter.GaussianBlur(radius=4)``, which they apply after scaling the
    map to uint8 (256 levels, creating ties and losing small scores). Here the map stays float. Beyond the
    border the map repeats its edge pixels; PIL's three box passes treat the border their own way, so the
    two differ by a few percent of the local contrast within ~2 sigma of the border (interior: same
    Gaussian up to PIL's box approximation).

    Args:
        anomaly_map: (H, W) finite real map.
        sigma: standard deviation in pixels, > 0.

    Returns:
        (H, W) float32 map (float64 if the input is float64).
    """
    anomaly_map = np.asarray(anomaly_map)
    if anomaly_map.ndim != 2 or anomaly_map.dtype.kind not in "fiu":
        raise ValueError(
            f"anomaly_map must be a 2-D real array, got shape {anomaly_map.shape} "
            f"and dtype {anomaly_map.dtype}"
        )
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite positive number of pixels, got {sigma}")
    out_dtype = np.float64 if anomaly_map.dtype == np.float64 else np.float32
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        values = anomaly_map.astype(out_dtype, copy=False)
    if not np.isfinite(values).all():
        raise ValueError("anomaly_map holds non-finite values (NaN/inf)")
    return ndimage.gaussian_filter(values, sigma=float(sigma), mode="nearest")


class MetricAccumulator:
    """Collects a test set one sample at a time and computes all metrics at the end.

    Storage is split by ground truth: a normal pixel keeps only its score (4 bytes with the default float32,
    the precision of the maps the references evaluate), an anomalous pixel its score and the int32 id of its
    region (8 bytes). Per region it keeps the pixel count, per sample the object score and label. No Python
    floats are kept, and computing sorts these arrays in place (pixel order does not matter to any metric),
    so repeated metric calls neither copy nor re-sort.

    Example:
        >>> acc = MetricAccumulator()
        >>> for amap, gt in samples:          # doctest: +SKIP
        ...     acc.add(amap, gt)
        >>> acc.compute()                     # doctest: +SKIP
        {'object_auroc': ..., 'pixel_auroc': ..., 'au_pro': {0.3: ..., ...}}
    """

    def __init__(self, score_dtype: type | np.dtype = np.float32):
        self._score_dtype = np.dtype(score_dtype)
        if self._score_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"score_dtype must be float32 or float64, got {self._score_dtype}")
        self._normal_scores = _GrowingArray(self._score_dtype)
        self._anomalous_scores = _GrowingArray(self._score_dtype)
        self._anomalous_regions = _GrowingArray(np.int32)
        self._region_sizes = _GrowingArray(np.int64)
        self._object_scores = _GrowingArray(np.float64)
        self._labels = _GrowingArray(bool)
        self._pixels_sorted = True

    def __len__(self) -> int:
        """Number of samples added."""
        return len(self._labels)

    def add(
        self,
        anomaly_map: np.ndarray,
        gt_mask: np.ndarray,
        object_score: float | None = None,
        label: int | bool | None = None,
    ) -> None:
        """Add one sample.

        Args:
            anomaly_map: (H, W) real, finite; higher = more anomalous. Sizes may differ between samples.
            gt_mask: (H, W) bool, non-negative integers (> 0 = anomalous) or floats holding only 0 and 1.
            object_score: the sample's anomaly score; None takes the maximum of the map (official scoring).
            label: 1/True for an anomalous sample; None takes whether ``gt_mask`` has an anomalous pixel.

        Raises:
            ValueError: naming the sample index, on wrong shapes/dtypes, non-finite values, a non-binary
                mask, or a label 0 for a mask with anomalous pixels. Nothing is stored then.
        """
        index = len(self)
        scores = self._check_map(anomaly_map, index)
        anomalous = _as_binary_mask(gt_mask, scores.shape, index)
        object_score = float(scores.max()) if object_score is None else _as_finite_float(object_score, index)
        label = bool(anomalous.any()) if label is None else _as_label(label, index)
        if not label and anomalous.any():
            raise ValueError(f"sample {index}: label 0 (normal) but its gt mask has anomalous pixels")

        regions, n_regions = ndimage.label(anomalous, structure=_REGION_STRUCTURE)
        region_ids = regions[anomalous]
        sizes = np.bincount(region_ids, minlength=n_regions + 1)[1:]
        # Global 0-based ids: the regions of all samples are counted separately.
        region_ids = (region_ids - 1 + len(self._region_sizes)).astype(np.int32)

        self._normal_scores.extend(scores[~anomalous])
        self._anomalous_scores.extend(scores[anomalous])
        self._anomalous_regions.extend(region_ids)
        self._region_sizes.extend(sizes)
        self._object_scores.extend(np.array([object_score], dtype=np.float64))
        self._labels.extend(np.array([label]))
        self._pixels_sorted = False

    def object_auroc(self) -> float:
        """AU-ROC of the object scores against the labels; needs normal and anomalous samples."""
        return _auroc(self._object_scores.view(), self._labels.view(), what="object AU-ROC", unit="samples")

    def pixel_auroc(self) -> float:
        """AU-ROC over all pixels; needs normal and anomalous pixels."""
        return self._sorted_pixels().pixel_auroc()

    def au_pro(
        self, limits: Sequence[float] = DEFAULT_PRO_LIMITS, num_thresholds: int | None = None
    ) -> dict[float, float]:
        """AU-PRO at each limit; see :func:`au_pro` for the arguments."""
        limits = _check_limits(limits)
        num_thresholds = _check_num_thresholds(num_thresholds)
        return self._sorted_pixels().au_pro(limits, num_thresholds)

    def pixel_roc_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The exact pixel ROC curve: (fpr, tpr), both float64 and non-decreasing, from (0, 0) to (1, 1).

        Two points per run of equal anomalous scores (just above its value and at it); in between only
        normal pixels enter, so the curve is horizontal there. Its trapezoid area is ``pixel_auroc()``.
        """
        return self._sorted_pixels().roc_curve()

    def pro_curve(self, limit: float = 1.0, num_thresholds: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The PRO curve up to an FPR limit: (fpr, pro), float64, fpr non-decreasing and ending at ``limit``.

        The curve ``au_pro`` integrates (see there for ``num_thresholds``), cut at the limit with PRO
        interpolated linearly there; its trapezoid area divided by ``limit`` is ``au_pro([limit])``.
        """
        (limit,) = _check_limits((limit,))
        num_thresholds = _check_num_thresholds(num_thresholds)
        return _curve_to_limit(*self._sorted_pixels().pro_curve(num_thresholds), limit)

    def compute(
        self, limits: Sequence[float] = DEFAULT_PRO_LIMITS, num_thresholds: int | None = None
    ) -> dict:
        """All metrics; raises the ValueError of the first one that cannot be computed.

        Returns:
            {"object_auroc": float, "pixel_auroc": float, "au_pro": {limit: float}}.
        """
        limits = _check_limits(limits)
        num_thresholds = _check_num_thresholds(num_thresholds)
        pixels = self._sorted_pixels()
        return {
            "object_auroc": self.object_auroc(),
            "pixel_auroc": pixels.pixel_auroc(),
            "au_pro": pixels.au_pro(limits, num_thresholds),
        }

    def _check_map(self, anomaly_map: np.ndarray, index: int) -> np.ndarray:
        anomaly_map = np.asarray(anomaly_map)
        if anomaly_map.ndim != 2 or anomaly_map.size == 0:
            raise ValueError(
                f"sample {index}: anomaly map must be a non-empty 2-D array, got shape {anomaly_map.shape}"
            )
        if anomaly_map.dtype.kind not in "fiu":
            raise ValueError(
                f"sample {index}: anomaly map must hold real numbers, got dtype {anomaly_map.dtype}"
            )
        with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
            scores = anomaly_map.astype(self._score_dtype, copy=False)
        finite = np.isfinite(scores)
        if not finite.all():
            raise ValueError(
                f"sample {index}: anomaly map holds {int((~finite).sum())} non-finite values (NaN/inf"
                f"{', or beyond the float32 range' if self._score_dtype == np.float32 else ''})"
            )
        return scores

    def _sorted_pixels(self) -> "_SortedPixels":
        if len(self) == 0:
            raise ValueError("no samples added: nothing to evaluate")
        normal = self._normal_scores.view()
        anomalous, regions = self._anomalous_scores.view(), self._anomalous_regions.view()
        if not self._pixels_sorted:
            normal.sort()  # in place; values only, the cheapest sort numpy has
            order = np.argsort(anomalous)  # the anomalous pixels are a small share
            anomalous[:] = anomalous[order]
            regions[:] = regions[order]
            self._pixels_sorted = True
        return _SortedPixels(normal, anomalous, regions, self._region_sizes.view())


class _SortedPixels:
    """Sorted pixel scores and the per-score counts every pixel metric is computed from.

    Args:
        normal: (N,) scores of the normal pixels, ascending.
        anomalous: (P,) scores of the anomalous pixels, ascending.
        regions: (P,) int32 0-based region id of each anomalous pixel.
        region_sizes: (R,) pixel count of each region.
    """

    def __init__(
        self, normal: np.ndarray, anomalous: np.ndarray, regions: np.ndarray, region_sizes: np.ndarray
    ):
        self.normal = normal
        self.anomalous = anomalous
        self.regions = regions
        self.region_sizes = region_sizes
        # Runs of equal anomalous score, and how many normal pixels lie below / at-or-below each run's value.
        self.run_ends = _tie_group_ends(anomalous)
        self.run_values = anomalous[self.run_ends]
        self.run_counts = np.diff(self.run_ends + 1, prepend=0)
        self.normal_below = np.searchsorted(normal, self.run_values, side="left")
        self.normal_at_or_below = np.searchsorted(normal, self.run_values, side="right")

    def pixel_auroc(self) -> float:
        self._require_both_classes("pixel AU-ROC")
        return _auroc_from_counts(
            self.run_counts, self.normal_below, self.normal_at_or_below, len(self.normal)
        )

    def roc_curve(self) -> tuple[np.ndarray, np.ndarray]:
        self._require_both_classes("pixel ROC curve")
        n_normal, n_anomalous = len(self.normal), len(self.anomalous)
        counts = self.run_counts[::-1]  # descending scores from here on
        tp_at = np.cumsum(counts)
        fp_at = n_normal - self.normal_below[::-1]
        fp_above = n_normal - self.normal_at_or_below[::-1]
        fps = np.concatenate(([0], np.stack([fp_above, fp_at], axis=1).ravel(), [n_normal]))
        tps = np.concatenate(([0], np.stack([tp_at - counts, tp_at], axis=1).ravel(), [n_anomalous]))
        return fps / n_normal, tps / n_anomalous

    def pro_curve(self, num_thresholds: int | None) -> tuple[np.ndarray, np.ndarray]:
        self._require_both_classes("AU-PRO")
        return self._exact_pro_curve() if num_thresholds is None else self._sampled_pro_curve(num_thresholds)

    def au_pro(self, limits: tuple[float, ...], num_thresholds: int | None) -> dict[float, float]:
        fprs, pros = self.pro_curve(num_thresholds)
        return {limit: float(_area_to_limit(fprs, pros, limit) / limit) for limit in limits}

    def _exact_pro_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The official curve: a point at every distinct score, framed by (0, 0) and (1, 1).

        Between two neighbouring anomalous scores only normal pixels enter, so PRO stays constant there and
        the official points in between lie on one horizontal segment: its two ends carry the whole area.
        Per anomalous run (descending) that gives the point just above its value (normal pixels > value,
        PRO of the higher runs) and the point at its value (normal pixels >= value, PRO including it).
        """
        n_normal = len(self.normal)
        pro_from = self._pro_suffix_sums()  # pro_from[i]: PRO of the anomalous pixels i.. (ascending order)
        pro_at = pro_from[self.run_ends - self.run_counts + 1][::-1]
        pro_above = pro_from[self.run_ends + 1][::-1]
        fp_at = n_normal - self.normal_below[::-1]
        fp_above = n_normal - self.normal_at_or_below[::-1]
        fprs = np.concatenate(([0], np.stack([fp_above, fp_at], axis=1).ravel(), [n_normal])) / n_normal
        pros = np.concatenate(([0.0], np.stack([pro_above, pro_at], axis=1).ravel(), [pro_from[0]]))
        # Long float sums may overshoot 1 by rounding; the official code clips the same way.
        np.minimum(pros, 1.0, out=pros)
        return np.append(fprs, 1.0), np.append(pros, 1.0)

    def _sampled_pro_curve(self, num_thresholds: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``au_pro_util`` curve: thresholds at equal steps through the sorted normal scores.

        FPR at position p is 1 - (p + 1) / n_normal (ties ignored, as there); PRO counts region pixels with
        a score strictly above the threshold. The curve ends at (1, 1) and starts at FPR 0 without a (0, 0)
        point.
        """
        n_normal = len(self.normal)
        positions = np.linspace(0, n_normal - 1, num=num_thresholds, dtype=np.int64)
        first_above = np.searchsorted(self.anomalous, self.normal[positions], side="right")
        pros = self._pro_suffix_sums()[first_above]
        np.minimum(pros, 1.0, out=pros)
        fprs = 1.0 - (positions + 1) / n_normal
        return np.append(fprs[::-1], 1.0), np.append(pros[::-1], 1.0)

    def _pro_suffix_sums(self) -> np.ndarray:
        """(P + 1,) float64: entry i = sum over anomalous pixels i.. of 1 / (region size * number of regions).

        Summed from the highest score down, the order in which the official code accumulates."""
        per_region = 1.0 / (self.region_sizes * len(self.region_sizes))
        suffix = np.zeros(len(self.anomalous) + 1)
        suffix[:-1] = np.cumsum(per_region[self.regions][::-1])[::-1]
        return suffix

    def _require_both_classes(self, what: str) -> None:
        if len(self.anomalous) == 0:
            raise ValueError(f"{what} needs anomalous pixels, but every gt mask is empty")
        if len(self.normal) == 0:
            raise ValueError(f"{what} needs normal pixels, but every gt pixel is anomalous")


class _GrowingArray:
    """A 1-D numpy array that grows by doubling its capacity (amortised O(1) appends, no Python lists)."""

    def __init__(self, dtype):
        self._data = np.empty(1024, dtype=dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def extend(self, values: np.ndarray) -> None:
        end = self._size + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : end] = values
        self._size = end

    def view(self) -> np.ndarray:
        return self._data[: self._size]


def _accumulate(maps, gts) -> MetricAccumulator:
    """Feed paired maps and masks into a fresh accumulator (float64 storage when any map is float64)."""
    maps, gts = _as_sample_sequence(maps, "maps"), _as_sample_sequence(gts, "gts")
    if len(maps) != len(gts):
        raise ValueError(f"got {len(maps)} anomaly maps but {len(gts)} gt masks")
    any_float64 = any(np.asarray(m).dtype == np.float64 for m in maps)
    accumulator = MetricAccumulator(np.float64 if any_float64 else np.float32)
    for anomaly_map, gt in zip(maps, gts):
        accumulator.add(anomaly_map, gt)
    return accumulator


def _as_sample_sequence(values, name: str):
    """An (N, H, W) array or any iterable of 2-D arrays, as something with len() and iteration."""
    if isinstance(values, np.ndarray):
        if values.ndim != 3:
            raise ValueError(
                f"{name} must be an (N, H, W) array or a sequence of 2-D arrays, got shape {values.shape}"
            )
        return values
    return list(values)


def _auroc(scores: np.ndarray, labels: np.ndarray, what: str, unit: str) -> float:
    n_positive = int(labels.sum())
    if n_positive == 0 or n_positive == len(labels):
        raise ValueError(
            f"{what} needs both normal and anomalous {unit}, got {len(labels) - n_positive} normal "
            f"and {n_positive} anomalous"
        )
    negatives = np.sort(scores[~labels])
    values, counts = np.unique(scores[labels], return_counts=True)
    below = np.searchsorted(negatives, values, side="left")
    at_or_below = np.searchsorted(negatives, values, side="right")
    return _auroc_from_counts(counts, below, at_or_below, len(negatives))


def _auroc_from_counts(
    counts: np.ndarray, below: np.ndarray, at_or_below: np.ndarray, n_negative: int
) -> float:
    """ROC area from runs of equal positive score: ``counts`` positives each, with ``below`` negatives
    scoring lower and ``at_or_below - below`` tied (a tie counts one half).

    The doubled sum stays in int64, so the result is exact up to the final division."""
    doubled = int(np.dot(counts.astype(np.int64), (below + at_or_below).astype(np.int64)))
    return doubled / (2 * int(counts.sum()) * n_negative)


def _tie_group_ends(sorted_values: np.ndarray) -> np.ndarray:
    """Index of the last element of every run of equal values in a sorted 1-D array."""
    if len(sorted_values) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.append(np.flatnonzero(sorted_values[1:] != sorted_values[:-1]), len(sorted_values) - 1)


def _area_to_limit(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Trapezoid area under y(x) for x in [x[0], limit], x non-decreasing (the curve of ``_curve_to_limit``)."""
    inside = int(np.searchsorted(x, limit, side="right"))
    xs, ys = x[:inside], y[:inside]
    area = float(np.sum(0.5 * (ys[1:] + ys[:-1]) * np.diff(xs)))
    if xs[-1] != limit:
        area += float(0.5 * (_value_at_limit(x, y, limit, inside) + ys[-1]) * (limit - xs[-1]))
    return area


def _curve_to_limit(x: np.ndarray, y: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """The points of y(x) with x <= limit (x non-decreasing, x[0] <= limit <= x[-1]), ending at x = limit."""
    inside = int(np.searchsorted(x, limit, side="right"))
    if x[inside - 1] == limit:
        return x[:inside], y[:inside]
    return np.append(x[:inside], limit), np.append(y[:inside], _value_at_limit(x, y, limit, inside))


def _value_at_limit(x: np.ndarray, y: np.ndarray, limit: float, inside: int) -> float:
    """y at x = limit where the limit is not a curve point (``inside`` points lie at or below it).

    As in the official code: linear between the last point at or below the limit and the first beyond it.
    """
    x0, y0, x1, y1 = x[inside - 1], y[inside - 1], x[inside], y[inside]
    return y0 + (y1 - y0) * (limit - x0) / (x1 - x0)


def _check_limits(limits: Sequence[float]) -> tuple[float, ...]:
    limits = tuple(float(limit) for limit in np.atleast_1d(np.asarray(limits, dtype=np.float64)))
    if not limits:
        raise ValueError("limits is empty: give at least one FPR limit in (0, 1]")
    for limit in limits:
        if not (0.0 < limit <= 1.0):
            raise ValueError(f"AU-PRO limit must be in (0, 1], got {limit}")
    return limits


def _check_num_thresholds(num_thresholds: int | None) -> int | None:
    if num_thresholds is None:
        return None
    is_integer = isinstance(num_thresholds, (int, np.integer)) and not isinstance(num_thresholds, bool)
    if not is_integer or num_thresholds < 2:
        raise ValueError(f"num_thresholds must be None (exact) or an integer >= 2, got {num_thresholds!r}")
    return int(num_thresholds)


def _as_finite_float(value, index: int) -> float:
    array = np.asarray(value)
    if array.ndim != 0 or array.dtype.kind not in "fiu" or not np.isfinite(array):
        raise ValueError(f"sample {index}: object_score must be one finite real number, got {value!r}")
    return float(array)


def _as_label(value, index: int) -> bool:
    array = np.asarray(value)
    if array.ndim != 0 or array.dtype.kind not in "fiub" or array not in (0, 1):
        raise ValueError(f"sample {index}: label must be 0/1 or bool, got {value!r}")
    return bool(array)


def _as_1d_real(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "fiub":
        raise ValueError(
            f"{name} must be a 1-D array of real numbers, got shape {array.shape} and dtype {array.dtype}"
        )
    return array.astype(np.float64)


def _as_binary_labels(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "fiub":
        raise ValueError(
            f"{name} must be a 1-D array of 0/1 labels, got shape {array.shape} and dtype {array.dtype}"
        )
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 (or bool), got values {np.unique(array)[:10].tolist()}")
    return array.astype(bool)


def _as_binary_mask(gt_mask, shape: tuple[int, ...], index: int) -> np.ndarray:
    """A bool mask (True = anomalous) from bool, non-negative integer ids, or 0/1 floats."""
    gt_mask = np.asarray(gt_mask)
    if gt_mask.shape != shape:
        raise ValueError(
            f"sample {index}: gt mask has shape {gt_mask.shape} but the anomaly map has shape {shape}"
        )
    kind = gt_mask.dtype.kind
    if kind == "b":
        return gt_mask
    if kind in "iu":
        if kind == "i" and (gt_mask < 0).any():
            raise ValueError(
                f"sample {index}: gt mask holds negative values; use 0 = normal, > 0 = anomalous"
            )
        return gt_mask > 0
    if kind == "f":
        if not np.isin(gt_mask, (0.0, 1.0)).all():
            raise ValueError(
                f"sample {index}: float gt mask must hold only 0 and 1 (threshold a resized mask first)"
            )
        return gt_mask > 0
    raise ValueError(f"sample {index}: gt mask must be bool or numeric, got dtype {gt_mask.dtype}")
