"""From a raw scan to what the experts read: the cleaned working grid, its valid points, and the full-resolution grid.

    prepared = prepare_scan(scan)              # background removed, padded square, 224 x 224 working grid
    prepared.points, prepared.index            # (N, 3) valid points, (N,) flat index into the 224 x 224 grid
    prepared.full                              # the cleaned full-resolution grid (S, S, 3) the 2D view may be drawn from

The experts score the N valid points of the working grid (DESIGN.md §3). The 2D expert may draw its frontal view
from the full-resolution grid instead (CPMF renders the full-resolution cloud): `full` keeps it, padded to a square
like the working grid, so pixel (i, j) of the working grid shows source pixel (floor(i S / 224), floor(j S / 224)).
An unorganized cloud (N, 3) has no grid: it is used as it is (`full` is None, `index` numbers its valid points).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iaenet.data.preprocess import GRID_SIZE, clean_scan, resize_scan
from iaenet.data.scan import Scan


@dataclass(frozen=True, eq=False)
class PreparedScan:
    """One scan ready for the experts.

    scan: the working scan, a (size, size, 3) grid (organized input) or the (N, 3) cloud, with gt/label/defect/name.
    full: the cleaned organized grid at the sensor's resolution, padded to a square (None for a cloud).
    points: (N, 3) float32 valid points of `scan`; index: (N,) int64 their flat index in the grid (or cloud).
    """

    scan: Scan
    full: np.ndarray | None
    points: np.ndarray
    index: np.ndarray

    @property
    def name(self) -> str:
        return self.scan.name

    @property
    def grid_shape(self) -> tuple[int, int] | None:
        """(H, W) of the working grid, None for a cloud."""
        return self.scan.points.shape[:2] if self.scan.is_organized else None

    def point_gt(self) -> np.ndarray | None:
        """(N,) bool ground truth of the valid points, or None."""
        return None if self.scan.gt is None else self.scan.gt.reshape(-1)[self.index]


def prepare_scan(scan: Scan, size: int = GRID_SIZE, *, remove_background: bool = True,
                 **background_options) -> PreparedScan:
    """clean_scan, then resize_scan to size x size (iaenet.data.preprocess; the same working grid as
    preprocess_scan), keeping the cleaned full-resolution grid. remove_background=False for scans that are clean
    already (e.g. synthesized from cleaned scans)."""
    return prepare_clean(clean_scan(scan, remove_background=remove_background, **background_options), size)


def prepare_clean(cleaned: Scan, size: int = GRID_SIZE) -> PreparedScan:
    """The PreparedScan of an already cleaned square scan (the output of clean_scan)."""
    working = resize_scan(cleaned, size)
    points, index = working.valid_points()
    return PreparedScan(working, cleaned.points if cleaned.is_organized else None, np.ascontiguousarray(points), index)
