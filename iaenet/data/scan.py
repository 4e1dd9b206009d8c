"""The `Scan`: one 3-D scan with its optional colour, ground truth and labels.

Coordinates are float32 metres. An organized scan is an (H, W, 3) grid as a structured-light
sensor delivers it (pixel (i, j) holds the 3-D point seen at that pixel); an unorganized scan
is an (N, 3) cloud. A point is *valid* iff all three coordinates are non-zero: zeros mark
missing measurements, exactly as in MVTec 3D-AD and the reference code that reads it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LABEL_GOOD = 0
LABEL_ANOMALOUS = 1


@dataclass(frozen=True, eq=False)
class Scan:
    """One scan. Construction validates every field and raises a clear error naming `name`.

    Attributes:
        points: (H, W, 3) organized grid or (N, 3) cloud, float32 metres, zeros = missing.
            Other float dtypes are converted to float32; integers are rejected.
        rgb: optional (H, W, 3) uint8 colour image aligned with an organized grid.
        gt: optional ground truth, bool, (H, W) for organized or (N,) for unorganized scans;
            True = anomalous.
        label: 0 (good), 1 (anomalous) or None (unknown).
        defect: defect type, e.g. "good", "hole"; "" when unknown.
        name: where the scan came from (a path or an id); used in every error message.
        normals: optional unit normals, float32, same layout as `points` (zeros = none).
    """

    points: np.ndarray
    rgb: np.ndarray | None = None
    gt: np.ndarray | None = None
    label: int | None = None
    defect: str = ""
    name: str = ""
    normals: np.ndarray | None = None

    def __post_init__(self) -> None:
        # frozen dataclass: validated/converted values are stored with object.__setattr__
        object.__setattr__(self, "points", _check_coordinates(self.points, "points", self.name))
        layout = self.points.shape[:-1]
        if self.normals is not None:
            normals = _check_coordinates(self.normals, "normals", self.name)
            if normals.shape != self.points.shape:
                raise ValueError(f"scan {self.name!r}: normals shape {normals.shape} differs from "
                                 f"points shape {self.points.shape}")
            object.__setattr__(self, "normals", normals)
        if self.rgb is not None:
            _check_rgb(self.rgb, layout, self.name)
        if self.gt is not None:
            _check_gt(self.gt, layout, self.name)
        object.__setattr__(self, "label", _check_label(self.label, self.gt, self.name))
        if not isinstance(self.defect, str) or not isinstance(self.name, str):
            raise TypeError(f"scan {self.name!r}: defect and name must be str")
        if not self.valid_mask.any():
            raise ValueError(f"scan {self.name!r} has no valid point (every point has a zero coordinate)")

    @property
    def is_organized(self) -> bool:
        """True for an (H, W, 3) grid, False for an (N, 3) cloud."""
        return self.points.ndim == 3

    @property
    def valid_mask(self) -> np.ndarray:
        """(H, W) or (N,) bool: True where all three coordinates are non-zero."""
        return np.all(self.points != 0, axis=-1)

    @property
    def num_valid(self) -> int:
        """Number of valid points."""
        return int(np.count_nonzero(self.valid_mask))

    def valid_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The valid points and where they sit.

        Returns:
            points: (M, 3) float32 metres, in row-major pixel order for organized scans.
            index: (M,) int64 flat index into the H*W grid (organized) or into the N points.
        """
        flat = self.points.reshape(-1, 3)
        index = np.flatnonzero(np.all(flat != 0, axis=1))
        return flat[index], index


def _check_coordinates(array: object, field: str, name: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"scan {name!r}: {field} must be a numpy array, got {type(array).__name__}")
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"scan {name!r}: {field} must be floating point (metres), got dtype {array.dtype}")
    if array.ndim not in (2, 3) or array.shape[-1] != 3:
        raise ValueError(f"scan {name!r}: {field} must have shape (H, W, 3) or (N, 3), got {array.shape}")
    if array.size == 0:
        raise ValueError(f"scan {name!r}: {field} is empty (shape {array.shape})")
    array = array.astype(np.float32, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(np.count_nonzero(~finite.all(axis=-1)))
        raise ValueError(f"scan {name!r}: {field} holds {bad} point(s) with NaN or infinite coordinates")
    return array


def _check_rgb(rgb: object, layout: tuple[int, ...], name: str) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
        raise TypeError(f"scan {name!r}: rgb must be a uint8 numpy array, got "
                        f"{getattr(rgb, 'dtype', type(rgb).__name__)}")
    if len(layout) != 2:
        raise ValueError(f"scan {name!r}: rgb needs an organized (H, W, 3) scan, points are unorganized")
    if rgb.shape != (*layout, 3):
        raise ValueError(f"scan {name!r}: rgb shape {rgb.shape} does not match the grid {layout} (+3 channels)")


def _check_gt(gt: object, layout: tuple[int, ...], name: str) -> None:
    if not isinstance(gt, np.ndarray) or gt.dtype != np.bool_:
        raise TypeError(f"scan {name!r}: gt must be a bool numpy array, got "
                        f"{getattr(gt, 'dtype', type(gt).__name__)}")
    if gt.shape != layout:
        raise ValueError(f"scan {name!r}: gt shape {gt.shape} does not match the points layout {layout}")


def _check_label(label: object, gt: np.ndarray | None, name: str) -> int | None:
    if label is None:
        return None
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)) \
            or label not in (LABEL_GOOD, LABEL_ANOMALOUS):
        raise ValueError(f"scan {name!r}: label must be 0 (good), 1 (anomalous) or None, got {label!r}")
    if label == LABEL_GOOD and gt is not None and gt.any():
        raise ValueError(f"scan {name!r}: label is 0 (good) but the ground truth marks "
                         f"{int(gt.sum())} anomalous point(s)")
    return int(label)
