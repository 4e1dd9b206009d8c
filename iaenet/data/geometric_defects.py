"""Geometric pseudo-anomalies for point clouds without a grid (Real3D-AD-like), and for organized scans.

Cut-Paste needs a pixel grid to cut from; a full 360-degree cloud has none. Here a defect is made on the
surface itself: a random region (a seed point and a radius, a fraction of the object's size) is pushed out
(bulge) or in (dent) along the surface normals with a smooth profile, or removed (hole).
See docs/synthesis.md.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from iaenet.data.scan import LABEL_ANOMALOUS, Scan
from iaenet.ops._params import check_float, check_int
from iaenet.ops.normals import estimate_normals

KINDS = ("bulge", "dent", "hole")
_NORMAL_MARGIN = 1.5  # normals are estimated on the points within this many radii, so the region's own
# points have full neighbourhoods


@dataclasses.dataclass(frozen=True)
class GeometricDefectConfig:
    """Parameters of the geometric defects; construction validates them.

    Attributes:
        kinds: the defect kinds drawn from (uniformly), a non-empty subset of ("bulge", "dent", "hole").
        min_radius, max_radius: the region's radius, drawn uniformly, as a fraction of the object's extent
            (the diagonal of its bounding box).
        min_amplitude, max_amplitude: the largest displacement of a bulge or dent, drawn uniformly, as a
            fraction of the radius.
        label_share: a displaced point is anomalous where it moved at least this share of the amplitude
            (the profile's flat rim moves points by less than the sensor noise).
        rim: a hole's remaining points within (1 + rim) radii of its centre are anomalous (the hole itself
            has no points to label).
        normal_neighbours: k of the kNN-PCA normals.
        min_region_points: a region must hold at least this many points, else another seed point is drawn.
        max_attempts: seed points tried before giving up with a ValueError.
    """

    kinds: tuple[str, ...] = KINDS
    min_radius: float = 0.03
    max_radius: float = 0.08
    min_amplitude: float = 0.2
    max_amplitude: float = 0.5
    label_share: float = 0.1
    rim: float = 0.25
    normal_neighbours: int = 30
    min_region_points: int = 30
    max_attempts: int = 20

    def __post_init__(self) -> None:
        kinds = tuple(self.kinds) if isinstance(self.kinds, (list, tuple)) else None
        if not kinds or any(kind not in KINDS for kind in kinds):
            raise ValueError(f"kinds: need a non-empty subset of {KINDS}, got {self.kinds!r}")
        object.__setattr__(self, "kinds", kinds)
        check_float(self.min_radius, "min_radius", 0.0, 1.0, exclusive_minimum=True)
        check_float(self.max_radius, "max_radius", self.min_radius, 1.0)
        check_float(self.min_amplitude, "min_amplitude", 0.0, 10.0, exclusive_minimum=True)
        check_float(self.max_amplitude, "max_amplitude", self.min_amplitude, 10.0)
        check_float(self.label_share, "label_share", 0.0, 1.0, exclusive_minimum=True)
        check_float(self.rim, "rim", 0.0, 10.0)
        check_int(self.normal_neighbours, "normal_neighbours", minimum=3)
        check_int(self.min_region_points, "min_region_points", minimum=3)
        check_int(self.max_attempts, "max_attempts", minimum=1)


class GeometricDefectSynthesizer:
    """Bulges, dents and holes on point clouds; every draw is fixed by (seed, index).

    Args:
        config: a GeometricDefectConfig (default values when None).
        seed: non-negative int.
    """

    def __init__(self, config: GeometricDefectConfig | None = None, seed: int = 0):
        self.config = GeometricDefectConfig() if config is None else config
        if not isinstance(self.config, GeometricDefectConfig):
            raise TypeError(f"config must be a GeometricDefectConfig, got {type(self.config).__name__}")
        self.seed = check_int(seed, "seed", minimum=0)

    def synthesize(self, points: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        """One defect on an unorganized cloud.

        Args:
            points: (N, 3) float metres, all valid (a full object; normals are turned away from its centroid).
            index: non-negative int, the sample number.
        Returns:
            points: (N, 3) float32 for a bulge or dent (only the region's points move), (N', 3) with N' < N
                for a hole (the region's points removed, the others in their order).
            labels: (N,) or (N',) bool, True = anomalous.
        Raises:
            TypeError/ValueError for bad points, or no region with `min_region_points` points.
        """
        cloud = Scan(points=points, name="points").points
        if cloud.ndim != 2:
            raise ValueError(f"points: expected an (N, 3) cloud, got shape {cloud.shape}; use synthesize_scan "
                             "for organized grids")
        if not np.all(cloud != 0):
            raise ValueError("points: holds missing (zero) coordinates; pass the valid points only")
        moved, keep, labels, _ = self._draw(cloud, check_int(index, "index", minimum=0), towards_camera=False)
        return moved[keep], labels[keep]

    def synthesize_scan(self, scan: Scan, index: int) -> Scan:
        """One defect on a scan's valid points. An organized scan keeps its grid: displaced points stay at their
        pixels, removed ones become missing; its normals are turned towards the camera at the origin (the
        side the sensor saw), so a bulge comes towards the sensor. An unorganized scan is handled like
        `synthesize`.

        Returns:
            a Scan with gt = the anomalous points (on the grid for organized scans), label 1, defect = the kind,
            name "<scan name>#<kind><index>"; no rgb or normals.
        """
        if not isinstance(scan, Scan):
            raise TypeError(f"scan must be a Scan, got {type(scan).__name__}")
        index = check_int(index, "index", minimum=0)
        valid, where = scan.valid_points()
        moved, keep, labels, kind = self._draw(valid, index, towards_camera=scan.is_organized)
        name = f"{scan.name}#{kind}{index}"
        if not scan.is_organized:
            return Scan(points=moved[keep], gt=labels[keep], label=LABEL_ANOMALOUS, defect=kind, name=name)
        grid = np.zeros(scan.points.shape, dtype=np.float32)
        gt = np.zeros(scan.points.shape[:2], dtype=bool)
        grid.reshape(-1, 3)[where[keep]] = moved[keep]
        gt.reshape(-1)[where[keep]] = labels[keep]
        return Scan(points=grid, gt=gt, label=LABEL_ANOMALOUS, defect=kind, name=name)

    def _draw(self, points: np.ndarray, index: int, towards_camera: bool):
        """The defect for (seed, index) on (N, 3) valid points.

        Returns (moved (N, 3) float32, keep (N,) bool, labels (N,) bool, kind): the points after displacement,
        which of them remain, which are anomalous, and the kind drawn.
        """
        config = self.config
        rng = np.random.default_rng([self.seed, index])
        kind = config.kinds[rng.integers(len(config.kinds))]
        extent = float(np.linalg.norm(points.max(axis=0).astype(np.float64) - points.min(axis=0)))
        if extent == 0.0:
            raise ValueError(f"points: all {len(points)} points coincide; a defect needs a surface")
        for _ in range(config.max_attempts):
            centre = points[rng.integers(len(points))].astype(np.float64)
            radius = rng.uniform(config.min_radius, config.max_radius) * extent
            distance = np.linalg.norm(points - centre, axis=1)
            region = distance < radius
            if np.count_nonzero(region) >= config.min_region_points:
                break
        else:
            raise ValueError(f"points: no region of {config.min_radius:g}-{config.max_radius:g} x the extent "
                             f"holds {config.min_region_points} points after {config.max_attempts} attempts "
                             f"({len(points)} points)")
        moved = points.astype(np.float32, copy=True)
        if kind == "hole":
            return moved, ~region, distance < radius * (1.0 + config.rim), kind

        amplitude = rng.uniform(config.min_amplitude, config.max_amplitude) * radius
        outward = -centre if towards_camera else centre - points.mean(axis=0, dtype=np.float64)
        near = np.flatnonzero(distance < radius * _NORMAL_MARGIN)
        normals = _oriented_normals(points[near], distance[near], outward, config.normal_neighbours)
        t = distance[near] / radius
        profile = np.where(t < 1.0, (1.0 - t * t) ** 2, 0.0)  # 1 at the centre, 0 with zero slope at the edge
        sign = 1.0 if kind == "bulge" else -1.0
        moved[near] = points[near] + (sign * amplitude * profile)[:, None] * normals
        labels = np.zeros(len(points), dtype=bool)
        labels[near] = profile >= config.label_share
        return moved, np.ones(len(points), dtype=bool), labels, kind


def _oriented_normals(points: np.ndarray, distance: np.ndarray, outward: np.ndarray, k: int) -> np.ndarray:
    """(M, 3) float64 kNN-PCA normals of the points near the seed, all on the side of the seed point's normal,
    which points along `outward` (PCA alone leaves each normal's sign arbitrary)."""
    normals = estimate_normals(points, k=min(k, len(points)), camera=None).astype(np.float64)
    reference = normals[np.argmin(distance)]
    if reference @ outward < 0:
        reference = -reference
    return np.where((normals @ reference < 0)[:, None], -normals, normals)

