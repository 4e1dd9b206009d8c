"""Shaded, z-buffered point-splat rendering (kernel: csrc/render).

Two camera modes:
- organized scans: the sensor grid is the frontal view. Each point is drawn at its own grid cell, scaled to the
  output size (cell centre -> pixel), and shaded as seen from the sensor origin.
- unorganized clouds: a pinhole camera, by default fitted to the bounding box like Open3D's default view
  (`PinholeCamera.fit`), or any given intrinsic/extrinsic.

Shade = 0.5 * (0.7 + 1.06 * |cos(normal, direction to the camera)|): grey albedo, light at the eye, foreground in
0.35..0.88, background white 1.0. The nearest point wins each pixel, ties to the lower index.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from iaenet.ops._arrays import (as_float_array, as_index_array, check_same_kind, empty_like_kind, is_cuda, is_torch,
                                stream_of, to_numpy)
from iaenet.ops._ext import ext
from iaenet.ops._params import check_int, check_positive

SPLATS = ("square", "disc")
ALBEDO, AMBIENT, DIFFUSE, BACKGROUND = 0.5, 0.7, 1.06, 1.0  # mirrors csrc/render/render_math.h


@dataclass(frozen=True)
class PinholeCamera:
    """A pinhole camera: `intrinsic` (3,3) [[fx,0,cx],[0,fy,cy],[0,0,1]] in pixels, `extrinsic` (4,4) world ->
    camera (camera looks along its +z, image rows along +y). Pixel (row, col) has its centre at (x=col, y=row)."""

    intrinsic: np.ndarray
    extrinsic: np.ndarray

    def __post_init__(self):
        k = np.asarray(self.intrinsic, dtype=np.float64)
        e = np.asarray(self.extrinsic, dtype=np.float64)
        if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise ValueError(f"intrinsic: expected a finite (3,3) matrix with fx, fy > 0, got {k.tolist()}")
        if e.shape != (4, 4) or not np.isfinite(e).all():
            raise ValueError(f"extrinsic: expected a finite (4,4) matrix, got shape {e.shape}")
        object.__setattr__(self, "intrinsic", k)
        object.__setattr__(self, "extrinsic", e)

    @classmethod
    def fit(cls, points, image_size=(224, 224), fov_deg: float = 60.0, zoom: float = 0.7, rotation=None):
        """The camera Open3D's Visualizer picks by default for `points` (N,3): looking at the bounding-box centre
        from distance zoom * max_extent / tan(fov/2), f = (H/2) / tan(fov/2), c = (W/2 - 0.5, H/2 - 0.5).

        rotation: world -> camera (3,3); default diag(1,-1,-1), Open3D's default view (looking down world -z).
        For a sensor-frame cloud (z pointing away from the sensor, as in MVTec 3D-AD) pass np.eye(3) to look from
        the sensor's side: that is the view CPMF gets by flipping the cloud with diag(1,-1,-1) first.
        """
        h, w = _check_size(image_size)
        if not check_positive(fov_deg, "fov_deg") < 180:
            raise ValueError(f"fov_deg: must be in (0, 180), got {fov_deg}")
        zoom = check_positive(zoom, "zoom")
        p = to_numpy(as_float_array(points, "points", ndim=2, last_dim=3)).astype(np.float64)
        if len(p) == 0:
            raise ValueError("points: empty cloud, cannot fit a camera")
        r = np.diag([1.0, -1.0, -1.0]) if rotation is None else np.asarray(rotation, dtype=np.float64)
        if r.shape != (3, 3) or not np.allclose(r @ r.T, np.eye(3), atol=1e-6):
            raise ValueError("rotation: expected a (3,3) orthonormal matrix")
        lo, hi = p.min(axis=0), p.max(axis=0)
        extent = float((hi - lo).max()) or 1.0  # a single point: any scale frames it
        tan_half = math.tan(math.radians(fov_deg) / 2)
        eye = (lo + hi) / 2 - r[2] * (zoom * extent / tan_half)
        extrinsic = np.eye(4)
        extrinsic[:3, :3] = r
        extrinsic[:3, 3] = -r @ eye
        f = (h / 2) / tan_half
        intrinsic = np.array([[f, 0, w / 2 - 0.5], [0, f, h / 2 - 0.5], [0, 0, 1]])
        return cls(intrinsic, extrinsic)

    @classmethod
    def from_grid(cls, points, grid_index, grid_shape, image_size=(224, 224)) -> "PinholeCamera":
        """The pinhole camera that sees an organized scan as `render_organized` draws it: its intrinsics fitted by
        least squares to the pixels where the grid cells are drawn (col = fx x / z + cx, row = fy y / z + cy),
        identity extrinsic. With it a rotated copy of the scan can be drawn at the scale of its frontal view.

        points (N, 3) in sensor coordinates (z > 0), grid_index (N,) flat indices into grid_shape (Hg, Wg).
        """
        h, w = _check_size(image_size)
        gh, gw = _check_size(grid_shape, "grid_shape")
        p = to_numpy(as_float_array(points, "points", ndim=2, last_dim=3)).astype(np.float64)
        gi = to_numpy(as_index_array(grid_index, "grid_index", ndim=1)).astype(np.int64)
        if len(p) < 3 or len(gi) != len(p) or (p[:, 2] <= 0).any():
            raise ValueError("points: need at least 3 points in front of the sensor (z > 0), one grid index each")
        # the pixels render_organized draws the cells at (their centres are at x = col, y = row)
        row_px = ((2 * (gi // gw) + 1) * h) // (2 * gh)
        col_px = ((2 * (gi % gw) + 1) * w) // (2 * gw)
        fits = []
        for ratio, target in ((p[:, 0] / p[:, 2], col_px), (p[:, 1] / p[:, 2], row_px)):
            design = np.stack([ratio, np.ones_like(ratio)], 1)
            (f, c), *_ = np.linalg.lstsq(design, target, rcond=None)
            fits.append((f, c))
        (fx, cx), (fy, cy) = fits
        if not (fx > 0 and fy > 0):
            raise ValueError("points: the grid does not look like a pinhole projection (fitted focal length <= 0)")
        return cls(np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]), np.eye(4))

    def rotated_about(self, centre, rotation) -> "PinholeCamera":
        """This camera looking at the scene turned by `rotation` (3, 3) about the world point `centre` (3,):
        world point p is seen where this camera sees rotation @ (p - centre) + centre."""
        r = np.asarray(rotation, dtype=np.float64)
        c = np.asarray(centre, dtype=np.float64)
        turn = np.eye(4)
        turn[:3, :3] = r
        turn[:3, 3] = c - r @ c
        return PinholeCamera(self.intrinsic, self.extrinsic @ turn)

    def project(self, points, image_size=(224, 224)) -> np.ndarray:
        """(N, 2) int32 (row, col) pixel of each point (N, 3), as the kernel places it (floor(f x / z + c + 0.5));
        -1 for points behind the camera or outside the image."""
        h, w = _check_size(image_size)
        p = to_numpy(as_float_array(points, "points", ndim=2, last_dim=3)).astype(np.float64)
        pc = p @ self.extrinsic[:3, :3].T + self.extrinsic[:3, 3]
        z = pc[:, 2]
        front = z > 0
        safe_z = np.where(front, z, 1.0)
        col = np.floor(self.intrinsic[0, 0] * pc[:, 0] / safe_z + self.intrinsic[0, 2] + 0.5)
        row = np.floor(self.intrinsic[1, 1] * pc[:, 1] / safe_z + self.intrinsic[1, 2] + 0.5)
        inside = front & (row >= 0) & (row < h) & (col >= 0) & (col < w)
        return np.where(inside[:, None], np.stack([row, col], 1), -1).astype(np.int32)

    def as_vector(self) -> list[float]:
        """The 16 floats the kernel takes: rotation (row-major 9), translation 3, fx, fy, cx, cy."""
        k, e = self.intrinsic, self.extrinsic
        return [*e[:3, :3].ravel(), *e[:3, 3], k[0, 0], k[1, 1], k[0, 2], k[1, 2]]


SENSOR_CAMERA = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0, 1.0, 0, 0]  # organized mode: identity extrinsic


def render_organized(points, normals, grid_index, grid_shape, image_size=(224, 224), radius: int = 1,
                     splat: str = "square", channels: int = 1):
    """Renders an organized scan as its sensor's frontal view.

    points, normals: (N,3) float (numpy, or torch on CPU/CUDA), sensor coordinates (z > 0 in front).
    grid_index: (N,) int of the kind of `points` (all numpy, or all torch on one device, else ValueError), flat index of each point in its `grid_shape` (Hg, Wg) sensor grid.
    image_size: (H, W) output; grid cell (r, c) is drawn at pixel (floor((r+0.5)H/Hg), floor((c+0.5)W/Wg)).
    radius: splat radius in output pixels (0 = one pixel); splat: "square" or "disc".
    Returns (image (H,W) float32 or (H,W,3) when channels=3, pixels (N,2) int32 (row, col), -1 if not drawn),
    of the kind and device of `points`.
    """
    gh, gw = _check_size(grid_shape, "grid_shape")
    grid_index = as_index_array(grid_index, "grid_index", ndim=1)
    if is_cuda(points):  # the CPU kernel checks the range itself, in its pass over the points
        gi = to_numpy(grid_index)
        if gi.size and (gi.min() < 0 or gi.max() >= gh * gw):
            raise ValueError(f"grid_index: values must lie in [0, {gh * gw}) for grid_shape {(gh, gw)}")
    return _render(points, normals, grid_index, (gh, gw), SENSOR_CAMERA, image_size, radius, splat, channels)


def render_pinhole(points, normals, camera: PinholeCamera | None = None, image_size=(224, 224), radius: int = 2,
                   splat: str = "square", channels: int = 1):
    """Renders an unorganized cloud through a pinhole camera (default: `PinholeCamera.fit(points, image_size)`,
    Open3D's default view). radius 2 draws 5x5 squares, like Open3D's default point_size 5.
    Returns (image, pixels) as `render_organized`; points behind the camera or off-image get pixel (-1, -1)."""
    if camera is None:
        camera = PinholeCamera.fit(points, image_size)
    if not isinstance(camera, PinholeCamera):
        raise TypeError(f"camera: expected a PinholeCamera, got {type(camera).__name__}")
    return _render(points, normals, None, (1, 1), camera.as_vector(), image_size, radius, splat, channels)


def render_reference(points, normals, camera_vector, grid_index, grid_shape, image_size, radius: int,
                     splat: str) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy rendering with the kernel's float32 arithmetic (for tests). Arguments as the kernel takes them:
    camera_vector is `PinholeCamera.as_vector()` or SENSOR_CAMERA; grid_index None for the pinhole mode."""
    p = to_numpy(points).astype(np.float32)
    nrm = to_numpy(normals).astype(np.float32)
    h, w = image_size
    cam = np.asarray(camera_vector, dtype=np.float32)
    rot, t = cam[:9].reshape(3, 3), cam[9:12]
    fx, fy, cx, cy = cam[12:16]
    pc = _rotate(rot, p) + t
    z = pc[:, 2]
    drawn = (z > 0) & (z < np.float32(3.0e38))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if grid_index is None:
            col = np.floor(fx * pc[:, 0] / z + cx + np.float32(0.5))
            row = np.floor(fy * pc[:, 1] / z + cy + np.float32(0.5))
            drawn &= (row >= -radius) & (col >= -radius) & (row <= h - 1 + radius) & (col <= w - 1 + radius)
        else:
            gi = to_numpy(grid_index).astype(np.int64)
            gh, gw = grid_shape
            row = ((2 * (gi // gw) + 1) * h) // (2 * gh)
            col = ((2 * (gi % gw) + 1) * w) // (2 * gw)
    row = np.where(drawn, row, -1).astype(np.int64)
    col = np.where(drawn, col, -1).astype(np.int64)
    inside = drawn & (row >= 0) & (row < h) & (col >= 0) & (col < w)
    pixels = np.where(inside[:, None], np.stack([row, col], 1), -1).astype(np.int32)
    keys = (z.view(np.uint32).astype(np.int64) << 32) | np.arange(len(p), dtype=np.int64)
    zbuf = np.full(h * w, np.iinfo(np.int64).max, dtype=np.int64)
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            if splat == "disc" and dr * dr + dc * dc > radius * radius:
                continue
            r, c = row + dr, col + dc
            ok = drawn & (r >= 0) & (r < h) & (c >= 0) & (c < w)
            np.minimum.at(zbuf, r[ok] * w + c[ok], keys[ok])
    image = np.full(h * w, BACKGROUND, dtype=np.float32)
    hit = zbuf != np.iinfo(np.int64).max
    winner = (zbuf[hit] & 0xFFFFFFFF).astype(np.int64)
    image[hit] = _shade(rot, pc[winner], nrm[winner])
    return image.reshape(h, w), pixels


def _render(points, normals, grid_index, grid_shape, camera_vector, image_size, radius, splat, channels):
    # The CPU kernel rejects NaN/inf itself (a vectorised pass, cheaper than numpy's isfinite); CUDA inputs are
    # checked here.
    check_finite = is_cuda(points) or is_cuda(normals)
    points = as_float_array(points, "points", ndim=2, last_dim=3, check_finite=check_finite)
    normals = as_float_array(normals, "normals", ndim=2, last_dim=3, check_finite=check_finite)
    if normals.shape[0] != points.shape[0]:
        raise ValueError(f"normals: expected {points.shape[0]} rows (one per point), got {normals.shape[0]}")
    if len(points) == 0:
        raise ValueError("points: empty cloud, nothing to render")
    h, w = _check_size(image_size)
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or not 0 <= radius <= 64:
        raise ValueError(f"radius: expected an int in 0..64 (pixels), got {radius!r}")
    if splat not in SPLATS:
        raise ValueError(f"splat: expected one of {SPLATS}, got {splat!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels: expected 1 or 3, got {channels!r}")
    check_same_kind(points, "points", normals=normals, grid_index=grid_index)
    image = empty_like_kind(points, (h, w), "float32")
    zbuf = empty_like_kind(points, (h, w), "int64")
    pixels = empty_like_kind(points, (len(points), 2), "int32")
    ext().render(points, normals, grid_index, [float(v) for v in camera_vector], grid_shape[0], grid_shape[1],
                 int(radius), splat == "disc", zbuf, image, pixels, stream_of(points))
    if channels == 3:
        image = image[..., None].expand(h, w, 3).contiguous() if is_torch(image) else np.repeat(image[..., None], 3, axis=-1)
    return image, pixels


def _rotate(rot: np.ndarray, v: np.ndarray) -> np.ndarray:
    # (r0*v0 + r1*v1) + r2*v2, the kernel's order of float32 operations
    return np.stack([rot[i, 0] * v[:, 0] + rot[i, 1] * v[:, 1] + rot[i, 2] * v[:, 2] for i in range(3)], axis=1)


def _shade(rot: np.ndarray, pc: np.ndarray, n: np.ndarray) -> np.ndarray:
    nc = _rotate(rot, n)
    dot = nc[:, 0] * pc[:, 0] + nc[:, 1] * pc[:, 1] + nc[:, 2] * pc[:, 2]
    len2 = (nc[:, 0] * nc[:, 0] + nc[:, 1] * nc[:, 1] + nc[:, 2] * nc[:, 2]) * (
        pc[:, 0] * pc[:, 0] + pc[:, 1] * pc[:, 1] + pc[:, 2] * pc[:, 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.where(len2 > 0, np.abs(dot) / np.sqrt(len2), np.float32(0)).astype(np.float32)
    cosine = np.minimum(cosine, np.float32(1))
    return np.float32(ALBEDO) * (np.float32(AMBIENT) + np.float32(DIFFUSE) * cosine)


def _check_size(size, name: str = "image_size") -> tuple[int, int]:
    try:  # ints only: int() would truncate 223.9 and overflow on inf
        h, w = (check_int(v, name) for v in size)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected (height, width) as two ints, got {size!r}") from err
    if h < 1 or w < 1 or h > 16384 or w > 16384:
        raise ValueError(f"{name}: expected sizes in 1..16384, got {(h, w)}")
    return h, w
