"""Colour maps and PNG pictures of score maps (numpy and PIL only).

Two colour maps, both sampled at ``LEVELS`` steps so that a coloured map is a small palette PNG:

- ``"score"``: a sequential map for anomaly scores (matplotlib's *inferno*, sampled at eleven points and
  interpolated linearly): black-purple for low scores through red and orange to pale yellow for high ones.
  Its lightness rises monotonically, so a grey print still orders the scores.
- ``"signed"``: a diverging map for signed values such as IAENet's selection map X2*S2 - X1*S1 (ColorBrewer
  *RdBu*): blue below zero (the 3D expert weighs more), white at zero, red above zero (the 2D expert weighs
  more), as in the paper's Fig. 12. Its range is symmetric, [-limit, +limit].

Pixels without a point (``mask`` False) are drawn in ``NO_POINT`` grey, which neither map contains.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from iaenet._files import output_file

LEVELS = 255  # colour steps; with the no-point colour a coloured map fits one 8-bit palette
NO_POINT = (190, 190, 190)
KINDS = ("score", "signed")

# matplotlib's inferno at 0, 0.1, ..., 1 (sRGB, 0..255)
_INFERNO = ((0, 0, 4), (22, 11, 57), (66, 10, 104), (106, 23, 110), (147, 38, 103), (188, 55, 84),
            (221, 81, 58), (243, 120, 25), (252, 165, 10), (246, 215, 70), (252, 255, 164))
# ColorBrewer RdBu (11 classes) from blue (-limit) through white (0) to red (+limit)
_BLUE_WHITE_RED = ((5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240),
                   (247, 247, 247), (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43),
                   (103, 0, 31))


def palette(kind: str = "score") -> np.ndarray:
    """(LEVELS, 3) uint8: the colour of each level of the ``kind`` map, lowest value first."""
    anchors = np.asarray(_anchors(kind), dtype=np.float64)
    at = np.linspace(0, len(anchors) - 1, LEVELS)
    channels = [np.interp(at, np.arange(len(anchors)), anchors[:, c]) for c in range(3)]
    return np.round(np.stack(channels, axis=1)).astype(np.uint8)


def colour_levels(values, vmin: float, vmax: float) -> np.ndarray:
    """The level (uint8 in 0..LEVELS-1) of each value on the scale [vmin, vmax]; values outside are clipped.

    With vmin == vmax, values below, at and above it take the lowest, middle and highest level."""
    values = _finite(values, "values")
    vmin, vmax = _check_range(vmin, vmax)
    if vmax > vmin:
        t = (values - vmin) / (vmax - vmin)
    else:
        t = np.where(values > vmin, 1.0, np.where(values < vmin, 0.0, 0.5))
    return np.round(np.clip(t, 0.0, 1.0) * (LEVELS - 1)).astype(np.uint8)


def colour_map(values, vmin: float, vmax: float, kind: str = "score") -> np.ndarray:
    """(..., 3) uint8 colours of ``values`` (any shape) on the scale [vmin, vmax] of the ``kind`` map."""
    return palette(kind)[colour_levels(values, vmin, vmax)]


def map_picture(score_map, vmin: float, vmax: float, *, kind: str = "score", mask=None) -> Image.Image:
    """A palette picture of an (H, W) map on the scale [vmin, vmax]; NO_POINT grey where ``mask`` is False.

    mask: (H, W) bool, True where the map holds a point's score; None colours every pixel."""
    score_map = _map(score_map, "score_map")
    index = colour_levels(score_map, vmin, vmax)
    colours = palette(kind)
    if mask is not None:
        index[~_mask(mask, score_map.shape)] = LEVELS
        colours = np.vstack([colours, np.asarray(NO_POINT, dtype=np.uint8)])
    picture = Image.fromarray(index)  # "L"; putpalette makes it "P"
    picture.putpalette(colours.ravel().tolist())
    return picture


