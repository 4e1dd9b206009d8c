"""Tests for iaenet.metrics: the official reference numbers on real data, hand-computed cases, cross-checks
against scikit-learn and plain re-implementations, and bad input."""
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFilter
from sklearn.metrics import roc_auc_score, roc_curve

from iaenet.metrics_reference import (
    au_pro_thresholds_reference,
    exact_pro_curve_bruteforce,
    trapezoid_to_limit,
)
from iaenet.metrics import (
    DEFAULT_PRO_LIMITS,
    MetricAccumulator,
    au_pro,
    object_auroc,
    pixel_auroc,
    smooth_map,
)

# ---------------------------------------------------------------------------------------------------------
# Real data: maps and official numbers in ../shared/data/metric_reference, ground truth from mvtec3d_dev.


@pytest.fixture(scope="module")
def reference_set(metric_reference: Path, mvtec_dev: Path):
    """(maps, gt masks, defect names, expected numbers) for the 21 reference samples, in file order."""
    expected = json.loads((metric_reference / "expected_official_metrics.json").read_text())
    map_paths = sorted((metric_reference / "maps" / "cable_gland" / "test").glob("*/*.tiff"))
    maps, gts, defects = [], [], []
    for map_path in map_paths:
        defect = map_path.parent.name
        gt_path = mvtec_dev / "cable_gland" / "test" / defect / "gt" / f"{map_path.stem}.png"
        maps.append(tifffile.imread(map_path))
        gts.append(np.asarray(Image.open(gt_path)))
        defects.append(defect)
    return maps, gts, defects, expected


@pytest.fixture(scope="module")
def reference_accumulator(reference_set) -> MetricAccumulator:
    maps, gts, defects, _ = reference_set
    accumulator = MetricAccumulator()
    for anomaly_map, gt, defect in zip(maps, gts, defects):
        accumulator.add(anomaly_map, gt, label=defect != "good")
    return accumulator


def test_reference_set_is_what_the_numbers_describe(reference_set):
    maps, gts, defects, expected = reference_set
    assert len(maps) == expected["n_images"] == 21
    assert sum(defect != "good" for defect in defects) == expected["n_anomalous_images"]
    for anomaly_map, gt, defect in zip(maps, gts, defects):
        assert anomaly_map.shape == gt.shape == (400, 400) and anomaly_map.dtype == np.float32
        assert gt.dtype == np.uint8 and bool((gt > 0).any()) == (defect != "good")


def test_exact_au_pro_reproduces_official_code(reference_accumulator, reference_set):
    expected = reference_set[3]
    result = reference_accumulator.au_pro(limits=(0.3, 0.1, 0.05, 0.01))
    for limit in (0.3, 0.1, 0.05, 0.01):
        # Measured gap ~3e-10: the official code rounds its FPRs to float32.
        assert result[limit] == pytest.approx(expected[f"official_exact_au_pro@{limit}"], abs=1e-8)


def test_100_threshold_au_pro_reproduces_au_pro_util(reference_accumulator, reference_set):
    expected = reference_set[3]
    result = reference_accumulator.au_pro(limits=(0.3,), num_thresholds=100)
    assert result[0.3] == pytest.approx(expected["au_pro_util_100thr_au_pro@0.3"], abs=1e-12)


def test_image_auroc_with_max_scoring_reproduces_official_code(reference_accumulator, reference_set):
    expected = reference_set[3]["official_image_au_roc(max)"]
    result = reference_accumulator.object_auroc()
    # 5 good x 16 anomalous samples: the exact value is 29/80; the official float sum lands one ulp above it.
    assert result == 29 / 80
    assert result == pytest.approx(expected, abs=1e-15)


def test_pixel_auroc_reproduces_sklearn(reference_accumulator, reference_set):
    expected = reference_set[3]["sklearn_pixel_auroc"]
    assert reference_accumulator.pixel_auroc() == pytest.approx(expected, abs=1e-12)


def test_compute_on_real_data_matches_the_separate_metrics(reference_accumulator):
    result = reference_accumulator.compute(limits=(0.3, 0.01))
    assert result["object_auroc"] == reference_accumulator.object_auroc()
    assert result["pixel_auroc"] == reference_accumulator.pixel_auroc()
    assert result["au_pro"] == reference_accumulator.au_pro(limits=(0.3, 0.01))


