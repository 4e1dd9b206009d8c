"""Metrics of a set of predictions, per category and per defect type, for every score (DESIGN.md §3 Evaluation).

Scores: "fused" (IAF), the experts "x1" and "x2", and the baseline fusions "max", "add", "ocsvm" on the same
normalised scores. Metrics: O-AUROC (object scores), P-AUROC and AUPRO at the given limits (exact, or with
`num_thresholds` the 100-threshold curve of the reference code) on the working grid, raw and after a float
Gaussian of `sigma` pixels (names with the suffix " sigma4" for sigma = 4). Unorganized scans have no grid: their
points count as one row of pixels for P-AUROC, and AUPRO (which needs connected regions) is left out.
A defect type's metrics take its scans together with all good scans.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from iaenet.metrics import au_pro, object_auroc, pixel_auroc, smooth_map

SCORE_KEYS = ("fused", "x1", "x2", "max", "add", "ocsvm")
LIMITS = (0.3, 0.01)


@dataclass
class ScanTruth:
    """The ground truth of one evaluated scan: label 0/1, defect type ("good" for good scans), category, and gt:
    the (H, W) bool mask on the working grid (every pixel, also those without a point, as the published protocol),
    or (N,) bool labels of an unorganized scan's points; None when unknown."""

    label: int
    defect: str
    category: str
    gt: np.ndarray | None


@dataclass
class Evaluation:
    """metrics[group][score][metric]: group = the category, or "category/defect"; predictions and truths in order;
    timings (seconds)."""

    metrics: dict[str, dict[str, dict[str, float]]]
    predictions: list = field(repr=False)
    truths: list[ScanTruth] = field(repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    def table(self, metric_names: Sequence[str] = ("O-AUROC", "P-AUROC", "AUPRO@0.3", "AUPRO@0.01",
                                                   "P-AUROC sigma4", "AUPRO@0.3 sigma4", "AUPRO@0.01 sigma4")) -> str:
        """A plain-text table: one row per group and score."""
        header = ["group", "score"] + list(metric_names)
        rows = [header]
        for group, scores in self.metrics.items():
            for score, values in scores.items():
                rows.append([group, score] + [f"{values[m]:.3f}" if m in values else "-" for m in metric_names])
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def evaluate_predictions(predictions: Sequence, truths: Sequence[ScanTruth], *, sigma: float | None = 4.0,
                         limits: Sequence[float] = LIMITS, num_thresholds: int | None = None,
                         score_keys: Sequence[str] = SCORE_KEYS) -> dict[str, dict[str, dict[str, float]]]:
    """metrics[group][score][metric] for predictions (iaenet.model.Prediction) with their truths."""
    if len(predictions) != len(truths) or not predictions:
        raise ValueError(f"predictions ({len(predictions)}) and truths ({len(truths)}) must be non-empty and pair up")
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(truths):
        groups.setdefault(t.category, []).append(i)
    for category in list(groups):
        members = groups[category]
        good = [i for i in members if truths[i].label == 0]
        for defect in sorted({truths[i].defect for i in members if truths[i].label == 1}):
            groups[f"{category}/{defect}"] = [i for i in members if truths[i].defect == defect] + good
    out = {}
    for group, members in groups.items():
        out[group] = {key: _metrics([predictions[i] for i in members], [truths[i] for i in members], key, sigma,
                                    limits, num_thresholds) for key in score_keys}
    return out


def _metrics(predictions, truths, key: str, sigma, limits, num_thresholds) -> dict[str, float]:
    labels = [t.label for t in truths]
    out = {}
    if 0 < sum(labels) < len(labels):
        out["O-AUROC"] = object_auroc([_object(p, key) for p in predictions], labels)
    with_gt = [(p, t) for p, t in zip(predictions, truths) if t.gt is not None]
    if not with_gt:
        return out
    organized = all(p.grid_shape is not None for p, _ in with_gt)
    if organized:
        maps = [p.score_map(key) for p, _ in with_gt]
    else:
        maps = [p.point_values(key)[None] for p, _ in with_gt]
    gts = [np.asarray(t.gt, bool).reshape(m.shape) for (_, t), m in zip(with_gt, maps)]
    if not any(g.any() for g in gts) or all(g.all() for g in gts):
        return out
    variants = [("", maps)]
    if sigma is not None and organized:
        suffix = f" sigma{sigma:g}"
        variants.append((suffix, [smooth_map(m, sigma) for m in maps]))
    for suffix, ms in variants:
        out[f"P-AUROC{suffix}"] = pixel_auroc(ms, gts)
        if organized:
            for limit, value in au_pro(ms, gts, tuple(limits), num_thresholds=num_thresholds).items():
                out[f"AUPRO@{limit:g}{suffix}"] = value
    return out


def _object(prediction, key: str) -> float:
    if key == "fused":
        return prediction.object_score
    if key in prediction.expert_objects:
        return prediction.expert_objects[key]
    return prediction.baseline_objects[key]


def report_of(evaluation: Evaluation, title: str, model_description: dict[str, str]):
    """The iaenet.report.EvaluationReport of an evaluation: its metrics, and per scan the rendering, ground truth,
    the maps and point scores of every score key plus the selection map and selector output."""
    from iaenet.report import EvaluationReport, ScanRecord

    keys = ("fused", "x1", "x2", "selection", "selector_output")
    records = []
    for p, t in zip(evaluation.predictions, evaluation.truths):
        organized = p.grid_shape is not None
        gt = t.gt if organized else None
        point_labels = (t.gt.reshape(-1)[p.index] if organized else t.gt) if t.gt is not None else None
        records.append(ScanRecord(
            name=p.name, category=t.category, defect=t.defect, label=t.label, image=p.image, gt=gt,
            maps={k: p.score_map(k) for k in keys} if organized else {},
            points=p.points, point_scores={k: p.point_values(k) for k in keys},
            object_scores={"fused": p.object_score, **p.expert_objects, **p.baseline_objects},
            point_labels=point_labels))
    return EvaluationReport(title, model_description, evaluation.metrics, records, evaluation.timings)
