"""PNG pictures of the 2D expert for reports: the rendered view and the feature-norm map of the cells."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from iaenet.pictures import grey_picture, save_png


def save_rendering_png(path, image) -> Path:
    """Writes a rendering (H, W) or (H, W, 3) float in [0, 1] (or uint8) as an 8-bit PNG, replacing an existing
    file (these are development pictures, rewritten on every run). Returns the path."""
    return save_png(path, grey_picture(image), overwrite=True)


def save_feature_norm_png(path, cells, size: int = 224) -> Path:
    """Writes a per-cell feature-norm map as a grey PNG of `size` x `size` (nearest upscaling of the G x G cells).

    cells: a ScanCells (its `cnn_norm`: length of each cell's pooled CNN feature before normalisation, which shows
    where the backbone responds), or a (G, G) map of norms, or (G*G, D) / (G, G, D) vectors whose norms are drawn.
    The map is scaled by its maximum over the scan: black = 0, white = the largest norm.
    """
    values = getattr(cells, "cnn_norm", cells)
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 3 or (arr.ndim == 2 and getattr(cells, "cnn_norm", None) is None and arr.shape[0] != arr.shape[1]):
        arr = np.linalg.norm(arr.reshape(-1, arr.shape[-1]), axis=1)
    g = int(round(np.sqrt(arr.size)))
    if arr.size == 0 or g * g != arr.size or arr.ndim > 2:
        raise ValueError(f"cells: expected a ScanCells, a (G, G) map or (G*G, D) vectors, got shape {np.shape(values)}")
    if not np.isfinite(arr).all():
        raise ValueError("cells: contains NaN or inf")
    norm = arr.reshape(g, g)
    peak = norm.max()
    grey = np.round(255 * (norm / peak if peak > 0 else norm)).astype(np.uint8)
    return save_png(path, Image.fromarray(grey).resize((size, size), Image.NEAREST), overwrite=True)
