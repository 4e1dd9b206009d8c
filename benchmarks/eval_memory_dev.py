"""X1 and X2 through the shape-guided dual memory bank on one MVTec 3D-AD category (evidence for docs/memory.md).

    PYTHONPATH=$PWD python benchmarks/eval_memory_dev.py --data ../shared/data/mvtec3d_dev \
        --category cable_gland --expert3d fitted.expert3d.safetensors --out /tmp/memory_eval.json

Preprocesses train/good and test on the 224 grid (iaenet.data), takes the 3D expert from --expert3d (a file of
Expert3D.save; its SDF network is reused, its bank is rebuilt from train/good with the current patch cutting) or
fits one with --preset, computes the 2D expert's f2 of every scan, builds the DualMemoryBank from train/good and
scores every test scan: X1 (3D expert), X2 restricted (this bank: M3D neighbours -> M2D candidates -> top-5 ->
3-atom OMP) and, for comparison, X2 of the 2D expert's stand-alone scorer (nearest of all training cells). Also
times the reference-style cell scoring (Python-loop union, cdist, one sklearn OMP per cell) on the same inputs
and reports its largest difference to ours.
Prints and writes P-AUROC, AU-PRO@0.3 (exact) and O-AUROC (max of the point scores) of each, raw and smoothed
(float Gaussian, sigma 4), the bank sizes and the seconds per scan.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from iaenet.data.io import read_mask_png, read_xyz_tiff
from iaenet.data.preprocess import preprocess_scan
from iaenet.data.scan import Scan
from iaenet.experts import PRESETS, Expert3D, point_scores_to_grid
from iaenet.experts.expert2d import Expert2D, Expert2DConfig, Expert2DScorer
from iaenet.memory import DualMemoryBank, cell_scores_reference, flat_pixel_index
from iaenet.metrics import au_pro, object_auroc, pixel_auroc, smooth_map

GRID = 224


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    root = Path(args.data) / args.category
    train = [_load(p) for p in sorted((root / "train" / "good" / "xyz").glob("*.tiff"))]
    test = [_load(p) for p in sorted((root / "test").glob("*/xyz/*.tiff"))]
    seconds = {}

    start = time.perf_counter()
    if args.expert3d:
        expert3d = Expert3D.load(args.expert3d)
    else:
        expert3d = Expert3D(PRESETS[args.preset])
        expert3d.train([s.valid_points()[0] for s in train], progress=False)
    expert3d.build_bank([s.valid_points()[0] for s in train])
    seconds["expert3d_fit_or_load_and_bank"] = time.perf_counter() - start

    expert2d = Expert2D(Expert2DConfig(pooling=args.pooling, cnn_normalisation=args.cnn_normalisation))
    start = time.perf_counter()
    train_cells, test_cells = expert2d.features(train), expert2d.features(test)
    seconds["expert2d_features_per_scan"] = (time.perf_counter() - start) / (len(train) + len(test))

    start = time.perf_counter()
    bank = DualMemoryBank()
    for i, (scan, cells) in enumerate(zip(train, train_cells)):
        points, _ = scan.valid_points()
        bank.add_scan(expert3d.bank[expert3d.bank_scan == i], expert3d.patches(points),
                      flat_pixel_index(cells.view.pixels, GRID), cells.features, name=scan.name)
    seconds["memory_bank_build"] = time.perf_counter() - start
    if not torch.equal(bank.m3d, expert3d.bank):
        raise RuntimeError("M3D differs from the 3D expert's bank: the neighbours would not refer to the same rows")

    standalone = Expert2DScorer(expert2d).fit(train_cells)
    maps = {"X1": [], "X2_restricted": [], "X2_standalone": []}
    objects = {key: [] for key in maps}
    gts, labels, x2_seconds, reference_seconds, candidate_fraction, reference_gap = [], [], [], [], [], []
    for scan, cells, alone in zip(test, test_cells, standalone.score(test_cells)):
        points, index = scan.valid_points()
        r3 = expert3d.score(points)
        start = time.perf_counter()
        r2 = bank.score(None, r3.patch_idx, flat_pixel_index(cells.view.pixels, GRID), cells.features,
                        neighbours=r3.neighbours)
        x2_seconds.append(time.perf_counter() - start)
        candidate_fraction.append(_candidate_rows(bank, r3.neighbours) / bank.num_cells)
        start = time.perf_counter()
        reference = cell_scores_reference(bank, r3.neighbours, r3.patch_idx, flat_pixel_index(cells.view.pixels, GRID),
                                          cells.features)
        reference_seconds.append(time.perf_counter() - start)
        reference_gap.append(float(np.abs(reference - r2.cell_scores.reshape(-1)).max()))
        for key, values, obj in (("X1", r3.point_scores, r3.object_score),
                                 ("X2_restricted", r2.point_scores, r2.object_score),
                                 ("X2_standalone", alone.points, alone.object)):
            maps[key].append(point_scores_to_grid(np.asarray(values, np.float32), index, (GRID, GRID)))
            objects[key].append(obj)
        gts.append(scan.gt if scan.gt is not None else np.zeros((GRID, GRID), bool))
        labels.append(int(gts[-1].any()))

    result = {"category": args.category, "train_scans": len(train), "test_scans": len(test),
              "expert3d": args.expert3d or f"fitted, preset {args.preset}", "bank": bank.summary(),
              "x2_restricted_seconds_per_scan_median": float(np.median(x2_seconds)),
              "reference_style_cell_scores_seconds_per_scan_median": float(np.median(reference_seconds)),
              "max_abs_difference_to_reference_style_cell_scores": float(np.max(reference_gap)),
              "candidate_rows_fraction_of_m2d_mean": float(np.mean(candidate_fraction)),
              "seconds": seconds, "threads": args.threads, "expert2d_pooling": args.pooling,
              "expert2d_cnn_normalisation": args.cnn_normalisation}
    for key in maps:
        smoothed = [smooth_map(m, 4.0) for m in maps[key]]
        result[key] = {
            "P-AUROC": pixel_auroc(maps[key], gts), "AUPRO@0.3": au_pro(maps[key], gts, (0.3,))[0.3],
            "P-AUROC sigma4": pixel_auroc(smoothed, gts), "AUPRO@0.3 sigma4": au_pro(smoothed, gts, (0.3,))[0.3],
            "O-AUROC": object_auroc(objects[key], labels),
        }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


def _load(xyz: Path) -> Scan:
    gt_file = xyz.parent.parent / "gt" / (xyz.stem + ".png")
    gt = read_mask_png(gt_file) if gt_file.exists() else None
    return preprocess_scan(Scan(points=read_xyz_tiff(xyz), gt=gt, name=f"{xyz.parent.parent.name}/{xyz.stem}"), GRID)


def _candidate_rows(bank: DualMemoryBank, neighbours) -> int:
    """How many M2D rows the M3D neighbours of one test scan make candidates (the restriction's size)."""
    patches = torch.unique(torch.as_tensor(neighbours)).tolist()
    return len(torch.unique(torch.cat([bank.rows[bank.indptr[p]:bank.indptr[p + 1]] for p in patches])))



def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset root holding <category>/train, <category>/test")
    parser.add_argument("--category", default="cable_gland")
    parser.add_argument("--expert3d", help="a fitted Expert3D file (else one is fitted with --preset)")
    parser.add_argument("--preset", default="fast", choices=sorted(PRESETS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pooling", default="points", choices=["points", "image"],
                        help="the 2D expert's cell features (Expert2DConfig.pooling)")
    parser.add_argument("--cnn-normalisation", default="joint", choices=["joint", "per_stage"],
                        help="the 2D expert's CNN part normalisation (Expert2DConfig.cnn_normalisation)")
    parser.add_argument("--out", help="write the results as JSON here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
