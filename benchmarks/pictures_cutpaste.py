"""The Cut-Paste pictures of docs/synthesis.md: real dev scans before and after synthesis.

Each picture shows, left to right, the cleaned target, the synthesized scan and the same with its ground truth
outlined in red, all shaded from the points' normals under a light from the upper left (colour images would
not show a Cut-Paste defect: only the points change). The data is MVTec 3D-AD (CC BY-NC-SA 4.0); the docs
carry the attribution.

Run:  PYTHONPATH=$PWD python benchmarks/pictures_cutpaste.py [--out docs/img]
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from iaenet.data.cutpaste import CutPasteSynthesizer
from iaenet.data.datasets import open_dataset
from iaenet.data.preprocess import preprocess_scan
from iaenet.ops import estimate_normals_grid

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mvtec3d_dev"
EXAMPLES = ((0, 3), (5, 1), (9, 6))  # (target train/good index, synthesis index): three different looks
LIGHT = np.array([-0.4, -0.5, -1.0]) / np.linalg.norm([-0.4, -0.5, -1.0])  # from the upper left, camera side
MARGIN = 8  # pixels around the part's bounding box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    args = parser.parse_args()
    train = open_dataset(DEV, "cable_gland", "train")
    scans = [preprocess_scan(scan, size=max(scan.points.shape[:2])) for scan in train]
    synthesizer = CutPasteSynthesizer(scans, seed=0)  # a target is never its own donor
    args.out.mkdir(parents=True, exist_ok=True)
    for number, (target_index, index) in enumerate(EXAMPLES):
        target = scans[target_index]
        result = synthesizer.synthesize(target, index)
        rows, cols = _crop(target.valid_mask)
        before, after = _shade(target.points)[rows, cols], _shade(result.points)[rows, cols]
        outlined = after.copy()
        gt = result.gt[rows, cols]
        outlined[gt & ~ndimage.binary_erosion(gt)] = (220, 30, 30)
        gap = np.full((before.shape[0], 4, 3), 255, dtype=np.uint8)
        path = args.out / f"cutpaste_{number}.png"
        Image.fromarray(np.concatenate([before, gap, after, gap, outlined], axis=1)).save(path, optimize=True)
        print(f"{path}: train/good {target_index:03d}, index {index}, {int(result.gt.sum())} gt pixels, "
              f"{path.stat().st_size // 1024} KB")


def _shade(points: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: grey Lambert shading of the grid normals, white where there is no point."""
    normals = estimate_normals_grid(points, window=5)
    grey = np.clip(normals @ LIGHT, 0.0, 1.0) * 0.85 + 0.1
    grey = np.where(np.all(points != 0, axis=-1), grey, 1.0)
    return np.repeat(np.rint(255 * grey).astype(np.uint8)[..., None], 3, axis=2)


def _crop(valid: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.nonzero(valid)
    return (slice(max(rows.min() - MARGIN, 0), rows.max() + MARGIN + 1),
            slice(max(cols.min() - MARGIN, 0), cols.max() + MARGIN + 1))


if __name__ == "__main__":
    main()
