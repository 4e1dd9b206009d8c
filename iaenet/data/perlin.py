"""2-D gradient (Perlin) noise on a pixel grid, the mask source of the Cut-Paste synthesis (docs/synthesis.md).

The references (DRAEM, G2SF) build the noise for image shapes divisible by the lattice and rotate the finished
image, which leaves empty corners. Here the noise is evaluated at the rotated pixel positions directly, so any
grid shape works and a rotated field covers the whole grid.
"""
from __future__ import annotations

import numpy as np


def perlin_noise(shape: tuple[int, int], cells: tuple[int, int], rng: np.random.Generator,
                 angle: float = 0.0) -> np.ndarray:
    """Perlin noise over an (H, W) grid.

    Args:
        shape: (H, W) pixels, both >= 1.
        cells: (rows, cols) lattice cells across the grid's height and width (the references' `res`):
            1 gives one smooth blob across the axis, 16 fine detail. Positive integers.
        rng: draws one random gradient direction per lattice node.
        angle: radians; the lattice is turned by this angle about the grid centre.
    Returns:
        (H, W) float32 noise in [-1, 1] (sqrt(2) times the classic value, as in the references, so that the
        mask threshold 0.4 means the same); 0 at every lattice node.
    """
    height, width = (int(side) for side in shape)
    rows, cols = (int(count) for count in cells)
    if height < 1 or width < 1:
        raise ValueError(f"shape: need a positive height and width, got {shape}")
    if rows < 1 or cols < 1:
        raise ValueError(f"cells: need positive lattice counts, got {cells}")
    # pixel centres relative to the grid centre, turned by `angle`, in lattice units; float32 halves the time
    # and its error (< 1e-5 of a lattice cell) is far below a pixel
    dy = (np.arange(height, dtype=np.float32) + 0.5 - height / 2.0)[:, None]
    dx = (np.arange(width, dtype=np.float32) + 0.5 - width / 2.0)[None, :]
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    u = (cos * dy - sin * dx) * np.float32(rows / height)
    v = (sin * dy + cos * dx) * np.float32(cols / width)
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = u - u0, v - v0
    # one gradient per lattice node the turned grid touches, looked up by flat node number
    iu = (u0 - u0.min()).astype(np.intp)
    iv = (v0 - v0.min()).astype(np.intp)
    stride = int(iv.max()) + 2
    node = iu * stride + iv
    angles = rng.uniform(0.0, 2.0 * np.pi, size=(int(iu.max()) + 2) * stride)
    gu, gv = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)

    def corner(du: int, dv: int) -> np.ndarray:
        """Dot product of the corner's gradient with the offset from that corner."""
        index = node + (du * stride + dv)
        return gu.take(index) * (fu - du) + gv.take(index) * (fv - dv)

    tu, tv = _fade(fu), _fade(fv)
    n00, n01 = corner(0, 0), corner(0, 1)
    near = n00 + tu * (corner(1, 0) - n00)
    far = n01 + tu * (corner(1, 1) - n01)
    return np.float32(np.sqrt(2.0)) * (near + tv * (far - near))

def _fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic 6t^5 - 15t^4 + 10t^3: zero first and second derivatives at the lattice nodes."""
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