def test_one_shot_functions_match_accumulator_on_real_data(reference_accumulator, reference_set):
    maps, gts, _, _ = reference_set
    assert au_pro(maps, gts, limits=(0.3, 0.05)) == reference_accumulator.au_pro(limits=(0.3, 0.05))
    max_scores, labels = [m.max() for m in maps], [bool(g.any()) for g in gts]
    assert object_auroc(max_scores, labels) == reference_accumulator.object_auroc()


# ---------------------------------------------------------------------------------------------------------
# Hand-computed cases.


def _tie_case():
    """One 2x3 map: region {3, 2} (one 4-connected column) and normal scores {1, 1, 2, 0}."""
    anomaly_map = np.array([[3, 1, 1], [2, 2, 0]], dtype=np.float32)
    gt = np.array([[1, 0, 0], [1, 0, 0]], dtype=np.uint8)
    return anomaly_map, gt


def test_ties_exact_au_pro_by_hand():
    # Curve: (0,0) (0,.5) [t=3]; (.25,1) [t=2, the tied normal 2 joins the region pixel 2]; (.75,1); (1,1).
    # Area to 0.3: 0.5*(0.5+1)*0.25 + 1*0.05 = 0.2375.
    anomaly_map, gt = _tie_case()
    result = au_pro([anomaly_map], [gt], limits=(0.3, 0.25, 0.1, 1.0))
    assert result[0.3] == pytest.approx(0.2375 / 0.3, abs=1e-15)
    assert result[0.25] == pytest.approx(0.1875 / 0.25, abs=1e-15)
    # Interpolated between (0,.5) and (.25,1): y(0.1) = 0.7.
    assert result[0.1] == pytest.approx(0.5 * (0.5 + 0.7) * 0.1 / 0.1, abs=1e-15)
    assert result[1.0] == pytest.approx(0.1875 + 0.75, abs=1e-15)


def test_ties_100_threshold_mode_by_hand():
    # 4 thresholds at positions 0..3 of the sorted normal scores [0, 1, 1, 2]; FPR = 1 - (p+1)/4 ignores ties.
    # Curve (0,.5) (.25,1) (.5,1) (.75,1) (1,1): no (0,0) point, so the first segment starts at PRO 0.5.
    anomaly_map, gt = _tie_case()
    result = au_pro([anomaly_map], [gt], limits=(0.3, 0.1), num_thresholds=4)
    assert result[0.3] == pytest.approx(0.2375 / 0.3, abs=1e-15)
    assert result[0.1] == pytest.approx(0.5 * (0.5 + 0.7) * 0.1 / 0.1, abs=1e-15)


def test_ties_pixel_auroc_by_hand():
    # Positives {3, 2} against negatives {1, 1, 2, 0}: 4 + 3 wins and one tie -> 7.5 / 8.
    anomaly_map, gt = _tie_case()
    assert pixel_auroc([anomaly_map], [gt]) == 7.5 / 8


def test_perfect_map_scores_one_everywhere():
    gt = np.zeros((20, 30), dtype=bool)
    gt[3:7, 4:9] = True
    gt[12:18, 20:22] = True
    anomaly_map = gt.astype(np.float32) + 0.5
    for num_thresholds in (None, 100):
        assert au_pro([anomaly_map], [gt], num_thresholds=num_thresholds) == {
            limit: 1.0 for limit in DEFAULT_PRO_LIMITS
        }
    assert pixel_auroc([anomaly_map], [gt]) == 1.0
    assert object_auroc([0.1, 0.9, 0.8], [0, 1, 1]) == 1.0


def test_constant_map():
    gt = np.zeros((10, 10), dtype=np.uint8)
    gt[2:4, 2:4] = 255
    anomaly_map = np.full((10, 10), 0.25, dtype=np.float32)
    assert pixel_auroc([anomaly_map], [gt]) == 0.5
    # Exact: one run of equal scores, the curve jumps from (0,0) to (1,1): PRO = FPR, area L^2/2 over L.
    exact = au_pro([anomaly_map], [gt], limits=(0.3, 0.01))
    assert exact[0.3] == pytest.approx(0.15, abs=1e-15) and exact[0.01] == pytest.approx(0.005, abs=1e-15)
    # 100 thresholds: nothing lies strictly above the constant, PRO stays 0 until the final (1, 1).
    assert au_pro([anomaly_map], [gt], limits=(0.3,), num_thresholds=100)[0.3] == 0.0
    assert object_auroc([1.0, 1.0, 1.0], [0, 1, 1]) == 0.5


