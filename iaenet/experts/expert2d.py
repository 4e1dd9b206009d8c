"""IAENet's 2D expert: one frontal rendering -> frozen ImageNet CNN -> per-cell features f2, and a stand-alone scorer.

f2 of a scan is a (G*G, C1 + C2 + 33) float32 array, one row per cell of a G x G grid over the image (G = 28).
Default pooling "points" (CPMF's 2D -> point -> cell path): each backbone stage's map is upsampled bilinearly to the
image and read at every drawn point's pixel; the CNN vector (the stages concatenated) and the point's FPFH are
L2-normalised per point, so image and geometry weigh the same (CPMF; `cnn_normalisation="per_stage"` normalises
each stage on its own instead, the earlier rule); the concatenated point features are scattered to the image grid
(zeros where no point is drawn), 3x3 averaged (AvgPool2d(3, stride 1)) and adaptively average pooled to G x G.
Cells without points are set to zero (they are neither stored nor scored). Pooling "image" (the first version):
each stage's map 3x3 averaged and pooled to cells directly (background included), FPFH averaged over the cell's
points, the CNN part(s) and the FPFH L2-normalised per cell.
Points map to cells through their pixels in the image: cell (floor(row * G / H), floor(col * G / W)).

Input of one scan: an organized grid (H, W, 3) float32 in metres, zeros = missing (e.g. iaenet.data's preprocessed
224x224 scan; drawn in the sensor's frontal view), or an unorganized cloud (N, 3) (drawn through Open3D's default
camera fitted to it, looking from the sensor side). Optional: RGB (H, W, 3) uint8 used as the image instead of the
rendering (the paper's Table 10), normals supplied by the dataset (Eyecandies), precomputed FPFH.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F

from iaenet.backbones import BACKBONES, FrozenBackbone, build_backbone
from iaenet.ops.render import PinholeCamera, render_organized, render_pinhole

FPFH_DIMS = 33
IMAGE_SOURCES = ("render", "rgb")
CAMERAS = ("sensor", "fitted")
POOLINGS = ("points", "image")
CNN_NORMALISATIONS = ("joint", "per_stage")
RENDER_SOURCES = ("grid", "full")
VIEW_COUNTS = (1, 3, 9, 27)


@dataclass(frozen=True)
class Expert2DConfig:
    """Sizes of the 2D expert. The defaults are the paper's, with the offline backbone."""

    backbone: str = "efficientnet_lite0"  # one of iaenet.backbones.BACKBONES; "wide_resnet50_2" is the paper's
    weights: str | None = None            # weight file; None = the packaged/hub-cache default
    stages: tuple[int, ...] | None = None  # EfficientNet-Lite stage ends; None = stride 4 + 8; unused for WRN-50-2
    image_size: int = 224
    cells: int = 28
    camera: str = "sensor"                # organized scans: "sensor" (the grid is the view) or "fitted" (CPMF)
    radius: int = 1                       # splat radius in pixels: fills the 224 grid's sparse rows/columns
    splat: str = "square"
    image_source: str = "render"          # "render" or "rgb"
    # "grid": the view is drawn from the working grid's points; "full": from the cleaned full-resolution grid
    # (PreparedScan.full), with normals from that grid, as CPMF renders the full-resolution cloud
    render_source: str = "grid"
    # 1: the frontal view (the paper's); 3, 9, 27: CPMF's views turned by 0 / +-view_angle_deg about x (3), x and y
    # (9), x, y and z (27), the CNN vectors of each point averaged over the views that see it
    views: int = 1
    view_angle_deg: float = 15.0
    fpfh_k: int = 100                     # BTF/CPMF: FPFH over the 100 nearest, normals over the 30 nearest
    normals_k: int = 30
    batch_size: int = 8
    pooling: str = "points"               # "points" (CPMF: per-point features pooled to cells) or "image"
    # "joint" (CPMF): the stages' vectors concatenated and L2-normalised as one part, CNN : FPFH = 1 : 1 in length;
    # "per_stage": each stage normalised on its own (CNN : FPFH = sqrt(#stages) : 1), the earlier rule
    cnn_normalisation: str = "joint"

    def __post_init__(self):
        for name, allowed in (("backbone", BACKBONES), ("image_source", IMAGE_SOURCES), ("camera", CAMERAS),
                              ("pooling", POOLINGS), ("cnn_normalisation", CNN_NORMALISATIONS),
                              ("render_source", RENDER_SOURCES), ("views", VIEW_COUNTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        if self.stages is not None:
            object.__setattr__(self, "stages", tuple(int(s) for s in self.stages))
        if self.camera == "fitted" and self.image_source == "rgb":
            raise ValueError("camera: the RGB picture is the sensor's view; use camera='sensor' with image_source='rgb'")
        if self.views > 1 and (self.pooling != "points" or self.image_source != "render"):
            raise ValueError("views: several views need pooling='points' and image_source='render'")
        for name in ("image_size", "cells", "fpfh_k", "normals_k", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.image_size % self.cells:
            raise ValueError(f"cells: {self.cells} must divide image_size {self.image_size}")
        if not 0 < float(self.view_angle_deg) < 90:
            raise ValueError(f"view_angle_deg: expected a number in (0, 90), got {self.view_angle_deg!r}")


@dataclass
class ScanView:
    """What the 2D expert sees of one scan before the CNN.

    image: (H, W, 3) float32 in [0, 1], the rendering (grey) or the RGB picture.
    pixels: (N, 2) int32 (row, col) of each valid point in the image, -1 where it is not drawn.
    grid_index: (N,) int64 flat index of each point in its organized grid, or arange(N) for a cloud.
    fpfh: (N, 33) float32.
    extra: the other views (config.views > 1): (image, pixels) pairs of the same shapes, pixels -1 where the point
      falls outside that image.
    """

    image: np.ndarray
    pixels: np.ndarray
    grid_index: np.ndarray
    fpfh: np.ndarray
    extra: tuple = ()


@dataclass
class ScanCells:
    """f2 of one scan: `features` (G*G, D) float32 (zero rows for cells without points), `counts` (G*G,) int64
    points per cell, `cnn_norm` (G*G,) float32 the length of the CNN maps pooled to the cell (3x3 average, then
    adaptive average; background included) before any normalisation (for pictures), and its `view`."""

    features: np.ndarray
    counts: np.ndarray
    cnn_norm: np.ndarray
    view: ScanView = field(repr=False)


class Expert2D:
    """Turns scans into per-cell features f2 (see the module docstring). Frozen: no fitting happens here."""

    def __init__(self, config: Expert2DConfig | None = None, backbone: FrozenBackbone | None = None,
                 device: str | torch.device = "cpu"):
        self.config = config or Expert2DConfig()
        if backbone is None:
            backbone = build_backbone(self.config.backbone, self.config.weights, self.config.stages)
        self.device = torch.device(device)
        self.backbone = backbone.to(self.device)  # the CNN runs there; rendering and pooling stay on the CPU
        self.feature_dim = sum(backbone.channels) + FPFH_DIMS

    def view(self, points, rgb=None, normals=None, fpfh=None, full=None) -> ScanView:
        """Renders one scan and computes its FPFH.

        points: (H, W, 3) organized grid or (N, 3) cloud, float32 metres, zeros = missing.
        rgb: (H, W, 3) uint8 aligned with the grid (needed when image_source is "rgb").
        normals: same layout as points (e.g. Eyecandies' own); default estimated (grid PCA / kNN-30 PCA).
        fpfh: (N_valid, 33) for the valid points in row-major order; default iaenet.ops.fpfh (kNN-100).
        full: the cleaned full-resolution square grid of an organized scan (PreparedScan.full), drawn instead of
          `points` when render_source is "full" (points' pixel (i, j) shows full's (floor(i S / H), floor(j S / W))).
        """
        cfg = self.config
        grid, pts, grid_index = _valid_points(points)
        if normals is None:
            nrm = _estimate_normals(grid, pts, cfg.normals_k)
        else:
            nrm = _take_valid(normals, grid, grid_index, "normals")
        size = (cfg.image_size, cfg.image_size)
        # What is drawn: the working points, or the full-resolution grid they were sampled from.
        if cfg.render_source == "full":
            if grid is None or full is None:
                raise ValueError("full: render_source='full' needs an organized scan and its full-resolution grid "
                                 "(iaenet.prepare.PreparedScan.full)")
            draw_grid, draw_pts, draw_index = _valid_points(full)
            draw_nrm = _estimate_normals(draw_grid, draw_pts, cfg.normals_k)
        else:
            draw_grid, draw_pts, draw_index, draw_nrm = grid, pts, grid_index, nrm
        if grid is not None and cfg.camera == "sensor":
            image, _ = render_organized(draw_pts, draw_nrm, draw_index, draw_grid.shape[:2], size, cfg.radius,
                                        cfg.splat)
            pixels = _grid_pixels(grid_index, grid.shape[:2], size)
            camera = PinholeCamera.from_grid(draw_pts, draw_index, draw_grid.shape[:2], size) if cfg.views > 1 else None
        else:
            camera = PinholeCamera.fit(draw_pts, size, rotation=np.eye(3))
            image, _ = render_pinhole(draw_pts, draw_nrm, camera, size, cfg.radius, cfg.splat)
            pixels = camera.project(pts, size)
        extra = []
        if cfg.views > 1:
            centre = (draw_pts.min(axis=0) + draw_pts.max(axis=0)) / 2
            for rotation in view_rotations(cfg.views, cfg.view_angle_deg)[1:]:
                turned = camera.rotated_about(centre, rotation)
                view_image, _ = render_pinhole(draw_pts, draw_nrm, turned, size, cfg.radius, cfg.splat, channels=3)
                extra.append((view_image, turned.project(pts, size)))
        image = np.repeat(image[..., None], 3, axis=-1)
        if cfg.image_source == "rgb":
            image = _rgb_image(rgb, grid, cfg.image_size)
        if fpfh is None:
            from iaenet.ops import fpfh as compute_fpfh

            fpfh = compute_fpfh(pts, k=min(cfg.fpfh_k, len(pts)), normals_k=min(cfg.normals_k, len(pts)))
        fpfh = np.asarray(fpfh, dtype=np.float32)
        if fpfh.shape != (len(pts), FPFH_DIMS) or not np.isfinite(fpfh).all():
            raise ValueError(f"fpfh: expected finite ({len(pts)}, {FPFH_DIMS}) values, got shape {fpfh.shape}")
        return ScanView(image.astype(np.float32), pixels, grid_index, fpfh, tuple(extra))

    def cell_features(self, views: Sequence[ScanView]) -> list[ScanCells]:
        """f2 for each view; the CNN runs in batches of config.batch_size scans (all their views together)."""
        cfg = self.config
        joint = cfg.cnn_normalisation == "joint"
        out = []
        for start in range(0, len(views), cfg.batch_size):
            batch = views[start:start + cfg.batch_size]
            images = [v.image for v in batch] + [image for v in batch for image, _ in v.extra]
            maps = self.backbone(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(self.device))
            pooled = [_pool_to_cells(f[:len(batch)], cfg.cells).cpu() for f in maps]
            if cfg.pooling == "points":
                maps = [F.interpolate(f, size=(cfg.image_size, cfg.image_size), mode="bilinear",
                                      align_corners=False).cpu() for f in maps]
            extra_at = len(batch)
            for b, v in enumerate(batch):
                cnn = [m[b].reshape(m.shape[1], -1).T.numpy() for m in pooled]
                cnn_norm = np.linalg.norm(np.concatenate(cnn, 1), axis=1).astype(np.float32)
                if cfg.pooling == "points":
                    slots = [b] + list(range(extra_at, extra_at + len(v.extra)))
                    stages = _view_averaged_points(maps, slots, [v.pixels] + [p for _, p in v.extra])
                    f2, counts = _point_cells(stages, v, cfg.cells, cfg.image_size, joint)
                else:
                    fpfh, counts = _cell_means(v.fpfh, v.pixels, cfg.cells, cfg.image_size)
                    parts = _cnn_parts(cnn, joint) + [fpfh]
                    f2 = np.concatenate([_l2_normalise(p) for p in parts], 1)
                extra_at += len(v.extra)
                out.append(ScanCells(f2.astype(np.float32), counts, cnn_norm, v))
        return out

    def features(self, scans: Sequence) -> list[ScanCells]:
        """view + cell_features for scans given as arrays, iaenet Scans (.points/.rgb/.normals) or
        iaenet.prepare.PreparedScans (their working grid, and its full-resolution grid for render_source "full")."""
        views = []
        for s in scans:
            full = getattr(s, "full", None)
            s = getattr(s, "scan", s)
            views.append(self.view(getattr(s, "points", s), getattr(s, "rgb", None), getattr(s, "normals", None),
                                   full=full))
        return self.cell_features(views)


def view_rotations(views: int, angle_deg: float) -> list[np.ndarray]:
    """The rotations of CPMF's view set: every combination of 0, +angle, -angle about x (views 3), x and y (9), or
    x, y and z (27); the identity (the frontal view) first."""
    if views not in VIEW_COUNTS:
        raise ValueError(f"views: expected one of {VIEW_COUNTS}, got {views!r}")
    a = np.radians(angle_deg)
    axes = {1: 0, 3: 1, 9: 2, 27: 3}[views]
    out = []
    for angles in itertools.product((0.0, a, -a), repeat=axes):
        rotation = np.eye(3)
        for axis, angle in enumerate(angles):
            rotation = _axis_rotation(axis, angle) @ rotation
        out.append(rotation)
    return out or [np.eye(3)]


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


@dataclass
class Expert2DScore:
    """Scores of one scan: `cells` (G, G) X2 per cell (0 for cells without points), `points` (N,) per valid point
    (bilinear upsampling of the cell map to the image, read at the point's pixel; 0 for undrawn points),
    `object` = s2 = max over the points."""

    cells: np.ndarray
    points: np.ndarray
    object: float


class Expert2DScorer:
    """The 2D expert alone: memory of every non-empty training cell, X2 = distance of a test cell to its nearest
    memory cell (exact, faiss IndexFlatL2). Deterministic: no sampling anywhere."""

    def __init__(self, expert: Expert2D | None = None):
        self.expert = expert or Expert2D()
        self.memory: np.ndarray | None = None
        self._index = None

    def fit(self, scans: Sequence) -> "Expert2DScorer":
        """scans: good training scans (arrays, Scan objects, or ScanCells already computed)."""
        cells = self._cells(scans)
        if not cells:
            raise ValueError("fit: no training scans given")
        self.memory = np.ascontiguousarray(np.concatenate([c.features[c.counts > 0] for c in cells]))
        import faiss

        self._index = faiss.IndexFlatL2(self.memory.shape[1])
        self._index.add(self.memory)
        return self

    def score(self, scans: Sequence) -> list[Expert2DScore]:
        if self._index is None:
            raise RuntimeError("score: call fit() with good scans first")
        return [self._score_one(c) for c in self._cells(scans)]

    def _score_one(self, cells: ScanCells) -> Expert2DScore:
        g, size = self.expert.config.cells, self.expert.config.image_size
        occupied = np.flatnonzero(cells.counts > 0)
        dist2, _ = self._index.search(np.ascontiguousarray(cells.features[occupied]), 1)
        cell_scores = np.zeros(g * g, dtype=np.float32)
        cell_scores[occupied] = np.sqrt(np.maximum(dist2[:, 0], 0))
        cell_map = cell_scores.reshape(g, g)
        up = F.interpolate(torch.from_numpy(cell_map)[None, None], size=(size, size), mode="bilinear",
                           align_corners=False)[0, 0].numpy()
        pix = cells.view.pixels
        drawn = pix[:, 0] >= 0
        point_scores = np.zeros(len(pix), dtype=np.float32)
        point_scores[drawn] = up[pix[drawn, 0], pix[drawn, 1]]
        return Expert2DScore(cell_map, point_scores, float(point_scores.max()))

    def _cells(self, scans: Sequence) -> list[ScanCells]:
        if all(isinstance(s, ScanCells) for s in scans):
            return list(scans)
        return self.expert.features(scans)


def _valid_points(points):
    """(grid or None, valid points (N,3) float32, grid_index (N,) int64) of an organized grid or a cloud."""
    arr = np.asarray(points)
    if arr.dtype.kind != "f" or arr.ndim not in (2, 3) or arr.shape[-1] != 3:
        raise ValueError(f"points: expected an (H, W, 3) grid or (N, 3) cloud of floats, got {arr.shape} {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    flat = arr.reshape(-1, 3)
    index = np.flatnonzero(np.all(flat != 0, axis=1))
    if index.size == 0:
        raise ValueError("points: no valid point (all have a zero coordinate)")
    pts = np.ascontiguousarray(flat[index])
    if not np.isfinite(pts).all():
        raise ValueError("points: contains NaN or inf")
    return (arr if arr.ndim == 3 else None), pts, index.astype(np.int64)


def _take_valid(values, grid, grid_index, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float32)
    want = grid.shape if grid is not None else None
    if (want is not None and arr.shape != want) or arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected the layout of points {want}, got {arr.shape}")
    out = np.ascontiguousarray(arr.reshape(-1, 3)[grid_index])
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return out


def _estimate_normals(grid, pts, k: int) -> np.ndarray:
    from iaenet.ops import estimate_normals, estimate_normals_grid

    if grid is not None:
        flat = np.asarray(estimate_normals_grid(np.ascontiguousarray(grid))).reshape(-1, 3)
        return np.ascontiguousarray(flat[np.all(grid.reshape(-1, 3) != 0, axis=1)])
    return np.asarray(estimate_normals(pts, k=min(k, len(pts))))


def _rgb_image(rgb, grid, size: int) -> np.ndarray:
    """RGB (H, W, 3) uint8 -> (size, size, 3) float in [0, 1], bicubic like the references' torchvision Resize."""
    if rgb is None:
        raise ValueError("rgb: image_source='rgb' needs the scan's RGB image")
    if grid is None:
        raise ValueError("rgb: image_source='rgb' needs an organized scan (the picture is aligned with its grid)")
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or (grid is not None and arr.shape[:2] != grid.shape[:2]):
        raise ValueError(f"rgb: expected (H, W, 3) aligned with the grid, got {arr.shape}")
    t = torch.from_numpy(arr.astype(np.float32) / 255).permute(2, 0, 1)[None]
    t = F.interpolate(t, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return t[0].permute(1, 2, 0).clamp(0, 1).numpy()


def _pool_to_cells(feature_map: torch.Tensor, cells: int) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, cells, cells): 3x3 average (stride 1, no padding), then adaptive average pooling."""
    return F.adaptive_avg_pool2d(F.avg_pool2d(feature_map, 3, stride=1), cells)


def _grid_pixels(grid_index: np.ndarray, grid_shape, size) -> np.ndarray:
    """(N, 2) int32 (row, col) where render_organized draws grid cells `grid_index` of a grid_shape grid on a
    `size` image: (floor((r + 0.5) H / Hg), floor((c + 0.5) W / Wg))."""
    (gh, gw), (h, w) = grid_shape, size
    rows, cols = np.divmod(grid_index.astype(np.int64), gw)
    return np.stack([((2 * rows + 1) * h) // (2 * gh), ((2 * cols + 1) * w) // (2 * gw)], 1).astype(np.int32)


def _view_averaged_points(maps: list[torch.Tensor], slots: list[int], pixels: list[np.ndarray]) -> list[np.ndarray]:
    """Each stage's vector (n, C_i) for the n points drawn in the frontal view (pixels[0] >= 0): the upsampled maps
    (B, C_i, H, W) of the batch entries `slots` (the scan's views, frontal first) read at each point's pixel in
    that view, averaged over the views whose image holds the point (CPMF's multi-view average)."""
    drawn = pixels[0][:, 0] >= 0
    sums = [np.zeros((int(drawn.sum()), m.shape[1]), np.float32) for m in maps]
    seen = np.zeros(int(drawn.sum()), np.float32)
    for slot, pix in zip(slots, pixels):
        pix = pix[drawn]
        inside = pix[:, 0] >= 0
        rows, cols = pix[inside, 0].astype(np.int64), pix[inside, 1].astype(np.int64)
        for total, m in zip(sums, maps):
            total[inside] += m[slot].numpy()[:, rows, cols].T
        seen[inside] += 1
    return [total / seen[:, None] for total in sums]


def _point_cells(stages: list[np.ndarray], view: ScanView, cells: int, size: int,
                 joint: bool) -> tuple[np.ndarray, np.ndarray]:
    """CPMF's cell features of one scan: (G*G, D) float32, and the point count (G*G,) per cell.

    stages: each stage's (n, C_i) vector of the n points drawn in the frontal view (view.pixels >= 0). Per point
    the CNN part (the stages concatenated when `joint`, CPMF; else each stage) and the FPFH are L2-normalised;
    scattered to the frontal (D, size, size) image grid with zeros elsewhere (points sharing a pixel, possible
    through the pinhole camera, averaged there), AvgPool2d(3, 1) (no padding) then AdaptiveAvgPool2d(G), as CPMF.
    Both poolings are linear and separable, so they run as the sparse product of the points with _pooling_matrix
    weights instead of on the dense (D, H, W) grid, which is mostly zeros.
    Pooling windows reach one pixel past a cell, so rows of cells without points are zeroed: they are not
    scored, and a neighbour's spill is not a feature of theirs.
    """
    drawn = view.pixels[:, 0] >= 0
    rows, cols = view.pixels[drawn, 0].astype(np.int64), view.pixels[drawn, 1].astype(np.int64)
    parts = _cnn_parts(stages, joint) + [view.fpfh[drawn]]
    point_features = np.concatenate([_l2_normalise(p) for p in parts], 1).astype(np.float32)
    height = width = size
    flat = rows * width + cols
    share = 1.0 / np.bincount(flat, minlength=height * width)[flat]
    row_w = _pooling_matrix(height, cells)[:, rows]  # (G, n): each point's weight in each cell row
    col_w = _pooling_matrix(width, cells)[:, cols]
    ri, rp = np.nonzero(row_w)  # a pixel row reaches one or two cell rows
    # pair every (cell row, point) weight with every (cell column, same point) weight: the point's 2D weights
    pair, cp = np.nonzero(col_w.T[rp])
    point = rp[pair]
    weight = row_w[ri[pair], point] * col_w[cp, point] * share[point]
    pooling = scipy.sparse.csr_array((weight, (ri[pair] * cells + cp, point)), shape=(cells * cells, len(rows)))
    features = (pooling @ point_features).astype(np.float32)
    counts = _cell_counts(view.pixels, cells, height)
    features[counts == 0] = 0
    return features, counts


def _cnn_parts(stages: list[np.ndarray], joint: bool) -> list[np.ndarray]:
    """The CNN parts to be L2-normalised one by one: the stages' (n, C_i) vectors concatenated into one (n, sum C_i)
    part when `joint` (CPMF: CNN and FPFH weigh the same), else each stage on its own."""
    return [np.concatenate(stages, 1)] if joint else stages


@functools.lru_cache(maxsize=8)
def _pooling_matrix(size: int, cells: int) -> np.ndarray:
    """(cells, size) float64, read-only (cached): AvgPool1d(3, stride 1, no padding) followed by
    AdaptiveAvgPool1d(cells) as one matrix (applied to rows and to columns it is CPMF's 2D pooling). Window i of the
    adaptive pooling over the L = size - 2 filtered values is [floor(i L / cells), ceil((i + 1) L / cells))
    (torch's rule)."""
    length = size - 2
    k = np.arange(length)
    box = np.zeros((length, size))
    for shift in range(3):
        box[k, k + shift] = 1 / 3
    i = np.arange(cells)
    lo, hi = (i * length) // cells, -((-(i + 1) * length) // cells)
    inside = (k >= lo[:, None]) & (k < hi[:, None])
    matrix = (inside / (hi - lo)[:, None]) @ box
    matrix.setflags(write=False)
    return matrix


def _cell_means(fpfh: np.ndarray, pixels: np.ndarray, cells: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean FPFH (G*G, 33) float64 of the drawn points of each cell, and the point count (G*G,) per cell."""
    drawn = pixels[:, 0] >= 0
    cell = _cell_of(pixels[drawn], cells, size)
    counts = np.bincount(cell, minlength=cells * cells)
    sums = np.zeros((cells * cells, fpfh.shape[1]))
    np.add.at(sums, cell, fpfh[drawn])
    return sums / np.maximum(counts, 1)[:, None], counts


def _cell_counts(pixels: np.ndarray, cells: int, size: int) -> np.ndarray:
    """Drawn points per cell, (G*G,) int64."""
    return np.bincount(_cell_of(pixels[pixels[:, 0] >= 0], cells, size), minlength=cells * cells)


def _cell_of(pixels: np.ndarray, cells: int, size: int) -> np.ndarray:
    """Flat cell index (floor(row * G / size), floor(col * G / size)) of drawn pixels (n, 2)."""
    return (pixels[:, 0].astype(np.int64) * cells // size) * cells + pixels[:, 1].astype(np.int64) * cells // size


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows (cells without points) stay zero."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1)
