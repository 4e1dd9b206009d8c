"""Part shapes of the synthetic dataset, as height fields over the table plane.

Each part is a function ``(p, q, rng) -> (height, inside)`` of part-local table coordinates
``p, q`` (metres, float64 arrays of any equal shape; the part is centred at the origin and its
long axis runs along ``p``). ``height`` is the height of the visible (top) surface above the
table in metres, 0 off the part; ``inside`` is the bool footprint of the part. ``rng`` supplies
the few shape parameters that vary between physical specimens (the roll of a cylinder about
its axis, which moves its thread); it is drawn the same number of times on every call.

Every part stands at least 8 mm above the table along its whole silhouette, so that the
reference preprocessing (drop points within 5 mm of the RANSAC table plane, then keep the
largest grid-connected component) separates part from table cleanly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

MM = 1e-3

HeightField = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class PartDesign:
    """One part category: its shape, colour and resting orientation.

    height_field: see the module docstring.
    albedo: linear RGB reflectance in [0, 1].
    yaw_deg: the orientation about the table normal that every specimen is placed near.
    """

    height_field: HeightField
    albedo: tuple[float, float, float]
    yaw_deg: float


def gland_height(p: np.ndarray, q: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A cable gland lying on its side: ribbed cap, hexagonal flange, threaded body.

    The part rests on a flat of its hexagon (apothem 11.5 mm), so the axis is 11.5 mm above the
    table and the thinner sections hover, as a real gland does. Seen from above, a section of
    radius r(p, phi) shows the height axis + sqrt(r^2 - q^2); the thread is helical (its phase
    follows the angle phi around the axis), so the random roll of the specimen shifts it.
    """
    roll = rng.uniform(0.0, 2.0 * np.pi)
    half_length = 21 * MM
    cap_end, flange_end = -13 * MM, -9 * MM
    cap_radius, rib_height, ribs = 8.5 * MM, 0.6 * MM, 12
    apothem = 11.5 * MM
    body_radius, thread_depth, thread_pitch = 9.5 * MM, 0.6 * MM, 1.5 * MM
    chamfer = 1.0 * MM

    cap = p < cap_end
    flange = (p >= cap_end) & (p < flange_end)
    nominal = np.where(cap, cap_radius, np.where(flange, apothem, body_radius))
    phi = np.arcsin(np.clip(q / nominal, -1.0, 1.0))  # angle from the top, about the axis

    cap_r = cap_radius + rib_height * np.clip(2.0 * np.cos(ribs * (phi + roll)), 0.0, 1.0)
    # A hexagon with a flat facing up (and down, where it rests): radius = apothem / cos(offset
    # from the nearest flat's centre). The flange is fixed by the flat it rests on; no roll.
    hex_r = apothem / np.cos(np.mod(phi + np.pi / 6.0, np.pi / 3.0) - np.pi / 6.0)
    helix = (p - thread_pitch * (phi + roll) / (2.0 * np.pi)) / thread_pitch
    body_r = body_radius + thread_depth * (_triangle(helix) - 0.5)
    body_r = body_r - chamfer * np.clip((p - (half_length - chamfer)) / chamfer, 0.0, 1.0)
    radius = np.where(cap, cap_r, np.where(flange, hex_r, body_r))

    inside = (np.abs(p) <= half_length) & (np.abs(q) < radius)
    height = np.where(inside, apothem + np.sqrt(np.maximum(radius**2 - q**2, 0.0)), 0.0)
    return height, inside


