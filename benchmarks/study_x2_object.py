"""Study of the 2D expert's object score s2 (docs/expert2d.md §4, "Object score study").

    PYTHONPATH=$PWD python benchmarks/study_x2_object.py --data ../shared/data/mvtec3d_dev --category cable_gland \
        [--diagnose] [--variants base fpfh0.5 ...] [--cache /tmp/x2q_cache]

Fits the stand-alone scorer (Expert2DScorer's rule: nearest non-empty training cell) on train/good for every
feature variant, scores test/*, and reports for every object rule on the same cell scores: P-AUROC, AUPRO@0.3
(exact) raw and after the sigma-4 Gaussian, and O-AUROC. Views (normals + rendering + FPFH) do not depend on the
variants and are computed once (optionally cached as a pickle under --cache).

Feature variants (the name says the change against Expert2DConfig with --cnn-normalisation):
  base            default f2
  stages=A,B      other EfficientNet-Lite0 stage ends
  fpfhW           FPFH part of f2 scaled by W (memory and test), e.g. fpfh0.5
  rot4            the memory also holds each training view turned by 90, 180, 270 degrees (pose coverage)
  mincountM       cells with fewer than M drawn points are left out of the memory and not scored (score 0)
Object rules: max over points (the current s2), max over cells, max of the sigma-4 smoothed point map, mean of the
top-k point scores or cells, PatchCore's reweighted max cell (CPMF's image score, n_reweight = 3, D = sqrt(dim)).
Each O-AUROC is given on the test set and leave-one-out (LOO): the defective test scans against the good test
scans plus every training scan scored against a memory of the others (5 + 32 good scans on the dev subset).
--diagnose prints, per test scan, where its max point score lies, and the spread of the max scores.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from iaenet.data.datasets import open_dataset
from iaenet.data.preprocess import preprocess_scan
from iaenet.experts.expert2d import Expert2D, Expert2DConfig
from iaenet.metrics import au_pro, object_auroc, pixel_auroc, smooth_map

SIGMA = 4.0
TOP_POINTS = (10, 100)
TOP_CELLS = (3, 10)
MARKDOWN_HEADER = ("| variant | P-AUROC | AUPRO@0.3 | P-AUROC s4 | AUPRO@0.3 s4 | O max point | O max s4 map | "
                   "O top-10 points | O top-3 cells | O PatchCore reweighted |\n" + "|---" * 10 + "|")


def main(argv=None) -> dict:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    train, test, train_views, test_views = _views(args)
    labels = [int(s.label) for s in test]
    gts = [s.gt for s in test]
    results = {}
    print(MARKDOWN_HEADER if args.markdown else
          "variant  P-AUROC AUPRO@0.3 P-AUROC(s4) AUPRO@0.3(s4) || O-AUROC per object rule: test / leave-one-out")
    for name in args.variants:
        t0 = time.perf_counter()
        config, fpfh_weight, min_count, rotations = _variant(name)
        config = dataclasses.replace(config, cnn_normalisation=args.cnn_normalisation)
        expert = Expert2D(config)
        train_cells = expert.cell_features(train_views if not rotations else
                                           [_rotated(v, k) for v in train_views for k in range(4)])
        test_cells = expert.cell_features(test_views)
        per_train = [_prepare(c, fpfh_weight, min_count)[0] for c in train_cells]
        owner = np.repeat(np.arange(len(per_train)) // (4 if rotations else 1), [len(f) for f in per_train])
        memory = np.concatenate(per_train)
        scored = [_score(memory, c, fpfh_weight, min_count, config) for c in test_cells]
        grid_maps = [_grid_map(s, c, t) for s, c, t in zip(scored, test_cells, test)]
        smoothed = [smooth_map(m, SIGMA) for m in grid_maps]
        row = {"memory_cells": int(len(memory)),
               "P-AUROC": pixel_auroc(grid_maps, gts), "AUPRO@0.3": au_pro(grid_maps, gts, (0.3,))[0.3],
               "P-AUROC s4": pixel_auroc(smoothed, gts), "AUPRO@0.3 s4": au_pro(smoothed, gts, (0.3,))[0.3]}
        rules = _object_rules(scored, smoothed)
        row.update({f"O-AUROC {rule}": object_auroc(values, labels) for rule, values in rules.items()})
        plain = train_cells[::4] if rotations else train_cells
        loo = [_score(memory[owner != i], c, fpfh_weight, min_count, config) for i, c in enumerate(plain)]
        loo_rules = _object_rules(loo, [smooth_map(_grid_map(s, c, t), SIGMA) for s, c, t in zip(loo, plain, train)])
        row.update({f"LOO O-AUROC {rule}": _loo_auroc(rules[rule], labels, loo_rules[rule]) for rule in rules})
        row["seconds"] = time.perf_counter() - t0
        results[name] = row
        print(_markdown(name, row) if args.markdown else _line(name, row), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        if args.diagnose:
            _diagnose(test, test_cells, scored, labels, config)
            _quantiles("max point, good test", [float(s["points"].max()) for s, y in zip(scored, labels) if y == 0])
            _quantiles("max point, good train (leave-one-out)", [float(s["points"].max()) for s in loo])
            _quantiles("max point, defective test", [float(s["points"].max()) for s, y in zip(scored, labels) if y])
    return results


def _loo_auroc(test_scores, labels, held_out_scores) -> float:
    """O-AUROC of the defective test scans against the good test scans plus every training scan scored against a
    memory of the other training scans (leave-one-out): 37 good scores on the dev subset instead of 5."""
    test_scores, labels = np.asarray(test_scores), np.asarray(labels)
    good = np.concatenate([test_scores[labels == 0], held_out_scores])
    defective = test_scores[labels == 1]
    return object_auroc(np.concatenate([defective, good]), np.r_[np.ones(len(defective)), np.zeros(len(good))])


def _line(name: str, row: dict) -> str:
    """One printed row: pixel metrics, then O-AUROC test / leave-one-out of every object rule."""
    pixel = " ".join(f"{row[k]:.3f}" for k in ("P-AUROC", "AUPRO@0.3", "P-AUROC s4", "AUPRO@0.3 s4"))
    rules = [k[8:] for k in row if k.startswith("O-AUROC ")]
    objects = " | ".join(f"{r}: {row['O-AUROC ' + r]:.3f}/{row['LOO O-AUROC ' + r]:.3f}" for r in rules)
    return f"{name:12s} {pixel} || {objects}"


def _markdown(name: str, row: dict) -> str:
    """One markdown table row: pixel metrics, then O-AUROC test (leave-one-out) of the main object rules."""
    rules = ("max point", "max s4 map", "top10 points", "top3 cells", "patchcore reweighted")
    cells = [f"{row[k]:.3f}" for k in ("P-AUROC", "AUPRO@0.3", "P-AUROC s4", "AUPRO@0.3 s4")]
    cells += [f"{row['O-AUROC ' + r]:.3f} ({row['LOO O-AUROC ' + r]:.3f})" for r in rules]
    return f"| {name} | " + " | ".join(cells) + " |"


def _views(args):
    """(train scans, test scans, their views); views depend only on the default rendering and FPFH settings, so
    they are pickled under --cache and reused (delete the file to recompute)."""
    cache = Path(args.cache) / f"{Path(args.data).name}_{args.category}.pkl" if args.cache else None
    if cache is not None and cache.is_file():
        with open(cache, "rb") as f:
            return pickle.load(f)
    expert = Expert2D()
    train = [preprocess_scan(s) for s in open_dataset(args.data, args.category, "train")]
    test = [preprocess_scan(s) for s in open_dataset(args.data, args.category, "test")]
    out = (train, test, [expert.view(s.points, s.rgb, s.normals) for s in train],
           [expert.view(s.points, s.rgb, s.normals) for s in test])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with open(cache, "wb") as f:
            pickle.dump(out, f)
    return out


def _variant(name: str):
    """-> (Expert2DConfig, FPFH weight, min count, rotated copies in the memory?) of a variant name (see the module
    docstring)."""
    if name == "base":
        return Expert2DConfig(), 1.0, 1, False
    if name == "rot4":
        return Expert2DConfig(), 1.0, 1, True
    if name.startswith("stages="):
        return Expert2DConfig(stages=tuple(int(s) for s in name[7:].split(","))), 1.0, 1, False
    if name.startswith("fpfh"):
        return Expert2DConfig(), float(name[4:]), 1, False
    if name.startswith("mincount"):
        return Expert2DConfig(), 1.0, int(name[8:]), False
    raise ValueError(f"variant: unknown {name!r}")


def _rotated(view, k: int):
    """The view turned by k quarter turns about the optical axis (np.rot90): the image rotated and each point's
    pixel moved with it. Exact for the sensor view, where the shade depends only on |n . p| about the camera."""
    size = view.image.shape[0]
    pixels = view.pixels.copy()
    drawn = pixels[:, 0] >= 0
    for _ in range(k):
        r, c = pixels[drawn, 0].copy(), pixels[drawn, 1].copy()
        pixels[drawn, 0], pixels[drawn, 1] = size - 1 - c, r
    return dataclasses.replace(view, image=np.ascontiguousarray(np.rot90(view.image, k)), pixels=pixels)


def _prepare(cells, fpfh_weight: float, min_count: int):
    """(rows of the kept cells (n, D) float32, their flat cell indices (n,))."""
    keep = np.flatnonzero(cells.counts >= min_count)
    f = cells.features[keep].copy()
    f[:, -33:] *= fpfh_weight
    return np.ascontiguousarray(f, dtype=np.float32), keep


def _score(memory, cells, fpfh_weight, min_count, config):
    """Cell scores (G*G,), point scores (N,), and per-cell nearest memory row, as Expert2DScorer._score_one."""
    import faiss

    index = faiss.IndexFlatL2(memory.shape[1])
    index.add(memory)
    feats, keep = _prepare(cells, fpfh_weight, min_count)
    dist2, nn = index.search(feats, 1)
    g, size = config.cells, config.image_size
    cell_scores = np.zeros(g * g, np.float32)
    cell_scores[keep] = np.sqrt(np.maximum(dist2[:, 0], 0))
    nearest = np.full(g * g, -1, np.int64)
    nearest[keep] = nn[:, 0]
    up = F.interpolate(torch.from_numpy(cell_scores.reshape(g, g))[None, None], size=(size, size), mode="bilinear",
                       align_corners=False)[0, 0].numpy()
    pix = cells.view.pixels
    drawn = pix[:, 0] >= 0
    points = np.zeros(len(pix), np.float32)
    points[drawn] = up[pix[drawn, 0], pix[drawn, 1]]
    full = np.zeros((g * g, memory.shape[1]), np.float32)
    full[keep] = feats
    scored = {"cells": cell_scores, "points": points, "nearest": nearest, "features": full}
    scored["reweighted"] = _reweighted(scored, memory)
    return scored


def _grid_map(scored, cells, scan):
    """The point scores written to the scan's (H, W) grid, zero where there is no point."""
    flat = np.zeros(scan.points.shape[0] * scan.points.shape[1], np.float32)
    flat[cells.view.grid_index] = scored["points"]
    return flat.reshape(scan.points.shape[:2])


