"""A seeded synthetic anomaly-detection dataset in the MVTec 3D-AD file layout.

``generate_dataset(out)`` writes, for each part category::

    <out>/<category>/train/good/{xyz,rgb}/000.tiff|png ...
    <out>/<category>/validation/good/{xyz,rgb}/...
    <out>/<category>/test/good/{xyz,rgb,gt}/...
    <out>/<category>/test/<defect>/{xyz,rgb,gt}/...

xyz: (H, W, 3) float32 TIFF, metres in the scanner frame, zeros where no point was measured;
rgb: (H, W, 3) uint8 PNG; gt: (H, W) uint8 PNG, 0 normal, 255 anomalous. It is the embedded
default data for ``iaenet demo`` and the fast tests, so that neither needs the licensed MVTec
data. See docs/synthetic.md for the scene, the scanner model and the defects.

``render_sample(category, rng, defect)`` renders one scan in memory. Its generator is split into
independent streams for the specimen's pose, the defect and the scanner, so the same ``rng``
seed with and without a defect gives the same specimen under the same scanner noise: the two
scans differ only where the defect changed the part.
"""
from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from iaenet.data.io import prepare_output_folder, write_mask_png, write_xyz_tiff
from iaenet.data.synthetic_defects import DEFECTS, apply_defect
from iaenet.data.synthetic_parts import MM, PARTS, PartDesign

__all__ = ["CATEGORIES", "DEFECTS", "SyntheticSample", "generate_dataset", "render_sample"]

CATEGORIES: tuple[str, ...] = tuple(PARTS)

MIN_RESOLUTION, MAX_RESOLUTION = 32, 4096

# Scene: an 80 mm square field of view on a table 0.40 m away, tilted a few degrees.
FIELD_OF_VIEW = 80 * MM
NOMINAL_DISTANCE = 0.40
DISTANCE_JITTER = 4 * MM
TABLE_TILT_DEG = (4.0, -3.0)  # about the image x and y axes
TILT_JITTER_DEG = 1.0
TABLE_ALBEDO = (0.05, 0.05, 0.055)

# Specimen variation: where and how the part lies, and its size.
OFFSET_JITTER = 3 * MM
YAW_JITTER_DEG = 4.0
SCALE_RANGE = (0.97, 1.03)

# Scanner: depth noise along the ray, dropouts, projector shadows. The dropout rates are
# fitted to MVTec 3D-AD cable_gland scans: the bright part returns ~95% of its points at every
# pixel parity, the dark table 82% / 72% / 66% / 21% at (even, odd) row x (even, odd) column.
DEPTH_NOISE = 0.1 * MM
DROPOUT_BASE = 0.03  # every pixel
DARK_LUMINANCE = (0.05, 0.30)  # dark-surface dropouts: full effect at or below, none at or above
DROPOUT_DARK = 0.15  # extra dropout on dark surfaces, any pixel
PARITY_DROPOUT = np.array([[0.0, 0.12], [0.20, 0.74]])  # extra on dark surfaces by (row, column) parity
SLOPE_DROPOUT_DEG = (60.0, 85.0)  # dropout ramps from none to certain between these slopes to the table
PROJECTOR_ELEVATION_DEG = 65.0  # the projector lights from the +x side; lower points get shadowed
SHADOW_TOLERANCE = 1e-6  # metres; keeps a flat surface from shadowing itself by rounding

# Camera image: Lambert + a little Blinn-Phong under one light near the camera.
LIGHT = np.array([-0.35, -0.45, -1.0]) / np.linalg.norm([-0.35, -0.45, -1.0])
AMBIENT, DIFFUSE, SPECULAR, SHININESS = 0.2, 0.8, 0.25, 40.0
RGB_NOISE = 1.5  # grey levels

# Defects sit on faces seen at most this obliquely, where the scanner measures them well.
DEFECT_MAX_VIEW_ANGLE_DEG = 45.0

_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SyntheticSample:
    """One synthetic scan.

    xyz: (H, W, 3) float32, metres in the scanner frame (z away from the scanner), zeros where
        no point was measured. rgb: (H, W, 3) uint8. gt: (H, W) bool, the pixels the defect
        changed (all False for a good sample). part_mask: (H, W) bool, the pixels that see the
        part (measured or not). defect: the defect name, or None for a good sample.
    """

    xyz: np.ndarray
    rgb: np.ndarray
    gt: np.ndarray
    part_mask: np.ndarray
    defect: str | None


