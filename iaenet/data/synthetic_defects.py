"""Defects of the synthetic dataset: local changes of a part's height field and albedo.

A defect is drawn in table-plane coordinates (metres), placed on a part pixel whose surface
faces the scanner, and returns the displacement of the surface along the table normal and
the albedo after the defect. Its footprint, which becomes the ground-truth mask, is exactly
the set of part pixels whose height or albedo changed: displacements smaller than
``MIN_CHANGE`` are set to exactly zero, so no pixel outside the footprint moves at all.

Sizes are drawn in millimetres but never smaller than about 1.5 pixels, so a coarse grid gets
proportionally larger defects instead of ones that fall between pixel centres.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

from iaenet.data.synthetic_parts import MM

DEFECTS: tuple[str, ...] = ("hole", "crack", "bump", "dent", "contamination")

# Half the scanner's depth noise: below this a change is invisible, and cutting the
# displacement there makes the footprint exact (every footprint pixel moves >= 0.05 mm).
MIN_CHANGE = 0.05 * MM

# Colours of foreign material; a contamination takes one that differs clearly from the part.
CONTAMINANT_COLOURS = np.array(
    [
        (0.45, 0.22, 0.08),  # rust
        (0.06, 0.06, 0.06),  # oil, soot
        (0.88, 0.86, 0.74),  # dust, paint
        (0.15, 0.45, 0.15),  # plastic swarf
    ]
)
MIN_COLOUR_DISTANCE = 0.35


@dataclass(frozen=True)
class DefectEffect:
    """What a defect does to one scan.

    displacement: (H, W) float64, metres along the table normal (positive raises the surface),
        exactly 0 outside ``mask``.
    albedo: (H, W, 3) float64 in [0, 1], the albedo after the defect (equal to the input
        outside ``mask``).
    mask: (H, W) bool, the part pixels whose height or albedo changed (the ground truth).
    """

    displacement: np.ndarray
    albedo: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class _Shape:
    """A drawn defect before placement: its reach from the centre (m), its displacement as a
    function of the offsets (du, dv) from the centre, and how it recolours its footprint."""

    extent: float
    displacement: Callable[[np.ndarray, np.ndarray], np.ndarray]
    recolour: Callable[[np.ndarray], np.ndarray] | None = None


def apply_defect(
    kind: str,
    u: np.ndarray,
    v: np.ndarray,
    part_mask: np.ndarray,
    facing: np.ndarray,
    albedo: np.ndarray,
    pitch: float,
    rng: np.random.Generator,
) -> DefectEffect:
    """Draw a defect of ``kind`` and apply it to one scan.

    u, v: (H, W) float64 table-plane coordinates of the pixels, metres.
    part_mask: (H, W) bool, pixels on the part. facing: (H, W) bool, part pixels whose surface
        faces the scanner (candidate centres). albedo: (H, W, 3) float64 in [0, 1].
    pitch: pixel spacing on the table, metres. rng: the defect's own generator.
    """
    if kind not in _SHAPES:
        raise ValueError(f"unknown defect {kind!r}; known defects: {', '.join(DEFECTS)}")
    part_colour = albedo[part_mask].mean(axis=0)
    shape = _SHAPES[kind](rng, pitch, part_colour)
    cu, cv = _pick_centre(shape.extent, u, v, part_mask, facing, pitch, rng)

    displacement = shape.displacement(u - cu, v - cv)
    mask = part_mask & (np.abs(displacement) >= MIN_CHANGE)
    displacement = np.where(mask, displacement, 0.0)
    new_albedo = albedo.copy()
    if shape.recolour is not None:
        new_albedo[mask] = shape.recolour(albedo[mask])
    return DefectEffect(displacement=displacement, albedo=new_albedo, mask=mask)


def _hole(rng: np.random.Generator, pitch: float, part_colour: np.ndarray) -> _Shape:
    """A crater with a sharp rim: 1-2 mm radius, 1.5-2.5 mm deep, dark inside."""
    radius = max(rng.uniform(1.0, 2.0) * MM, 1.5 * pitch)
    depth = rng.uniform(1.5, 2.5) * MM

    def displacement(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
        r2 = (du**2 + dv**2) / radius**2
        bowl = 0.35 + 0.65 * np.sqrt(np.maximum(1.0 - r2, 0.0))
        return np.where(r2 < 1.0, -depth * bowl, 0.0)

    return _Shape(radius, displacement, recolour=lambda colour: 0.4 * colour)


def _crack(rng: np.random.Generator, pitch: float, part_colour: np.ndarray) -> _Shape:
    """A thin V-groove along a kinked line through the centre: 5-9 mm long, 0.5-0.9 mm wide,
    0.8-1.5 mm deep."""
    length = rng.uniform(5.0, 9.0) * MM
    half_width = max(rng.uniform(0.25, 0.45) * MM, 0.8 * pitch)
    depth = rng.uniform(0.8, 1.5) * MM
    heading = rng.uniform(0.0, 2.0 * np.pi)
    kinks = rng.uniform(-0.4, 0.4, size=4)
    step = length / 4.0

    # Two segments forward and two backward from the centre, each turning a little.
    forward = heading + np.cumsum(kinks[:2])
    backward = heading + np.pi + np.cumsum(kinks[2:])
    ahead = np.cumsum(step * np.stack([np.cos(forward), np.sin(forward)], axis=1), axis=0)
    behind = np.cumsum(step * np.stack([np.cos(backward), np.sin(backward)], axis=1), axis=0)
    vertices = np.concatenate([behind[::-1], np.zeros((1, 2)), ahead])

    def displacement(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
        distance = _polyline_distance(du, dv, vertices)
        return -depth * np.maximum(1.0 - distance / half_width, 0.0)

    return _Shape(length / 2.0 + half_width, displacement)


def _bump(rng: np.random.Generator, pitch: float, part_colour: np.ndarray) -> _Shape:
    """A smooth raised dome: 1.5-3 mm radius, 0.5-2 mm high."""
    return _dome(rng, pitch, sign=1.0)


def _dent(rng: np.random.Generator, pitch: float, part_colour: np.ndarray) -> _Shape:
    """A smooth depression: 1.5-3 mm radius, 0.5-2 mm deep."""
    return _dome(rng, pitch, sign=-1.0)


def _dome(rng: np.random.Generator, pitch: float, sign: float) -> _Shape:
    radius = max(rng.uniform(1.5, 3.0) * MM, 2.0 * pitch)
    amplitude = sign * rng.uniform(0.5, 2.0) * MM

    def displacement(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
        r2 = (du**2 + dv**2) / radius**2
        return amplitude * np.maximum(1.0 - r2, 0.0) ** 2

    return _Shape(radius, displacement)


def _contamination(rng: np.random.Generator, pitch: float, part_colour: np.ndarray) -> _Shape:
    """A blob of foreign material: three overlapping rounded lumps 0.8-1.6 mm in radius within
    1 mm of the centre, 0.3-1 mm high, in a colour that differs from the part's."""
    radii = np.maximum(rng.uniform(0.8, 1.6, size=3) * MM, 1.2 * pitch)
    offsets = rng.uniform(-1.0, 1.0, size=(3, 2)) * MM
    offsets[0] = 0.0  # the first lump sits on the centre, so the blob covers the chosen pixel
    height = rng.uniform(0.3, 1.0) * MM
    far = np.linalg.norm(CONTAMINANT_COLOURS - part_colour, axis=1) >= MIN_COLOUR_DISTANCE
    colour = CONTAMINANT_COLOURS[far][rng.integers(far.sum())]

    def displacement(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
        lumps = [1.0 - ((du - ou) ** 2 + (dv - ov) ** 2) / r**2 for (ou, ov), r in zip(offsets, radii)]
        return height * np.sqrt(np.clip(np.max(lumps, axis=0), 0.0, 1.0))

    extent = float(np.max(np.linalg.norm(offsets, axis=1) + radii))
    return _Shape(extent, displacement, recolour=lambda albedo: np.broadcast_to(colour, albedo.shape))


_SHAPES: dict[str, Callable[[np.random.Generator, float, np.ndarray], _Shape]] = {
    "hole": _hole,
    "crack": _crack,
    "bump": _bump,
    "dent": _dent,
    "contamination": _contamination,
}


def _pick_centre(
    extent: float,
    u: np.ndarray,
    v: np.ndarray,
    part_mask: np.ndarray,
    facing: np.ndarray,
    pitch: float,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """A pixel on the part, facing the scanner, with the whole defect on the facing surface
    around it (so a defect never straddles an edge or a step) when there is room; otherwise one
    of the facing pixels deepest inside the facing surface."""
    pool = facing if facing.any() else part_mask
    room = ndimage.distance_transform_edt(pool) * pitch  # metres to the nearest edge or step
    candidates = room >= extent + pitch
    if not candidates.any():
        candidates = room >= 0.5 * room.max()
    index = np.flatnonzero(candidates)[rng.integers(np.count_nonzero(candidates))]
    return float(u.flat[index]), float(v.flat[index])


def _polyline_distance(du: np.ndarray, dv: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Distance (m) from each point (du, dv) to the polyline through ``vertices`` (K, 2)."""
    distance = np.full(du.shape, np.inf)
    for (ax, ay), (bx, by) in zip(vertices[:-1], vertices[1:]):
        ex, ey = bx - ax, by - ay
        t = np.clip(((du - ax) * ex + (dv - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        distance = np.minimum(distance, np.hypot(du - ax - t * ex, dv - ay - t * ey))
    return distance
