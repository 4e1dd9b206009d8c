"""Checks of the scalar parameters the ops share (counts, radii, scales, camera positions); errors name the argument."""
from __future__ import annotations

import math
import numbers

import numpy as np


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as a Python int in [minimum, maximum] (either bound optional); bools are rejected."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: need {name} >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: need {name} <= {maximum}, got {value}")
    return int(value)


def check_k(k, n: int, name: str = "k", minimum: int = 1) -> int:
    """`k` as an int in [minimum, n]; `n` is the number of points."""
    k = check_int(k, name, minimum=minimum)
    if k > n:
        raise ValueError(f"{name}: {name}={k} requested but the cloud has only {n} points")
    return k


def check_positive(value, name: str) -> float:
    """`value` as a finite float > 0 (inf would overflow the counts and sizes derived from it); bools are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: must be finite and > 0, got {value}")
    return float(value)


def check_radius(radius, name: str = "radius") -> float | None:
    """None, or a finite positive float (metres)."""
    return None if radius is None else check_positive(radius, name)


def check_camera(camera) -> tuple[float, float, float] | None:
    """None (unoriented), or the camera position as 3 finite floats."""
    if camera is None:
        return None
    try:
        c = np.asarray(camera, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"camera: expected 3 numbers or None, got {camera!r}") from err
    if c.shape != (3,) or not np.isfinite(c).all():
        raise ValueError(f"camera: expected 3 finite numbers (x, y, z) or None, got {camera!r}")
    return (float(c[0]), float(c[1]), float(c[2]))


def check_float(value, name: str, minimum: float | None = None, maximum: float | None = None, *,
                exclusive_minimum: bool = False, exclusive_maximum: bool = False) -> float:
    """`value` as a finite Python float within the bounds (each optional, inclusive unless exclusive_*);
    bools are rejected."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        raise ValueError(f"{name}: need {name} {'>' if exclusive_minimum else '>='} {minimum}, got {value}")
    if maximum is not None and (value >= maximum if exclusive_maximum else value > maximum):
        raise ValueError(f"{name}: need {name} {'<' if exclusive_maximum else '<='} {maximum}, got {value}")
    return float(value)