def generate_dataset(
    out: str | Path,
    categories: Iterable[str] | str | None = None,
    resolution: int = 256,
    n_train: int = 20,
    n_validation: int = 4,
    n_test_good: int = 4,
    n_test_per_defect: int = 3,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic dataset in the MVTec 3D-AD layout and return its root folder.

    out: the dataset root; it must be absent or empty unless ``overwrite`` is True, in which case
        only the folders of the generated categories (and ``synthetic.json``) are replaced.
    categories: names from ``CATEGORIES`` (one name or several), default all.
    resolution: the scans are resolution x resolution pixels (32 to 4096).
    n_train, n_validation, n_test_good: good scans in train/good, validation/good, test/good.
    n_test_per_defect: scans in each test/<defect> folder, for every name in ``DEFECTS``.
    seed: non-negative integer. Every scan has its own generator seeded by (seed, category,
        split, defect, index), so the files are byte-identical for the same arguments and a
        scan does not change when other counts or categories change.

    Also writes ``<out>/synthetic.json`` with the arguments, to tell where the data came from.
    """
    names = _check_categories(categories)
    _check_int("resolution", resolution, MIN_RESOLUTION, MAX_RESOLUTION)
    counts = {"n_train": n_train, "n_validation": n_validation, "n_test_good": n_test_good,
              "n_test_per_defect": n_test_per_defect}
    for name, value in counts.items():
        _check_int(name, value, 0, None)
    _check_int("seed", seed, 0, None)
    out = Path(out)
    prepare_output_folder(out, names, overwrite)

    for name in names:
        for split, folder, defect, count in _plan(n_train, n_validation, n_test_good, n_test_per_defect):
            for index in range(count):
                rng = np.random.default_rng(_sample_key(seed, name, split, defect, index))
                sample = render_sample(name, rng, defect=defect, resolution=resolution)
                _write_sample(out / name / folder, f"{index:03d}", sample, with_gt=split == "test")

    metadata = {"generator": "iaenet.data.synthetic", "format": 1, "categories": names,
                "defects": list(DEFECTS), "resolution": resolution, "seed": seed, **counts}
    (out / "synthetic.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return out


def render_sample(
    category: str, rng: np.random.Generator, defect: str | None = None, resolution: int = 256
) -> SyntheticSample:
    """Render one scan of a ``category`` specimen, with ``defect`` (a name from ``DEFECTS``) or
    good (None). ``rng`` is consumed by three draws only, which seed the pose, defect and scanner
    streams: rendering the same seed with and without a defect gives scans that differ only in
    and right around the defect (see docs/synthetic.md)."""
    if category not in PARTS:
        raise ValueError(f"unknown category {category!r}; known categories: {', '.join(CATEGORIES)}")
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}; known defects: {', '.join(DEFECTS)}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    _check_int("resolution", resolution, MIN_RESOLUTION, MAX_RESOLUTION)
    pose_rng, defect_rng, scanner_rng = (np.random.default_rng(s) for s in rng.integers(0, 2**63, size=3))
    # The scanner draws come first and always, so they do not depend on the defect.
    shape = (resolution, resolution)
    keep_draw = scanner_rng.random(shape)
    depth_noise = scanner_rng.standard_normal(shape)
    rgb_noise = scanner_rng.standard_normal((*shape, 3))

    design = PARTS[category]
    grid = _table_grid(resolution, pose_rng)
    height, part_mask = _place_part(design, grid, pose_rng)
    albedo = np.where(part_mask[..., None], design.albedo, TABLE_ALBEDO)
    pitch = FIELD_OF_VIEW / resolution

    gt = np.zeros(shape, dtype=bool)
    if defect is not None:
        clean_normals = _grid_normals(_surface(grid, height))
        facing = part_mask & (_view_cosine(clean_normals, grid.rays) >= np.cos(np.deg2rad(DEFECT_MAX_VIEW_ANGLE_DEG)))
        effect = apply_defect(defect, grid.u, grid.v, part_mask, facing, albedo, pitch, defect_rng)
        height = height + effect.displacement
        albedo, gt = effect.albedo, effect.mask

    surface = _surface(grid, height)
    normals = _grid_normals(surface)
    rgb = _shade(albedo, normals, grid.rays, rgb_noise)
    valid = _measured(albedo, grid, height, pitch, keep_draw)
    xyz = surface + (DEPTH_NOISE * depth_noise)[..., None] * grid.rays
    xyz = np.where(valid[..., None], xyz, 0.0).astype(np.float32)
    return SyntheticSample(xyz=xyz, rgb=rgb, gt=gt, part_mask=part_mask, defect=defect)


@dataclass(frozen=True)
class _TableGrid:
    """Where each pixel's ray meets the table.

    rays: (H, W, 3) unit ray directions; points: (H, W, 3) table points, metres; normal: (3,)
    unit table normal toward the scanner; u, v: (H, W) table-plane coordinates, metres.
    """

    rays: np.ndarray
    points: np.ndarray
    normal: np.ndarray
    u: np.ndarray
    v: np.ndarray


def _table_grid(resolution: int, rng: np.random.Generator) -> _TableGrid:
    """A pinhole scanner looking down +z at a tilted table; draws distance and tilt from rng."""
    distance = NOMINAL_DISTANCE + rng.uniform(-DISTANCE_JITTER, DISTANCE_JITTER)
    tilt = np.deg2rad(np.asarray(TABLE_TILT_DEG) + rng.uniform(-TILT_JITTER_DEG, TILT_JITTER_DEG, size=2))
    normal = np.array([np.tan(tilt[1]), np.tan(tilt[0]), -1.0])
    normal /= np.linalg.norm(normal)

    focal = resolution * NOMINAL_DISTANCE / FIELD_OF_VIEW  # pixels
    # A principal point off the pixel grid, so that no measured coordinate is exactly 0
    # (MVTec readers treat a point as missing when any coordinate is 0).
    centre = (resolution - 1) / 2.0 + 0.25
    steps = (np.arange(resolution) - centre) / focal
    rays = np.stack(np.broadcast_arrays(steps[None, :], steps[:, None], 1.0), axis=-1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)

    origin = np.array([0.0, 0.0, distance])
    points = rays * ((origin @ normal) / (rays @ normal))[..., None]
    e1 = np.array([1.0, 0.0, 0.0]) - normal[0] * normal
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(e1, normal)
    offset = points - origin
    return _TableGrid(rays=rays, points=points, normal=normal, u=offset @ e1, v=offset @ e2)


def _place_part(design: PartDesign, grid: _TableGrid, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Lay a specimen on the table: draw its offset, yaw and scale, evaluate its height field.
    Returns height (H, W) float64 metres above the table and the part mask (H, W) bool."""
    offset = rng.uniform(-OFFSET_JITTER, OFFSET_JITTER, size=2)
    yaw = np.deg2rad(design.yaw_deg + rng.uniform(-YAW_JITTER_DEG, YAW_JITTER_DEG))
    scale = rng.uniform(*SCALE_RANGE)
    du, dv = grid.u - offset[0], grid.v - offset[1]
    p = (np.cos(yaw) * du + np.sin(yaw) * dv) / scale
    q = (-np.sin(yaw) * du + np.cos(yaw) * dv) / scale
    height, inside = design.height_field(p, q, rng)
    return height * scale, inside


def _surface(grid: _TableGrid, height: np.ndarray) -> np.ndarray:
    """(H, W, 3) surface points: each pixel's table point raised by its height along the table
    normal. One height lookup per pixel; the small parallax between this and the pixel's own
    ray is accepted (docs/synthetic.md)."""
    return grid.points + height[..., None] * grid.normal


def _grid_normals(surface: np.ndarray) -> np.ndarray:
    """(H, W, 3) unit normals of an organized surface, from central differences (one-sided at
    the edges), facing the scanner (negative z)."""
    along_rows = _differences(surface, axis=0)
    along_cols = _differences(surface, axis=1)
    normals = np.cross(along_rows, along_cols)
    return normals / np.linalg.norm(normals, axis=-1, keepdims=True)


def _differences(a: np.ndarray, axis: int) -> np.ndarray:
    """a[i+1] - a[i-1] along ``axis`` (a one-sided step at both ends): the direction of
    np.gradient without its division, which the normalisation makes pointless."""
    a = np.moveaxis(a, axis, 0)
    out = np.empty_like(a)
    out[1:-1] = a[2:] - a[:-2]
    out[0] = a[1] - a[0]
    out[-1] = a[-1] - a[-2]
    return np.moveaxis(out, 0, axis)


def _view_cosine(normals: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Cosine between each normal and the direction back to the scanner."""
    return -np.einsum("hwc,hwc->hw", normals, rays)


def _shade(albedo: np.ndarray, normals: np.ndarray, rays: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 camera image: albedo x (ambient + Lambert) + Blinn-Phong highlight."""
    lambert = np.clip(normals @ LIGHT, 0.0, None)
    half = LIGHT - rays
    half /= np.linalg.norm(half, axis=-1, keepdims=True)
    highlight = np.clip(np.einsum("hwc,hwc->hw", normals, half), 0.0, 1.0) ** SHININESS
    linear = albedo * (AMBIENT + DIFFUSE * lambert)[..., None] + SPECULAR * highlight[..., None]
    return np.clip(np.rint(255.0 * linear + RGB_NOISE * noise), 0, 255).astype(np.uint8)


def _measured(
    albedo: np.ndarray, grid: _TableGrid, height: np.ndarray, pitch: float, keep_draw: np.ndarray
) -> np.ndarray:
    """(H, W) bool: which pixels the scanner returns a point for.

    A pixel survives with probability (1 - base) (1 - slope) (1 - dark) (1 - dark x parity),
    decided by one uniform draw per pixel, and never when the projector's light is blocked.
    """
    luminance = albedo @ np.array([0.299, 0.587, 0.114])
    darkness = np.clip((DARK_LUMINANCE[1] - luminance) / (DARK_LUMINANCE[1] - DARK_LUMINANCE[0]), 0.0, 1.0)
    low, high = np.deg2rad(SLOPE_DROPOUT_DEG)
    slope = np.clip((np.arctan(_smooth_side_slope(height, pitch)) - low) / (high - low), 0.0, 1.0)
    rows = np.arange(height.shape[0]) % 2
    cols = np.arange(height.shape[1]) % 2
    parity = PARITY_DROPOUT[rows[:, None], cols[None, :]]
    survive = (1.0 - DROPOUT_BASE) * (1.0 - slope) * (1.0 - DROPOUT_DARK * darkness) * (1.0 - parity * darkness)
    return (keep_draw < survive) & ~_projector_shadow(height, grid.u)


def _smooth_side_slope(height: np.ndarray, pitch: float) -> np.ndarray:
    """(H, W) tangent of the surface's angle to the table, taking along each axis the
    one-sided difference of smaller magnitude. A pixel on either side of a step then keeps the
    slope of its own face and is measured, as a real scanner measures both the top and the foot
    of a wall; central differences would call both steep and open a gap along every edge."""
    steepness = []
    for axis in (0, 1):
        step = np.abs(np.diff(height, axis=axis))
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 0)
        before = np.pad(step, pad, mode="edge")
        pad[axis] = (0, 1)
        after = np.pad(step, pad, mode="edge")
        steepness.append(np.minimum(before, after))
    return np.hypot(*steepness) / pitch


def _projector_shadow(height: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels the projector (on the +u side, PROJECTOR_ELEVATION_DEG above the
    table) cannot light. Pixel j is shadowed when some pixel j' further along its row rises
    above the light ray: h(j') - h(j) > (u(j') - u(j)) tan(elevation), i.e. when the running
    maximum of g = h - u tan(elevation) over j' > j exceeds g(j)."""
    g = height - u * np.tan(np.deg2rad(PROJECTOR_ELEVATION_DEG))
    ahead = np.maximum.accumulate(g[:, ::-1], axis=1)[:, ::-1]
    beyond = np.concatenate([ahead[:, 1:], np.full((g.shape[0], 1), -np.inf)], axis=1)
    return beyond > g + SHADOW_TOLERANCE


def _plan(n_train: int, n_validation: int, n_test_good: int, n_test_per_defect: int):
    """(split, folder, defect, count) for every folder of one category."""
    yield "train", "train/good", None, n_train
    yield "validation", "validation/good", None, n_validation
    yield "test", "test/good", None, n_test_good
    for defect in DEFECTS:
        yield "test", f"test/{defect}", defect, n_test_per_defect


def _sample_key(seed: int, category: str, split: str, defect: str | None, index: int) -> list[int]:
    """Entropy for one scan's generator: independent of the other scans' counts and order."""
    defect_code = 0 if defect is None else 1 + DEFECTS.index(defect)
    return [seed, CATEGORIES.index(category), _SPLITS.index(split), defect_code, index]


def _write_sample(folder: Path, stem: str, sample: SyntheticSample, with_gt: bool) -> None:
    write_xyz_tiff(folder / "xyz" / f"{stem}.tiff", sample.xyz)
    (folder / "rgb").mkdir(parents=True, exist_ok=True)
    # Fast PNG compression: level 6 would triple the generation time for files 12% smaller.
    Image.fromarray(sample.rgb).save(folder / "rgb" / f"{stem}.png", compress_level=1)
    if with_gt:
        write_mask_png(folder / "gt" / f"{stem}.png", sample.gt)


def _check_categories(categories: Iterable[str] | str | None) -> list[str]:
    if categories is None:
        return list(CATEGORIES)
    names = [categories] if isinstance(categories, str) else list(categories)
    if not names:
        raise ValueError(f"categories is empty; choose from {', '.join(CATEGORIES)}")
    for name in names:
        if name not in PARTS:
            raise ValueError(f"unknown category {name!r}; known categories: {', '.join(CATEGORIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"categories lists a name twice: {names}")
    return names


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