def test_regions_are_8_connected():
    # gt pixels (0,0), (1,1), (1,2): one region of 3 with 8-connectivity, two regions {1} + {2} with 4.
    # (0,0) scores highest, then one normal pixel, then the other two gt pixels.
    anomaly_map = np.zeros((4, 4), dtype=np.float32)
    gt = np.zeros((4, 4), dtype=bool)
    gt[0, 0] = gt[1, 1] = gt[1, 2] = True
    anomaly_map[0, 0] = 2.0
    anomaly_map[3, 3] = 1.5
    anomaly_map[1, 1] = anomaly_map[1, 2] = 1.0
    # Curve: (0, 1/3) (1/13, 1/3) (1/13, 1) (1, 1); with 4-connectivity the first PRO would be 1/2.
    expected = (1 / 3 * 1 / 13 + (0.3 - 1 / 13)) / 0.3
    assert au_pro([anomaly_map], [gt], limits=(0.3,))[0.3] == pytest.approx(expected, abs=1e-15)


def test_several_regions_in_one_image_against_bruteforce(rng):
    gt = np.zeros((40, 50), dtype=np.uint8)
    gt[2:5, 2:30] = 1  # a long thin region
    gt[20:22, 40:42] = 1  # a tiny one
    gt[30:39, 5:20] = 1  # a big one
    gt[10, 10] = 1  # a single pixel
    anomaly_map = np.round(rng.random(gt.shape) + 0.6 * gt, 2).astype(np.float32)
    _assert_exact_matches_bruteforce([anomaly_map], [gt])


def _assert_exact_matches_bruteforce(maps, gts):
    fprs, pros = exact_pro_curve_bruteforce(maps, gts)
    expected = {limit: trapezoid_to_limit(fprs, pros, limit) / limit for limit in (*DEFAULT_PRO_LIMITS, 1.0)}
    result = au_pro(maps, gts, limits=tuple(expected))
    for limit, value in expected.items():
        assert result[limit] == pytest.approx(value, abs=1e-12), limit


# ---------------------------------------------------------------------------------------------------------
# Cross-checks on random data (quantised so that ties are common).


def _random_set(rng, n_maps=6, shape=(24, 32), levels=50):
    maps, gts = [], []
    for i in range(n_maps):
        gt = np.zeros(shape, dtype=np.uint8)
        if i % 3:  # every third map is normal
            for _ in range(rng.integers(1, 4)):
                r, c = rng.integers(0, shape[0] - 4), rng.integers(0, shape[1] - 4)
                gt[r : r + rng.integers(1, 5), c : c + rng.integers(1, 5)] = 255
        scores = np.floor(rng.random(shape) * levels) + levels * 0.4 * (gt > 0)
        maps.append(scores.astype(np.float32))
        gts.append(gt)
    return maps, gts


def test_exact_au_pro_matches_bruteforce_on_random_sets(rng):
    for _ in range(3):
        _assert_exact_matches_bruteforce(*_random_set(rng))


@pytest.mark.parametrize("num_thresholds", [100, 7, 2, 5000])
def test_thresholds_mode_matches_au_pro_util_style_reference(rng, num_thresholds):
    # 5000 thresholds exceed the normal-pixel count: positions repeat, FPR values repeat.
    maps, gts = _random_set(rng, levels=1000)
    result = au_pro(maps, gts, limits=DEFAULT_PRO_LIMITS, num_thresholds=num_thresholds)
    for limit in DEFAULT_PRO_LIMITS:
        expected = au_pro_thresholds_reference(maps, gts, limit, num_thresholds)
        assert result[limit] == pytest.approx(expected, abs=1e-12), limit


def _sklearn_pixel_auroc(maps, gts):
    labels = np.concatenate([g.ravel() > 0 for g in gts])
    return roc_auc_score(labels, np.concatenate([m.ravel() for m in maps]))


def test_pixel_auroc_matches_sklearn_on_random_data(rng):
    maps, gts = _random_set(rng, n_maps=9, levels=20)
    expected = _sklearn_pixel_auroc(maps, gts)
    assert pixel_auroc(maps, gts) == pytest.approx(expected, abs=1e-12)
    continuous = [m + rng.random(m.shape).astype(np.float32) for m in maps]
    expected = _sklearn_pixel_auroc(continuous, gts)
    assert pixel_auroc(continuous, gts) == pytest.approx(expected, abs=1e-12)