def blend_picture(background, score_map, vmin: float, vmax: float, *, kind: str = "score", mask=None,
                  alpha: float = 0.6) -> Image.Image:
    """An RGB picture: the map's colours laid over ``background`` with opacity ``alpha`` where ``mask`` is
    True (everywhere when mask is None), the background alone elsewhere.

    background: (H, W) or (H, W, 3) float in [0, 1] or uint8, e.g. the 2D expert's rendering."""
    score_map = _map(score_map, "score_map")
    base = rgb8(background, "background").astype(np.float64)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    if base.shape[:2] != score_map.shape:
        raise ValueError(f"background: shape {base.shape[:2]} differs from the score map's {score_map.shape}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")
    colours = colour_map(score_map, vmin, vmax, kind).astype(np.float64)
    where = np.ones(score_map.shape, bool) if mask is None else _mask(mask, score_map.shape)
    base[where] = (1 - alpha) * base[where] + alpha * colours[where]
    return Image.fromarray(np.round(base).astype(np.uint8))


def gt_picture(image, gt) -> Image.Image:
    """The rendering with the ground truth drawn on it: defect pixels tinted red, their outline pure red.

    image: (H, W) or (H, W, 3) float in [0, 1] or uint8. gt: (H, W) bool or None (the rendering alone)."""
    base = rgb8(image, "image")
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    if gt is None:
        return Image.fromarray(base)
    gt = _mask(gt, base.shape[:2], "gt")
    out = base.astype(np.float64)
    red = np.array([220.0, 20.0, 20.0])
    out[gt] = 0.5 * out[gt] + 0.5 * red
    out[gt & ~_eroded(gt)] = red
    return Image.fromarray(np.round(out).astype(np.uint8))


def grey_picture(image) -> Image.Image:
    """An 8-bit picture of a rendering: (H, W) grey ("L") or (H, W, 3) colour ("RGB")."""
    return Image.fromarray(rgb8(image, "image"))


def write_heatmap_png(path, score_map, vmin: float, vmax: float, background=None, *, kind: str = "score",
                      mask=None, alpha: float = 0.6, overwrite: bool = False) -> Path:
    """Writes an (H, W) score map as a colour PNG on the scale [vmin, vmax] and returns the path.

    background: None for the colour map alone (NO_POINT grey where ``mask`` is False), or the (H, W) or
        (H, W, 3) rendering to blend the colours over (see ``blend_picture``).
    The folder must exist; an existing file is replaced only with ``overwrite=True``.
    """
    if background is None:
        picture = map_picture(score_map, vmin, vmax, kind=kind, mask=mask)
    else:
        picture = blend_picture(background, score_map, vmin, vmax, kind=kind, mask=mask, alpha=alpha)
    return save_png(path, picture, overwrite=overwrite)


def save_png(path, picture: Image.Image, *, overwrite: bool = False) -> Path:
    """Writes a PIL picture as PNG after the checks of ``iaenet._files.output_file``. Returns the path."""
    path = output_file(path, overwrite=overwrite)
    path.write_bytes(png_bytes(picture))
    return path


def png_bytes(picture: Image.Image) -> bytes:
    """The PNG file of a PIL picture, as bytes (for embedding)."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def rgb8(image, name: str = "image") -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 from a float image in [0, 1] (clipped) or a uint8 one."""
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3) or arr.size == 0:
        raise ValueError(f"{name}: expected (H, W) or (H, W, 3), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)


def _anchors(kind: str):
    if kind == "score":
        return _INFERNO
    if kind == "signed":
        return _BLUE_WHITE_RED
    raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")


def _eroded(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` whose four neighbours are in it too (outside the picture counts as outside)."""
    padded = np.pad(mask, 1)
    return (mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])


def _finite(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains {int((~np.isfinite(arr)).sum())} NaN or infinite value(s)")
    return arr


def _map(score_map, name: str) -> np.ndarray:
    arr = _finite(score_map, name)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty (H, W) map, got shape {arr.shape}")
    return arr


def _mask(mask, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"{name}: expected a bool array, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name}: shape {arr.shape} differs from the map's {shape}")
    return arr


def _check_range(vmin, vmax) -> tuple[float, float]:
    vmin, vmax = float(vmin), float(vmax)
    if not (np.isfinite(vmin) and np.isfinite(vmax)) or vmin > vmax:
        raise ValueError(f"colour scale: expected finite vmin <= vmax, got vmin={vmin}, vmax={vmax}")
    return vmin, vmax
