"""Preprocessing of organized scans (DESIGN.md §3): background removal, padding, 224 grid.

The references (BTF/M3DM/CPMF/Shape-Guided) fit the background plane with Open3D RANSAC on the
border points, zero the points within 5 mm of it, pad to a square and keep the largest DBSCAN
cluster, rewriting the dataset in place; then they resize with torch's legacy nearest. Here the
same steps run on the fly on arrays: the plane by a vectorised RANSAC, the cluster by connected
components of the pixel grid (an edge joins two grid neighbours closer than `eps` in 3-D), which
takes milliseconds instead of DBSCAN's seconds. Inputs are never modified.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .scan import Scan

GRID_SIZE = 224
BORDER = 10              # rows/columns on each side that show the background plane
PLANE_THRESHOLD = 0.004  # m, RANSAC inlier distance (reference: segment_plane(0.004, ...))
PLANE_DISTANCE = 0.005   # m, points closer than this to the plane are background
EPS = 0.006              # m, neighbours closer than this are connected (reference: DBSCAN eps)
MIN_POINTS = 30          # DBSCAN min_points of the reference: a core point has this many within EPS
NEIGHBOUR_RADIUS = 1     # grid neighbourhood: 1 = 8-neighbourhood
RANSAC_ITERATIONS = 1000
RANSAC_CONFIDENCE = 0.99999999  # adaptive stop, Open3D's default probability
_HYPOTHESES_PER_CHUNK = 64  # bounds the (points x hypotheses) distance matrix to a few MB


def preprocess_scan(scan: Scan, size: int = GRID_SIZE, *, remove_background: bool = True,
                    **background_options) -> Scan:
    """Background removal, centred zero padding to a square, corner-aligned nearest resize:
    `resize_scan(clean_scan(scan, ...), size)`.

    Args:
        scan: an organized scan. An unorganized scan has no grid to work on and is returned as is.
        size: side of the output grid (224 in the paper).
        remove_background: drop the background plane and keep the largest connected part.
        background_options: passed to `foreground_mask` (thresholds in metres, seed, ...).
    Returns:
        a new Scan of (size, size, 3) points; rgb, gt and normals follow the same pixel indices.
    Raises:
        ValueError naming the scan if no point is left.
    """
    return resize_scan(clean_scan(scan, remove_background=remove_background, **background_options), size)


def clean_scan(scan: Scan, *, remove_background: bool = True, **background_options) -> Scan:
    """The first two steps of preprocess_scan: background zeroed (unless remove_background=False) and zero padding
    to a centred square, at the scan's own resolution (the full-resolution grid CPMF renders its view from).
    An unorganized scan is returned as is. Raises ValueError naming the scan if no point is left."""
    if not scan.is_organized:
        return scan
    if remove_background:
        keep = foreground_mask(scan.points, **{"name": scan.name, **background_options})
    else:
        keep = scan.valid_mask
    if not keep.any():
        raise ValueError(f"scan {scan.name!r}: background removal left no points")
    fields = {"points": scan.points, "rgb": scan.rgb, "gt": scan.gt, "normals": scan.normals}
    for key in ("points", "normals"):
        if fields[key] is not None:
            fields[key] = np.where(keep[..., None], fields[key], np.float32(0))
    return dataclasses.replace(scan, **{key: pad_to_square(value) for key, value in fields.items()
                                        if value is not None})


def resize_scan(scan: Scan, size: int = GRID_SIZE) -> Scan:
    """An organized scan's grid and its rgb, gt and normals resized to size x size with the same nearest indices
    (`resize_nearest_like`); an unorganized scan is returned as is. Raises ValueError naming the scan if no valid
    point is left on the smaller grid."""
    if not scan.is_organized:
        return scan
    fields = {key: resize_nearest_like(getattr(scan, key), size)
              for key in ("points", "rgb", "gt", "normals") if getattr(scan, key) is not None}
    if not np.all(fields["points"] != 0, axis=-1).any():
        raise ValueError(f"scan {scan.name!r}: no valid point is left on the {size}x{size} grid")
    return dataclasses.replace(scan, **fields)


def resize_organized(points: np.ndarray, size: int = GRID_SIZE) -> np.ndarray:
    """Resize an (H, W, 3) grid to (size, size, 3) by corner-aligned nearest sampling.

    Output pixel (i, j) takes source pixel (floor(i*H/size), floor(j*W/size)), as torch's legacy
    `interpolate(mode="nearest")` in the references: no averaging, so missing points stay missing.
    """
    if not isinstance(points, np.ndarray) or points.ndim != 3 or points.shape[2] != 3:
        raise ValueError(f"points must be an (H, W, 3) array, got {getattr(points, 'shape', type(points))}")
    return resize_nearest_like(points, size)


def resize_nearest_like(array: np.ndarray, size: int = GRID_SIZE) -> np.ndarray:
    """Resize any (H, W, ...) array (gt, rgb, normals, scores) with the same indices as `resize_organized`.

    Using one index function for points and ground truth keeps them aligned (the references sample
    the ground truth with PIL's pixel-centre nearest, half a source pixel away from the points).
    """
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if array.ndim < 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"array must be (H, W, ...) with H, W > 0, got shape {array.shape}")
    rows = nearest_indices(array.shape[0], size)
    cols = nearest_indices(array.shape[1], size)
    return array[rows[:, None], cols[None, :]]


def nearest_indices(source: int, target: int) -> np.ndarray:
    """floor(i * source / target) for i in range(target), exactly in integers, as int64."""
    return (np.arange(target, dtype=np.int64) * source) // target


def pad_to_square(array: np.ndarray) -> np.ndarray:
    """Pad an (H, W, ...) array with zeros (False) to (S, S, ...), S = max(H, W), keeping it centred."""
    height, width = array.shape[:2]
    side = max(height, width)
    if height == width:
        return array
    top, left = (side - height) // 2, (side - width) // 2
    padding = [(top, side - height - top), (left, side - width - left)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, padding)


def remove_background(points: np.ndarray, **options) -> np.ndarray:
    """A copy of an (H, W, 3) grid with everything but the foreground object zeroed.

    `options` are those of `foreground_mask`.
    """
    keep = foreground_mask(points, **options)
    return np.where(keep[..., None], points, np.zeros_like(points))


def foreground_mask(points: np.ndarray, *, border: int = BORDER, plane_threshold: float = PLANE_THRESHOLD,
                    plane_distance: float = PLANE_DISTANCE, eps: float = EPS,
                    neighbour_radius: int = NEIGHBOUR_RADIUS, min_points: int = MIN_POINTS,
                    iterations: int = RANSAC_ITERATIONS, seed: int = 0, name: str = "points") -> np.ndarray:
    """Which pixels of an organized scan belong to the object on the background plane.

    1. Fit a plane by RANSAC (up to `iterations` 3-point hypotheses, adaptive stop, inliers within `plane_threshold`)
       to the valid points of the `border` outer rows and columns, then refit it by least squares
       to the inliers of the best hypothesis.
    2. Drop the points closer than `plane_distance` to the plane.
    3. Keep the largest connected component of the remaining points, where two points are connected
       if their pixels are at most `neighbour_radius` apart (Chebyshev) and their 3-D distance is < `eps`,
       plus what DBSCAN(`eps`, `min_points`) links to it in 3-D across missing pixels.

    Args:
        points: (H, W, 3) float metres, zeros = missing.
    Returns:
        (H, W) bool, True for kept points.
    Raises:
        ValueError (mentioning `name`) for a bad shape or too few valid border points.
    """
    if not isinstance(points, np.ndarray) or points.ndim != 3 or points.shape[2] != 3:
        raise ValueError(f"{name}: points must be an (H, W, 3) array, got {getattr(points, 'shape', type(points))}")
    for option, value in (("border", border), ("plane_threshold", plane_threshold),
                          ("plane_distance", plane_distance), ("eps", eps), ("neighbour_radius", neighbour_radius),
                          ("min_points", min_points), ("iterations", iterations)):
        if not value > 0:
            raise ValueError(f"{name}: {option} must be positive, got {value!r}")
    valid = np.all(points != 0, axis=-1)
    plane = fit_background_plane(points, valid, border=border, threshold=plane_threshold,
                                 iterations=iterations, seed=seed, name=name)
    distance = np.abs(points.astype(np.float64) @ plane[:3] + plane[3])
    foreground = valid & (distance >= plane_distance)
    return largest_grid_component(points, foreground, eps=eps, radius=neighbour_radius, min_points=min_points)


def fit_background_plane(points: np.ndarray, valid: np.ndarray, *, border: int = BORDER,
                         threshold: float = PLANE_THRESHOLD, iterations: int = RANSAC_ITERATIONS,
                         seed: int = 0, name: str = "points") -> np.ndarray:
    """RANSAC plane through the valid border points of an (H, W, 3) grid.

    Returns:
        (4,) float64 [a, b, c, d] with unit normal (a, b, c): signed distance = a*x + b*y + c*z + d.
    """
    ring = np.zeros(valid.shape, dtype=bool)
    ring[:border], ring[-border:], ring[:, :border], ring[:, -border:] = True, True, True, True
    samples = points[ring & valid].astype(np.float64)
    if len(samples) < 3:
        raise ValueError(f"{name}: cannot fit the background plane: only {len(samples)} valid point(s) "
                         f"in the {border} outer rows and columns")
    rng = np.random.default_rng(seed)
    triples = samples[rng.integers(0, len(samples), size=(iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    length = np.linalg.norm(normals, axis=1)
    usable = length > 1e-12  # repeated or collinear points give no plane
    if not usable.any():
        raise ValueError(f"{name}: cannot fit the background plane: the border points are collinear")
    normals = normals[usable] / length[usable, None]
    offsets = -np.einsum("ij,ij->i", normals, triples[usable, 0])
    best = _best_hypothesis(samples, normals, offsets, threshold)
    inliers = np.abs(samples @ normals[best] + offsets[best]) < threshold
    return _least_squares_plane(samples[inliers])


def largest_grid_component(points: np.ndarray, mask: np.ndarray, *, eps: float = EPS,
                           radius: int = NEIGHBOUR_RADIUS, join_near: bool = True,
                           min_points: int = MIN_POINTS) -> np.ndarray:
    """The largest connected part of `mask` on the grid (see `foreground_mask`, step 3).

    Args:
        points: (H, W, 3) float metres. mask: (H, W) bool, the pixels to consider.
        join_near: also take in the components and points that DBSCAN(eps, min_points) would link to
            the kept part in 3-D across rows of missing pixels (see `_join_near_components`).
    Returns:
        (H, W) bool, all False if `mask` is empty. Ties go to the component met first in raster order.
    """
    if not mask.any():
        return mask.copy()
    labels = grid_components(points, mask, eps=eps, radius=radius)
    keep = labels == np.argmax(np.bincount(labels[mask]))
    if join_near:
        keep = _join_near_components(points, labels, keep, eps, min_points)
    return keep


def grid_components(points: np.ndarray, mask: np.ndarray, *, eps: float = EPS,
                    radius: int = NEIGHBOUR_RADIUS) -> np.ndarray:
    """Connected components of `mask`, edges between pixels at most `radius` apart closer than `eps` in 3-D.

    Returns:
        (H, W) int32 component labels; pixels outside `mask` are -1.
    """
    height, width = mask.shape
    # graph nodes are the masked pixels only, numbered in raster order
    node = np.full((height, width), -1, dtype=np.int64)
    node[mask] = np.arange(np.count_nonzero(mask))
    sources, targets = [], []
    for dy, dx in _half_window(radius):
        # pairs (y, x) -> (y + dy, x + dx) that stay inside the grid
        a = (slice(0, height - dy), slice(max(0, -dx), width - max(0, dx)))
        b = (slice(dy, height), slice(max(0, dx), width - max(0, -dx)))
        near = mask[a] & mask[b]
        gap = points[a][near].astype(np.float64) - points[b][near]
        close = np.einsum("ij,ij->i", gap, gap) < eps * eps
        sources.append(node[a][near][close])
        targets.append(node[b][near][close])
    sources, targets = np.concatenate(sources), np.concatenate(targets)
    count = np.count_nonzero(mask)
    graph = coo_matrix((np.ones(len(sources), dtype=np.int8), (sources, targets)), shape=(count, count))
    _, component = connected_components(graph, directed=False)
    labels = np.full((height, width), -1, dtype=np.int32)
    labels[mask] = component
    return labels


def _join_near_components(points: np.ndarray, labels: np.ndarray, keep: np.ndarray, eps: float,
                          min_points: int) -> np.ndarray:
    """Grow `keep` the way DBSCAN links clusters in 3-D, across gaps that the grid cannot bridge.

    A point is *core* if at least `min_points` points of the components (itself included) lie
    within `eps`. A component joins when one of its core points is within `eps` of a kept core
    point; a non-core point within `eps` of a kept core point joins alone (a DBSCAN border point).
    Only points kept in the last round are searched, until a round adds nothing.
    """
    considered = labels >= 0
    counts_tree = cKDTree(points[considered])

    def is_core(candidates: np.ndarray) -> np.ndarray:
        # the min_points-th nearest neighbour (itself counted) is within eps: cheaper than counting all
        distance, _ = counts_tree.query(candidates, k=[min_points], distance_upper_bound=eps)
        return distance[:, 0] < eps

    keep = keep.copy()
    frontier = points[keep]
    while True:
        outside = considered & ~keep
        if not outside.any():
            return keep
        frontier_tree = cKDTree(frontier)
        distance, _ = frontier_tree.query(points[outside], distance_upper_bound=eps)
        near = np.flatnonzero(outside.ravel())[distance < eps]
        if len(near) == 0:
            return keep
        near_points = points.reshape(-1, 3)[near]
        neighbours = frontier_tree.query_ball_point(near_points, eps)
        involved = np.unique(np.concatenate(neighbours).astype(np.int64))
        frontier_core = np.zeros(len(frontier), dtype=bool)
        frontier_core[involved] = is_core(frontier[involved])
        reaches_core = np.array([frontier_core[found].any() for found in neighbours])
        near_core = is_core(near_points)
        joining = np.isin(labels, np.unique(labels.ravel()[near[reaches_core & near_core]]))
        joining.ravel()[near[reaches_core & ~near_core]] = True
        joining &= ~keep
        if not joining.any():
            return keep
        frontier = points[joining]
        keep |= joining


def _half_window(radius: int) -> list[tuple[int, int]]:
    """Offsets (dy, dx) of a (2r+1)^2 window, one of each +/- pair, so every edge is built once."""
    return [(dy, dx) for dy in range(radius + 1) for dx in range(-radius, radius + 1)
            if dy > 0 or dx > 0]


def _best_hypothesis(samples: np.ndarray, normals: np.ndarray, offsets: np.ndarray, threshold: float) -> int:
    """Index of the plane with the most inliers; ties go to the smaller summed inlier distance.

    Hypotheses are scored a chunk at a time; scoring stops once enough have been seen to meet
    RANSAC_CONFIDENCE for the best inlier share so far (the adaptive stop Open3D also uses).
    """
    counts = np.zeros(len(normals), dtype=np.int64)
    errors = np.full(len(normals), np.inf)
    for start in range(0, len(normals), _HYPOTHESES_PER_CHUNK):
        stop = start + _HYPOTHESES_PER_CHUNK
        distance = np.abs(samples @ normals[start:stop].T + offsets[start:stop])
        inlier = distance < threshold
        counts[start:stop] = inlier.sum(axis=0)
        errors[start:stop] = np.where(inlier, distance, 0.0).sum(axis=0)
        if stop >= _iterations_needed(counts.max() / len(samples), len(normals)):
            break
    return int(np.lexsort((errors, -counts))[0])


def _iterations_needed(inlier_share: float, limit: int) -> int:
    """Hypotheses needed to draw one all-inlier triple with probability RANSAC_CONFIDENCE."""
    all_inliers = inlier_share ** 3
    if all_inliers >= 1.0:
        return 1
    if all_inliers <= 0.0:
        return limit
    return min(limit, int(np.ceil(np.log(1.0 - RANSAC_CONFIDENCE) / np.log(1.0 - all_inliers))))


def _least_squares_plane(points: np.ndarray) -> np.ndarray:
    """Plane minimising the summed squared distances: through the centroid, normal = smallest singular vector."""
    centroid = points.mean(axis=0)
    normal = np.linalg.svd(points - centroid, full_matrices=False)[2][-1]
    return np.append(normal, -normal @ centroid)