def test_object_auroc_matches_sklearn_on_random_data(rng):
    for n in (2, 17, 500):
        labels = rng.integers(0, 2, n)
        labels[:2] = [0, 1]
        for scores in (rng.normal(size=n), np.round(rng.normal(size=n), 1)):  # continuous and tied
            assert object_auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_accumulator_equals_one_shot_functions(rng):
    maps, gts = _random_set(rng)
    accumulator = MetricAccumulator()
    for anomaly_map, gt in zip(maps, gts):
        accumulator.add(anomaly_map, gt)
    assert len(accumulator) == len(maps)
    result = accumulator.compute(num_thresholds=None)
    assert result["pixel_auroc"] == pixel_auroc(maps, gts)
    assert result["au_pro"] == au_pro(maps, gts)
    assert result["object_auroc"] == object_auroc([m.max() for m in maps], [bool(g.any()) for g in gts])
    assert accumulator.compute(num_thresholds=100)["au_pro"] == au_pro(maps, gts, num_thresholds=100)
    # (N, H, W) arrays work like sequences.
    assert au_pro(np.stack(maps), np.stack(gts)) == result["au_pro"]


def _trapezoid(y, x):
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def _all_on_polyline(x, y, px, py):
    """Whether every point (px, py) lies on a segment of the polyline (x, y), x and y non-decreasing."""
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1], y[1:]
    for a, b in zip(px, py):
        inside = (x0 - 1e-12 <= a) & (a <= x1 + 1e-12) & (y0 - 1e-12 <= b) & (b <= y1 + 1e-12)
        collinear = np.abs((x1 - x0) * (b - y0) - (y1 - y0) * (a - x0)) <= 1e-12
        if not (inside & collinear).any():
            return False
    return True


def test_pixel_roc_curve_is_sklearns_and_its_area_the_pixel_auroc(rng):
    maps, gts = _random_set(rng, n_maps=9, levels=20)  # many ties between normal and anomalous pixels
    accumulator = MetricAccumulator()
    for anomaly_map, gt in zip(maps, gts):
        accumulator.add(anomaly_map, gt)
    fpr, tpr = accumulator.pixel_roc_curve()
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    assert _trapezoid(tpr, fpr) == pytest.approx(accumulator.pixel_auroc(), abs=1e-12)
    labels = np.concatenate([g.ravel() > 0 for g in gts])
    sk_fpr, sk_tpr, _ = roc_curve(labels, np.concatenate([m.ravel() for m in maps]))
    assert _all_on_polyline(fpr, tpr, sk_fpr, sk_tpr)


@pytest.mark.parametrize("num_thresholds", [None, 100])
def test_pro_curve_to_a_limit_integrates_to_au_pro(rng, num_thresholds):
    maps, gts = _random_set(rng)
    accumulator = MetricAccumulator()
    for anomaly_map, gt in zip(maps, gts):
        accumulator.add(anomaly_map, gt)
    for limit in (0.3, 0.05, 1.0):
        fpr, pro = accumulator.pro_curve(limit, num_thresholds)
        assert fpr[-1] == limit and (np.diff(fpr) >= 0).all() and (np.diff(pro) >= 0).all()
        expected = accumulator.au_pro((limit,), num_thresholds)[limit]
        assert _trapezoid(pro, fpr) / limit == pytest.approx(expected, abs=1e-12)
    if num_thresholds is None:  # every point of the official curve lies on it
        assert _all_on_polyline(*accumulator.pro_curve(), *exact_pro_curve_bruteforce(maps, gts))
    with pytest.raises(ValueError, match="limit must be in"):
        accumulator.pro_curve(0.0)


def test_accumulator_keeps_going_after_compute(rng):
    maps, gts = _random_set(rng)
    accumulator = MetricAccumulator()
    for anomaly_map, gt in zip(maps[:4], gts[:4]):
        accumulator.add(anomaly_map, gt)
    first = accumulator.compute()
    assert first == accumulator.compute()  # deterministic
    for anomaly_map, gt in zip(maps[4:], gts[4:]):
        accumulator.add(anomaly_map, gt)
    assert accumulator.au_pro() == au_pro(maps, gts)