def _object_rules(scored, smoothed):
    """{rule name: one object score per scan} from the scored scans and their sigma-4 smoothed grid maps."""
    rules = {"max point": [float(s["points"].max()) for s in scored],
             "max cell": [float(s["cells"].max()) for s in scored],
             "max s4 map": [float(m.max()) for m in smoothed],
             "patchcore reweighted": [s["reweighted"] for s in scored]}
    for k in TOP_POINTS:
        rules[f"top{k} points"] = [float(np.sort(s["points"])[-k:].mean()) for s in scored]
    for k in TOP_CELLS:
        rules[f"top{k} cells"] = [float(np.sort(s["cells"])[-k:].mean()) for s in scored]
    return rules


def _reweighted(scored, memory, n_reweight: int = 3) -> float:
    """PatchCore's image score as BTF/CPMF/M3DM: s* = max cell distance, w = 1 - exp(s*/D) / sum over the
    n_reweight - 1 nearest memory neighbours (after itself) of the test cell's nearest memory row m* of
    exp(|f - m_j| / D), D = sqrt(dim)."""
    cell = int(np.argmax(scored["cells"]))
    s_star = float(scored["cells"][cell])
    m_star = memory[scored["nearest"][cell]]
    order = np.argsort(np.linalg.norm(memory - m_star, axis=1), kind="stable")[1:n_reweight]
    d = np.sqrt(memory.shape[1])
    knn = np.linalg.norm(memory[order] - scored["features"][cell], axis=1)
    return float((1 - np.exp(s_star / d) / np.exp(knn / d).sum()) * s_star)