def ring_height(p: np.ndarray, q: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ring (thick washer with a half-round top, a torus seen from above).

    Mean radius 14 mm, width 10 mm, 8 mm vertical wall topped by a 4 mm elliptical crown. The
    ring has no orientation, so ``rng`` is not used; the argument keeps the common signature.
    """
    del rng
    mean_radius, half_width = 14 * MM, 5 * MM
    wall, crown = 8 * MM, 4 * MM
    across = (np.hypot(p, q) - mean_radius) / half_width
    inside = np.abs(across) < 1.0
    height = np.where(inside, wall + crown * np.sqrt(np.maximum(1.0 - across**2, 0.0)), 0.0)
    return height, inside


def plate_height(p: np.ndarray, q: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A knurled plate: 40 x 28 x 10 mm slab, rounded corners, chamfered top edge, and a
    diamond-knurled field (two crossed V-groove sets at +-30 deg, 1.6 mm pitch, 0.5 mm deep)
    3 mm inside the edge. ``rng`` is unused: the knurl is machined in place on every specimen.
    """
    del rng
    half_p, half_q, corner = 20 * MM, 14 * MM, 3 * MM
    thickness, chamfer = 10 * MM, 1 * MM
    knurl_margin, knurl_pitch, knurl_depth = 3 * MM, 1.6 * MM, 0.5 * MM

    # Signed distance to the rounded rectangle (negative inside).
    dp = np.abs(p) - (half_p - corner)
    dq = np.abs(q) - (half_q - corner)
    outside_part = np.hypot(np.maximum(dp, 0.0), np.maximum(dq, 0.0))
    signed = outside_part + np.minimum(np.maximum(dp, dq), 0.0) - corner
    inside = signed < 0.0

    height = thickness - chamfer * np.clip((signed + chamfer) / chamfer, 0.0, 1.0)
    angle = np.deg2rad(30.0)
    groove_a = _triangle((p * np.cos(angle) + q * np.sin(angle)) / knurl_pitch)
    groove_b = _triangle((p * np.cos(angle) - q * np.sin(angle)) / knurl_pitch)
    knurl = knurl_depth * (1.0 - np.minimum(groove_a, groove_b))
    height = np.where(signed < -knurl_margin, height - knurl, height)
    return np.where(inside, height, 0.0), inside


def button_height(p: np.ndarray, q: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A four-hole button: 28 mm disc, dished centre (8.5 mm), half-round rim (peak 12 mm,
    10.5 mm at the outer wall), four 2.2 mm through-holes on a 3.2 mm circle, through which
    the table shows. ``rng`` is unused (the holes' angle comes from the part's yaw).
    """
    del rng
    radius, rim_inner, rim_centre, rim_half = 14 * MM, 10 * MM, 12 * MM, 2 * MM
    dish_bottom, dish_rise, rim_rise = 8.5 * MM, 2 * MM, 1.5 * MM
    hole_circle, hole_radius = 3.2 * MM, 1.1 * MM

    rho = np.hypot(p, q)
    dish = dish_bottom + dish_rise * (rho / rim_inner) ** 2
    rim = dish_bottom + dish_rise + rim_rise * np.sqrt(np.maximum(1.0 - ((rho - rim_centre) / rim_half) ** 2, 0.0))
    height = np.where(rho < rim_inner, dish, rim)

    offset = hole_circle / np.sqrt(2.0)
    in_hole = np.zeros(p.shape, dtype=bool)
    for sp in (-1.0, 1.0):
        for sq in (-1.0, 1.0):
            in_hole |= np.hypot(p - sp * offset, q - sq * offset) < hole_radius
    inside = (rho < radius) & ~in_hole
    return np.where(inside, height, 0.0), inside


def _triangle(x: np.ndarray) -> np.ndarray:
    """Unit triangle wave: 0 at integers, 1 at half-integers."""
    return 2.0 * np.abs(x - np.floor(x + 0.5))


PARTS: dict[str, PartDesign] = {
    "gland": PartDesign(gland_height, albedo=(0.62, 0.62, 0.64), yaw_deg=70.0),
    "ring": PartDesign(ring_height, albedo=(0.78, 0.62, 0.32), yaw_deg=0.0),
    "plate": PartDesign(plate_height, albedo=(0.55, 0.57, 0.60), yaw_deg=-10.0),
    "button": PartDesign(button_height, albedo=(0.22, 0.36, 0.72), yaw_deg=15.0),
}
