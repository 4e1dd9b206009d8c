"""Fit the 3D expert on one MVTec 3D-AD category and evaluate X1 alone (evidence for docs/expert3d.md).

    PYTHONPATH=$PWD python benchmarks/eval_expert3d_dev.py --data ../shared/data/mvtec3d_dev \
        --category cable_gland --preset fast --out /tmp/expert3d_eval

Trains on <category>/train/good (SDF pre-training on at most max_train_scans of them, bank from all), scores
every <category>/test sample on the 224 grid, and writes to --out: results.json (fit time, per-scan latency,
P-AUROC, AU-PRO@0.3, O-AUROC for s1 = max X1 and for the latent score), loss.txt (epoch, loss, seconds),
loss_curve.png and expert3d.safetensors (the fitted expert).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from iaenet.data.io import read_mask_png, read_xyz_tiff
from iaenet.data.preprocess import preprocess_scan
from iaenet.data.scan import Scan
from iaenet.experts import PRESETS, Expert3D, point_scores_to_grid
from iaenet.metrics import au_pro, object_auroc, pixel_auroc, smooth_map

GRID = 224


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.data) / args.category
    start = time.perf_counter()
    train = [_load(path) for path in sorted((root / "train" / "good" / "xyz").glob("*.tiff"))]
    test = [_load(path) for path in sorted((root / "test").glob("*/xyz/*.tiff"))]
    load_s = time.perf_counter() - start

    config = PRESETS[args.preset].replace(**_overrides(args.set))
    expert = Expert3D(config, device=args.device)
    (out / "loss.txt").unlink(missing_ok=True)
    start = time.perf_counter()
    expert.fit([points for points, *_ in train], names=[name for *_, name in train], progress=not args.quiet,
               log_path=out / "loss.txt")
    fit_s = time.perf_counter() - start
    expert.save(out / "expert3d.safetensors")

    maps, gts, s1, latent, labels, latency = [], [], [], [], [], []
    for points, index, gt, label, _ in test:
        start = time.perf_counter()
        result = expert.score(points)
        latency.append(time.perf_counter() - start)
        maps.append(point_scores_to_grid(result.point_scores, index, (GRID, GRID)))
        gts.append(gt)
        s1.append(result.object_score)
        latent.append(result.latent_score)
        labels.append(label)
    smoothed = [smooth_map(m, 4.0) for m in maps]
    results = {
        "command": "python benchmarks/eval_expert3d_dev.py " + " ".join(argv if argv is not None else _argv()),
        "preset": args.preset, "config": json.loads(expert.config.to_json()),
        "train_scans": len(train), "test_scans": len(test), "bank_size": int(expert.bank.shape[0]),
        "load_and_preprocess_s": round(load_s, 2), "fit_s": round(fit_s, 1),
        "score_latency_s_median": round(float(np.median(latency)), 4),
        "score_latency_s_max": round(float(np.max(latency)), 4),
        "losses": [round(v, 5) for v in expert.losses],
        "p_auroc_raw": pixel_auroc(maps, gts), "aupro_0.3_raw": au_pro(maps, gts, limits=(0.3,))[0.3],
        "p_auroc_smoothed": pixel_auroc(smoothed, gts),
        "aupro_0.3_smoothed": au_pro(smoothed, gts, limits=(0.3,))[0.3],
        "o_auroc_s1_max_x1": object_auroc(s1, labels), "o_auroc_latent_score": object_auroc(latent, labels),
        "threads": args.threads, "device": args.device,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    draw_loss_curve(expert.losses, out / "loss_curve.png", title=f"SDF loss, {args.category}, {args.preset}")
    print(json.dumps({k: v for k, v in results.items() if k not in ("config", "losses")}, indent=2))
    return results


def draw_loss_curve(losses: list[float], path: Path, title: str, size=(640, 400)) -> None:
    """A line plot of the per-epoch loss with labelled axes, drawn with PIL (no plotting library needed)."""
    width, height = size
    left, right, top, bottom = 70, 20, 40, 50
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 12), title, fill="black")
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    lo, hi = min(losses), max(losses)
    span = (hi - lo) or 1.0
    n = max(len(losses) - 1, 1)
    xy = [(left + (width - left - right) * i / n, height - bottom - (height - top - bottom) * (v - lo) / span)
          for i, v in enumerate(losses)]
    if len(xy) > 1:
        draw.line(xy, fill=(31, 119, 180), width=2)
    for x, y in xy:
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(31, 119, 180))
    draw.text((4, top - 6), f"{hi:.4f}", fill="black")
    draw.text((4, height - bottom - 6), f"{lo:.4f}", fill="black")
    draw.text((left, height - bottom + 6), "1", fill="black")
    draw.text((width - right - 20, height - bottom + 6), str(len(losses)), fill="black")
    draw.text(((width - 40) // 2, height - 22), "epoch", fill="black")
    image.save(path)


def _load(path: Path):
    """(points (N, 3), flat grid index (N,), gt (224, 224) bool, label, name) of one preprocessed sample."""
    defect = path.parent.parent.name
    gt_path = path.parent.parent / "gt" / (path.stem + ".png")
    gt = read_mask_png(gt_path) if gt_path.exists() else None
    scan = preprocess_scan(Scan(points=read_xyz_tiff(path), gt=gt, name=str(path)), GRID)
    points, index = scan.valid_points()
    gt224 = scan.gt if scan.gt is not None else np.zeros((GRID, GRID), bool)
    return points, index, gt224, int(defect != "good"), f"{defect}/{path.stem}"


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset root holding <category>/train, <category>/test")
    parser.add_argument("--category", default="cable_gland")
    parser.add_argument("--preset", default="fast", choices=["fast", "paper", "tiny"])
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a config field of the preset, e.g. --set epochs=5 --set learning_rate=1e-3")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def _overrides(pairs: list[str]) -> dict:
    """FIELD=VALUE strings -> typed config changes (values parsed as JSON, e.g. 5, 1e-3, [32, 64])."""
    changes = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: expected FIELD=VALUE")
        parsed = json.loads(value)
        changes[field] = tuple(parsed) if isinstance(parsed, list) else parsed
    return changes


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


if __name__ == "__main__":
    main()