def _quantiles(what: str, values) -> None:
    """Prints min, quartiles and max of a list of object scores."""
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
    print(f"{what}: n={len(values)} min/q25/median/q75/max " + " ".join(f"{v:.3f}" for v in q))


def _diagnose(test, test_cells, scored, labels, config):
    """Per test scan: the max point score, its cell, that cell's point count, whether the cell is on the rim (an
    empty 4-neighbour cell), the pixel's distance to the image border, how many points score within 2% of the
    max, and whether the max point lies in the defect."""
    g, size = config.cells, config.image_size
    print("scan label max cell count rim border_px n_within2% in_gt max_cell_score max_in_gt max_outside_gt")
    for scan, cells, s, label in zip(test, test_cells, scored, labels):
        i = int(np.argmax(s["points"]))
        r, c = cells.view.pixels[i]
        cell = (int(r) * g // size, int(c) * g // size)
        counts = cells.counts.reshape(g, g)
        padded = np.pad(counts, 1)
        rim = min(padded[cell[0], cell[1] + 1], padded[cell[0] + 2, cell[1] + 1], padded[cell[0] + 1, cell[1]],
                  padded[cell[0] + 1, cell[1] + 2]) == 0
        border = min(r, c, size - 1 - r, size - 1 - c)
        near = int((s["points"] >= 0.98 * s["points"][i]).sum())
        gt = scan.gt.reshape(-1)[cells.view.grid_index] if scan.gt is not None else np.zeros(len(s["points"]), bool)
        in_gt = bool(gt[i])
        inside = f"{s['points'][gt].max():.3f}" if gt.any() else "-"
        outside = f"{s['points'][~gt].max():.3f}"
        print(f"{Path(scan.name).parts[-3]}/{Path(scan.name).stem} {label} {s['points'][i]:.3f} {cell} "
              f"{counts[cell]} {int(rim)} {border} {near} {int(in_gt)} {s['cells'].max():.3f} {inside} {outside}")


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--category", default="cable_gland")
    p.add_argument("--variants", nargs="+", default=["base"])
    p.add_argument("--cache", default=None, help="folder for a pickle of the views (not the features)")
    p.add_argument("--cnn-normalisation", default="joint", choices=["joint", "per_stage"],
                   help="Expert2DConfig.cnn_normalisation of every variant")
    p.add_argument("--diagnose", action="store_true")
    p.add_argument("--markdown", action="store_true", help="print markdown table rows (main object rules)")
    p.add_argument("--json", default=None, help="write all results as JSON here")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
