"""Report inputs for tests and the docs screenshot: synthetic scans (iaenet.data.synthetic) rendered by the 2D
expert's renderer, with made-up but plausible score maps.

The score maps are not a model's output. They are drawn so that every part of the report has something to
show: a defect raises X1 (3D expert) more for geometric defects and X2 (2D expert) more for the colour defect
("contamination"), so the selection map turns red or blue; one good scan per category carries a false alarm
and one defect per category is faint (a missed defect), so the scan ranking has hard cases to put first.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from iaenet.data.synthetic import DEFECTS, render_sample
from iaenet.metrics import MetricAccumulator, object_auroc, smooth_map
from iaenet.ops.normals import estimate_normals_grid
from iaenet.ops.render import render_organized
from iaenet.report import ScanRecord

SIZE = 224


def synthetic_records(categories=("gland", "ring"), n_good: int = 2, defects=DEFECTS[:2], seed: int = 0,
                      faint_defect: bool = True, false_alarm: bool = True) -> list[ScanRecord]:
    """One ScanRecord per scan: ``n_good`` good scans and one scan per defect type in each category; with
    ``faint_defect`` the first defect scores low, with ``false_alarm`` the first good scan scores high."""
    records = []
    for c, category in enumerate(categories):
        plan = [None] * n_good + list(defects)
        for i, defect in enumerate(plan):
            rng = np.random.default_rng([seed, c, i])
            sample = render_sample(category, rng, defect=defect, resolution=SIZE)
            records.append(_record(f"{category}/{defect or 'good'}/{i:03d}", category, defect, sample, rng,
                                   false_alarm and defect is None and i == 0,
                                   faint_defect and defect is not None and i == n_good))
    return records


def metrics_of(records: list[ScanRecord], sigma: float = 4.0) -> dict:
    """metrics[category or category/defect][key][metric] as the lead's evaluation would give them."""
    categories: dict[str, list[ScanRecord]] = {}
    for record in records:
        categories.setdefault(record.category, []).append(record)
    groups = dict(categories)
    for category, members in categories.items():
        good = [r for r in members if r.label == 0]
        for defect in dict.fromkeys(r.defect for r in members if r.label):
            groups[f"{category}/{defect}"] = good + [r for r in members if r.label and r.defect == defect]
    metrics = {}
    for name, members in groups.items():
        metrics[name] = {}
        for key in ("x1", "x2", "fused"):
            accumulator = MetricAccumulator()
            for r in members:
                gt = r.gt if r.gt is not None else np.zeros((SIZE, SIZE), bool)
                accumulator.add(smooth_map(r.maps[key], sigma), gt, object_score=r.object_scores[key], label=r.label)
            metrics[name][key] = {"O-AUROC": accumulator.object_auroc(), "P-AUROC": accumulator.pixel_auroc(),
                                  "AUPRO@0.3": accumulator.au_pro((0.3,))[0.3]}
        labels = [r.label for r in members]
        for key in ("max", "add"):
            metrics[name][key] = {"O-AUROC": object_auroc([r.object_scores[key] for r in members], labels)}
    return metrics


def _record(name, category, defect, sample, rng, false_alarm: bool, faint: bool) -> ScanRecord:
    valid = sample.part_mask & (sample.xyz != 0).any(axis=2)
    grid = np.where(valid[..., None], sample.xyz, 0).astype(np.float32)
    normals = estimate_normals_grid(grid)
    rows, cols = np.nonzero(valid)
    flat = rows * SIZE + cols
    image, _ = render_organized(grid[rows, cols], normals[rows, cols], flat, (SIZE, SIZE))

    # a bump around the defect (or a false alarm on a good scan), fading over ~8 px
    blob = np.zeros((SIZE, SIZE), bool)
    if sample.gt.any():
        blob = sample.gt
    elif false_alarm:
        r, c = rows[len(rows) // 3], cols[len(cols) // 3]
        blob[max(r - 3, 0):r + 4, max(c - 3, 0):c + 4] = True
    bump = np.zeros_like(image)
    if blob.any():
        bump = np.exp(-ndimage.distance_transform_edt(~blob) ** 2 / (2 * 8.0 ** 2))
    strength = 0.25 if faint else 1.0
    colour_defect = defect == "contamination"
    noise = ndimage.gaussian_filter(rng.standard_normal((2, SIZE, SIZE)), (0, 2, 2)) * 0.25
    x1 = 0.2 + np.abs(noise[0]) + strength * (0.35 if colour_defect else 0.9) * bump
    x2 = 0.2 + np.abs(noise[1]) + strength * (0.9 if colour_defect else 0.45) * bump
    s2 = 1 / (1 + np.exp(-6 * (x2 - x1)))  # the selector leans to the expert that sees more
    combined = x1 * (1 - s2) + x2 * s2
    maps = {"x1": x1, "x2": x2, "selection": x2 * s2 - x1 * (1 - s2), "selector_output": combined,
            "fused": 1 / (1 + np.exp(-10 * (combined - 0.6)))}
    maps = {key: np.where(valid, value, 0).astype(np.float32) for key, value in maps.items()}
    object_scores = {key: float(maps[key][valid].max()) for key in ("x1", "x2", "fused")}
    top1, top2 = object_scores["x1"], object_scores["x2"]
    object_scores.update(max=max(top1, top2), add=top1 + top2)
    return ScanRecord(name=name, category=category, defect=defect, label=int(defect is not None), image=image,
                      gt=sample.gt if defect is not None else None, maps=maps, points=grid[rows, cols],
                      point_scores={key: value[rows, cols] for key, value in maps.items()},
                      object_scores=object_scores, point_labels=sample.gt[rows, cols])
