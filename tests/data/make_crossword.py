"""Makes tests/data/crossword_224.png, the image the backbone test classifies (ImageNet class 918, crossword puzzle).

A 15x15 crossword grid drawn in numpy: white cells 14 px wide with black 1-px rules, black squares drawn with a
fixed seed (18% of the cells, mirrored through the centre like a real crossword). EfficientNet-Lite0 with its ImageNet
weights gives it p(crossword) ~0.97. Run from the repository root: python tests/data/make_crossword.py
"""
from pathlib import Path

import numpy as np
from PIL import Image


def crossword(size: int = 224, cells: int = 15, seed: int = 0) -> np.ndarray:
    cell = size // cells
    black = np.random.default_rng(seed).random((cells, cells)) < 0.18
    black |= black[::-1, ::-1]
    grid = np.kron(np.where(black, 0, 255), np.ones((cell, cell), dtype=int))
    grid = np.pad(grid, ((0, size - grid.shape[0]), (0, size - grid.shape[1])), constant_values=255)
    yy, xx = np.mgrid[0:size, 0:size]
    grid[(yy % cell == 0) | (xx % cell == 0)] = 0
    return grid.astype(np.uint8)


if __name__ == "__main__":
    Image.fromarray(crossword()).save(Path(__file__).with_name("crossword_224.png"), optimize=True)
