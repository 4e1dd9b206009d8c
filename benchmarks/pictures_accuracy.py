"""Pictures for docs/accuracy.md, from the accuracy study's cache (benchmarks/study_accuracy.py).

    PYTHONPATH=$PWD python benchmarks/pictures_accuracy.py --data ../shared/data/mvtec3d_dev --category cable_gland \
        --cache /tmp/iaenet_accuracy --row lite1_views9 --out docs/img

Writes:
- accuracy_render.png: one scan drawn from the 224 working grid (today's default) and from the cleaned
  full-resolution grid (CPMF), side by side.
- accuracy_failures.png: the highest-scored good evaluation scan and the lowest-scored defective one under the
  row's X2 (dual memory bank, object rule max): rendering, the CNN feature norm per cell, X2 and X1 (each with the
  ground-truth outline; maps on one colour scale per expert across both scans).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from iaenet.experts import PRESETS, point_scores_to_grid
from iaenet.experts.expert2d import Expert2D, Expert2DConfig
from iaenet.memory import DualMemoryBank, MemoryConfig, flat_pixel_index
from iaenet.pictures import grey_picture, map_picture
from study_accuracy import ROWS, Cache, Protocol, _key, expert2d_outputs, expert3d_outputs, fitted_expert3d

GRID = 224


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--category", default="cable_gland")
    parser.add_argument("--cache", required=True, type=Path)
    parser.add_argument("--row", default="lite1_views9", choices=sorted(ROWS))
    parser.add_argument("--out", default=Path("docs/img"), type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    protocol = Protocol.load(args.data, args.category)
    row = ROWS[args.row]
    render_pair(protocol, row, args.out / "accuracy_render.png")
    failures(protocol, row, Cache(args.cache), args.out / "accuracy_failures.png")


def render_pair(protocol: Protocol, row, path: Path) -> None:
    scan = next(p for p, d in zip(protocol.evaluation, protocol.defects) if d != "good")
    base = dataclasses.replace(Expert2DConfig(**row.changes2d), views=1)
    grid_view = Expert2D(dataclasses.replace(base, render_source="grid")).view(scan.scan.points)
    full_view = Expert2D(dataclasses.replace(base, render_source="full")).view(scan.scan.points, full=scan.full)
    pictures = [grey_picture(grid_view.image[..., 0]), grey_picture(full_view.image[..., 0])]
    _sheet([pictures], ["224 working grid", f"full resolution {scan.full.shape[0]}x{scan.full.shape[1]}"], path)


def failures(protocol: Protocol, row, cache: Cache, path: Path) -> None:
    config3d = PRESETS[row.preset3d].replace(**row.changes3d)
    expert3d, _ = fitted_expert3d(protocol, config3d, cache, "pictures")
    key3d = _key(config3d.to_json(), [p.name for p in protocol.fit])
    config2d = Expert2DConfig(**row.changes2d)
    expert2d = Expert2D(config2d)
    x1_fit = expert3d_outputs(expert3d, protocol.fit, cache, key3d)
    x1_eval = expert3d_outputs(expert3d, protocol.evaluation, cache, key3d)
    f2_fit = expert2d_outputs(expert2d, protocol.fit, cache, _key(dataclasses.asdict(config2d)))
    f2_eval = expert2d_outputs(expert2d, protocol.evaluation, cache, _key(dataclasses.asdict(config2d)))
    bank = DualMemoryBank(MemoryConfig())
    for i, (prepared, x1, f2) in enumerate(zip(protocol.fit, x1_fit, f2_fit)):
        bank.add_scan(expert3d.bank[expert3d.bank_scan == i], x1["patch_idx"], flat_pixel_index(f2["pixels"]),
                      f2["features"], name=prepared.name)
    x2 = [bank.score(None, x1["patch_idx"], flat_pixel_index(f2["pixels"]), f2["features"],
                     neighbours=x1["neighbours"]).point_scores for x1, f2 in zip(x1_eval, f2_eval)]
    objects = np.array([s.max() for s in x2])
    labels = np.array(protocol.labels)
    good = int(np.flatnonzero(labels == 0)[np.argmax(objects[labels == 0])])
    missed = int(np.flatnonzero(labels == 1)[np.argmin(objects[labels == 1])])
    chosen = [good, missed]
    maps2 = [point_scores_to_grid(x2[i], protocol.evaluation[i].index, (GRID, GRID)) for i in chosen]
    maps1 = [point_scores_to_grid(x1_eval[i]["x1"], protocol.evaluation[i].index, (GRID, GRID)) for i in chosen]
    hi2, hi1 = max(float(m.max()) for m in maps2), max(float(np.percentile(m[m > 0], 99.5)) for m in maps1)
    rows = []
    for i, m2, m1 in zip(chosen, maps2, maps1):
        prepared = protocol.evaluation[i]
        cells = Expert2D(config2d, backbone=expert2d.backbone).features([prepared])[0]
        norm = np.kron(cells.cnn_norm.reshape(config2d.cells, config2d.cells), np.ones((8, 8)))
        gt = prepared.scan.gt
        mask = m2 > 0
        rows.append([_outline(grey_picture(cells.view.image[..., 0]), gt),
                     _outline(map_picture(norm, 0, float(norm.max())), gt),
                     _outline(map_picture(m2, 0, hi2, mask=mask), gt),
                     _outline(map_picture(np.minimum(m1, hi1), 0, hi1, mask=mask), gt)])
    names = [f"{protocol.evaluation[i].name.split('cable_gland/')[-1]} (s2 {objects[i]:.3f})" for i in chosen]
    _sheet(rows, ["rendering", "CNN feature norm", "X2", "X1"], path, row_titles=names)


def _outline(picture: Image.Image, gt) -> Image.Image:
    if gt is None or not gt.any():
        return picture
    from scipy import ndimage

    edge = gt & ~ndimage.binary_erosion(gt)
    pixels = np.array(picture.convert("RGB"))
    pixels[edge] = (0, 255, 0)
    return Image.fromarray(pixels)


def _sheet(rows, titles, path: Path, row_titles=None) -> None:
    size, pad, head = GRID, 6, 18
    width = len(rows[0]) * (size + pad) + pad
    height = len(rows) * (size + pad + (head if row_titles else 0)) + head + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(titles):
        draw.text((pad + c * (size + pad), 3), title, fill="black")
    y = head
    for r, pictures in enumerate(rows):
        if row_titles:
            draw.text((pad, y + 2), row_titles[r], fill="black")
            y += head
        for c, picture in enumerate(pictures):
            sheet.paste(picture.convert("RGB").resize((size, size)), (pad + c * (size + pad), y))
        y += size + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
