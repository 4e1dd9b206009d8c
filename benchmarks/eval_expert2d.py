"""Evaluates the 2D expert alone (Expert2DScorer: nearest training cell) on one MVTec 3D-AD category.

    PYTHONPATH=$PWD python benchmarks/eval_expert2d.py --data ../shared/data/mvtec3d_dev --category cable_gland

Cell features: --pooling points (default, CPMF's per-point features pooled to cells) or image (the first version);
--cnn-normalisation joint (default, CPMF) or per_stage (Expert2DConfig.cnn_normalisation).
Fits on train/good, scores every test scan, and prints P-AUROC, AU-PRO@0.3 (exact, and 100 thresholds as the
papers), O-AUROC of X2 and the time per scan (views = rendering + normals + FPFH; CNN = backbone + cells; scoring).
Scans are read with iaenet.data.open_dataset and go through its preprocessing (background removal, 224 grid); maps are compared on the 224 grid over
all pixels, zero where no point is, without smoothing (--sigma 4 applies the float Gaussian).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from iaenet.data.datasets import open_dataset
from iaenet.data.preprocess import preprocess_scan
from iaenet.experts.expert2d import Expert2D, Expert2DConfig, Expert2DScorer
from iaenet.experts.pictures2d import save_feature_norm_png, save_rendering_png
from iaenet.metrics import au_pro, object_auroc, pixel_auroc, smooth_map


def main(argv=None) -> dict:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    config = Expert2DConfig(backbone=args.backbone, weights=args.weights, stages=tuple(args.stages),
                            radius=args.radius, camera=args.camera, image_size=args.image_size,
                            image_source=args.image_source, pooling=args.pooling,
                            cnn_normalisation=args.cnn_normalisation)
    expert = Expert2D(config)
    timing = {"views": 0.0, "cnn": 0.0, "score": 0.0}
    train = [preprocess_scan(s) for s in open_dataset(args.data, args.category, "train")]
    test = [preprocess_scan(s) for s in open_dataset(args.data, args.category, "test")]

    scorer = Expert2DScorer(expert).fit(_cells(expert, train, timing))
    test_cells = _cells(expert, test, timing)
    t0 = time.perf_counter()
    scores = scorer.score(test_cells)
    timing["score"] += time.perf_counter() - t0

    maps, gts, objects, labels = [], [], [], []
    for scan, cells, score in zip(test, test_cells, scores):
        flat = np.zeros(scan.points.shape[0] * scan.points.shape[1], np.float32)
        flat[cells.view.grid_index] = score.points
        grid_map = flat.reshape(scan.points.shape[:2])
        maps.append(smooth_map(grid_map, args.sigma) if args.sigma > 0 else grid_map)
        gts.append(scan.gt)
        objects.append(score.object)
        labels.append(int(scan.label))
        if args.pictures:
            stem = "_".join(Path(scan.name).parts[-3::2]).replace(".tiff", "")
            save_rendering_png(Path(args.pictures) / f"{stem}_view.png", cells.view.image)
            save_feature_norm_png(Path(args.pictures) / f"{stem}_cnn_norm.png", cells)
            save_feature_norm_png(Path(args.pictures) / f"{stem}_x2.png", score.cells)
    n = len(train) + len(test)
    result = {
        "category": args.category, "backbone": args.backbone, "stages": args.stages, "radius": args.radius, "image_size": args.image_size, "camera": args.camera,
        "image_source": args.image_source, "pooling": args.pooling,
        "cnn_normalisation": args.cnn_normalisation, "sigma": args.sigma, "train_scans": len(train), "test_scans": len(test),
        "memory_cells": int(scorer.memory.shape[0]), "feature_dim": int(scorer.memory.shape[1]),
        "P-AUROC": pixel_auroc(maps, gts), "AUPRO@0.3": au_pro(maps, gts, (0.3,))[0.3],
        "AUPRO@0.3 (100 thr)": au_pro(maps, gts, (0.3,), num_thresholds=100)[0.3],
        "O-AUROC": object_auroc(objects, labels),
        "seconds_per_scan": {k: v / (n if k != "score" else len(test)) for k, v in timing.items()},
    }
    print(json.dumps(result, indent=1))
    return result


def _cells(expert: Expert2D, scans, timing: dict):
    t0 = time.perf_counter()
    views = [expert.view(s.points, s.rgb, s.normals) for s in scans]
    t1 = time.perf_counter()
    cells = expert.cell_features(views)
    timing["views"] += t1 - t0
    timing["cnn"] += time.perf_counter() - t1
    return cells


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mvtec3d_dev"))
    p.add_argument("--category", default="cable_gland")
    p.add_argument("--backbone", default="efficientnet_lite0", choices=["efficientnet_lite0", "wide_resnet50_2"])
    p.add_argument("--weights", default=None)
    p.add_argument("--stages", type=int, nargs="+", default=[2, 4])
    p.add_argument("--radius", type=int, default=1)
    p.add_argument("--image-size", type=int, default=224, help="rendered image side (the 224 grid is scaled to it)")
    p.add_argument("--camera", default="sensor", choices=["sensor", "fitted"])
    p.add_argument("--image-source", default="render", choices=["render", "rgb"])
    p.add_argument("--pooling", default="points", choices=["points", "image"],
                   help="cell features from per-point features (CPMF, default) or from the pooled image maps")
    p.add_argument("--cnn-normalisation", default="joint", choices=["joint", "per_stage"],
                   help="CNN stages L2-normalised together (CPMF, default) or each on its own (the earlier rule)")
    p.add_argument("--sigma", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pictures", default=None, help="folder for PNGs of each test scan (view, CNN norm, X2)")
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