def test_given_object_scores_and_labels_are_used():
    accumulator = MetricAccumulator()
    gt_normal = np.zeros((4, 4), dtype=bool)
    gt_anomalous = gt_normal.copy()
    gt_anomalous[1, 1] = True
    accumulator.add(np.zeros((4, 4)), gt_normal, object_score=5.0, label=0)
    accumulator.add(np.ones((4, 4)), gt_anomalous, object_score=1.0, label=True)
    accumulator.add(np.ones((4, 4)), gt_normal, object_score=3.0, label=1)  # anomalous, no visible region
    assert accumulator.object_auroc() == 0.0


def test_maps_of_different_sizes_and_float64(rng):
    maps, gts = _random_set(rng, n_maps=3)
    small_gt = np.zeros((5, 7), dtype=bool)
    small_gt[1:3, 2:4] = True
    maps.append(rng.random((5, 7)))  # float64: the one-shot functions then keep float64
    gts.append(small_gt)
    _assert_exact_matches_bruteforce(maps, gts)
    expected = _sklearn_pixel_auroc(maps, gts)
    assert pixel_auroc(maps, gts) == pytest.approx(expected, abs=1e-12)


def test_gt_forms_are_equivalent(rng):
    anomaly_map, _ = _tie_case()
    masks = [
        np.array([[1, 0, 0], [1, 0, 0]], dtype=bool),
        np.array([[253, 0, 0], [253, 0, 0]], dtype=np.uint8),
        np.array([[1.0, 0, 0], [1.0, 0, 0]], dtype=np.float32),
        np.array([[7, 0, 0], [2, 0, 0]], dtype=np.int64),  # different ids still mean anomalous
    ]
    values = [au_pro([anomaly_map], [mask]) for mask in masks]
    assert all(value == values[0] for value in values)


# ---------------------------------------------------------------------------------------------------------
# Smoothing.


def test_smooth_map_is_float_and_keeps_small_scores():
    anomaly_map = np.zeros((64, 64), dtype=np.float32)
    anomaly_map[30:34, 30:34] = 1e-4  # would vanish in a uint8 round trip scaled by a larger maximum
    anomaly_map[20, 20] = 1.0
    smoothed = smooth_map(anomaly_map)
    assert smoothed.dtype == np.float32 and smoothed.shape == anomaly_map.shape
    assert smoothed[32, 32] > smoothed[32, 44] > 0
    assert smooth_map(anomaly_map.astype(np.float64)).dtype == np.float64
    # A normalised kernel: the total is kept while the kernel (4 sigma) stays inside the map.
    assert smoothed.sum() == pytest.approx(anomaly_map.sum(), rel=1e-5)


def test_smooth_map_matches_pil_gaussian_blur_on_8_bit_maps(rng):
    # PIL approximates the Gaussian with three box blurs (its radius is the standard deviation): expect
    # agreement to a few grey levels, not bit equality.
    image = (rng.random((56, 56)) * 255).astype(np.uint8)
    image = np.asarray(Image.fromarray(image).resize((224, 224), Image.BILINEAR))
    pil = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=4)), dtype=np.float64)
    ours = smooth_map(image.astype(np.float32), sigma=4.0)
    difference = np.abs(ours - pil)
    # Away from the border both are the same Gaussian; at the border PIL's box passes handle edges their
    # own way (between repeating and mirroring the edge), so only the interior is compared tightly.
    interior = difference[12:-12, 12:-12]
    assert interior.mean() < 1.0 and interior.max() < 4.0
    assert difference.mean() < 1.5


# ---------------------------------------------------------------------------------------------------------
# Bad input.


def _one_region_gt(shape=(4, 4)):
    gt = np.zeros(shape, dtype=np.uint8)
    gt[1, 1] = 1
    return gt


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_map_names_the_sample(bad_value):
    accumulator = MetricAccumulator()
    accumulator.add(np.zeros((4, 4)), np.zeros((4, 4)))
    bad_map = np.zeros((4, 4), dtype=np.float32)
    bad_map[2, 3] = bad_value
    with pytest.raises(ValueError, match=r"sample 1: .*1 non-finite"):
        accumulator.add(bad_map, _one_region_gt())
    assert len(accumulator) == 1  # nothing was stored


def test_float64_map_beyond_float32_range_is_rejected():
    with pytest.raises(ValueError, match="sample 0: .*non-finite.*float32 range"):
        MetricAccumulator().add(np.full((3, 3), 1e300), np.zeros((3, 3)))
    assert MetricAccumulator(np.float64).add(np.full((3, 3), 1e300), np.zeros((3, 3))) is None


@pytest.mark.parametrize(
    ("anomaly_map", "gt", "message"),
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), r"gt mask has shape \(4, 5\) but the anomaly map has shape"),
        (np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), "non-empty 2-D array"),
        (np.zeros((0, 4)), np.zeros((0, 4)), "non-empty 2-D array"),
        (np.zeros((4, 4), dtype=bool), np.zeros((4, 4)), "real numbers"),
        (np.zeros((4, 4), dtype=complex), np.zeros((4, 4)), "real numbers"),
        (np.zeros((4, 4)), np.full((4, 4), 0.5), "only 0 and 1"),
        (np.zeros((4, 4)), np.full((4, 4), np.nan), "only 0 and 1"),
        (np.zeros((4, 4)), -_one_region_gt().astype(np.int8), "negative"),
        (np.zeros((4, 4)), np.full((4, 4), "a"), "bool or numeric"),
    ],
)
def test_bad_map_or_mask(anomaly_map, gt, message):
    with pytest.raises(ValueError, match=message):
        MetricAccumulator().add(anomaly_map, gt)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"object_score": np.nan}, "object_score must be one finite"),
        ({"object_score": "high"}, "object_score must be one finite"),
        ({"object_score": [1.0, 2.0]}, "object_score must be one finite"),
        ({"label": 2}, "label must be 0/1"),
        ({"label": "yes"}, "label must be 0/1"),
        ({"label": 0}, "label 0 .* has anomalous pixels"),
    ],
)
def test_bad_object_score_or_label(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MetricAccumulator().add(np.zeros((4, 4)), _one_region_gt(), **kwargs)


def test_missing_classes_give_clear_errors():
    normal_only = MetricAccumulator()
    normal_only.add(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="AU-PRO needs anomalous pixels"):
        normal_only.au_pro()
    with pytest.raises(ValueError, match="pixel AU-ROC needs anomalous pixels"):
        normal_only.pixel_auroc()
    with pytest.raises(ValueError, match="pixel ROC curve needs anomalous pixels"):
        normal_only.pixel_roc_curve()
    with pytest.raises(ValueError, match="object AU-ROC needs both normal and anomalous samples"):
        normal_only.object_auroc()

    anomalous_only = MetricAccumulator()
    anomalous_only.add(np.zeros((4, 4)), np.ones((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="AU-PRO needs normal pixels"):
        anomalous_only.au_pro(num_thresholds=100)
    with pytest.raises(ValueError, match="no samples added"):
        MetricAccumulator().compute()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limits": (0.0,)}, r"limit must be in \(0, 1\]"),
        ({"limits": (0.3, 1.5)}, r"limit must be in \(0, 1\]"),
        ({"limits": ()}, "limits is empty"),
        ({"num_thresholds": 1}, "integer >= 2"),
        ({"num_thresholds": 2.5}, "integer >= 2"),
        ({"num_thresholds": True}, "integer >= 2"),
    ],
)
def test_bad_au_pro_arguments(kwargs, message):
    anomaly_map, gt = _tie_case()
    with pytest.raises(ValueError, match=message):
        au_pro([anomaly_map], [gt], **kwargs)


def test_bad_one_shot_arguments():
    anomaly_map, gt = _tie_case()
    with pytest.raises(ValueError, match="got 2 anomaly maps but 1 gt masks"):
        pixel_auroc([anomaly_map, anomaly_map], [gt])
    with pytest.raises(ValueError, match=r"maps must be an \(N, H, W\) array"):
        pixel_auroc(anomaly_map, [gt])
    with pytest.raises(ValueError, match="scores has shape"):
        object_auroc([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match=r"non-finite values at indices \[1\]"):
        object_auroc([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="only 0/1"):
        object_auroc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="1-D array"):
        object_auroc([[0.1, 0.2]], [[0, 1]])
    with pytest.raises(ValueError, match="score_dtype must be float32 or float64"):
        MetricAccumulator(np.int32)
    with pytest.raises(ValueError, match="2-D real array"):
        smooth_map(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="sigma must be"):
        smooth_map(np.zeros((3, 3)), sigma=0)
    with pytest.raises(ValueError, match="non-finite"):
        smooth_map(np.full((3, 3), np.nan))
