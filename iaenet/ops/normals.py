"""Surface normals (kernels: csrc/normals): kNN/radius PCA for clouds, windowed PCA for organized grids.

All normals are unit float32 vectors oriented towards a camera position (default the origin: MVTec 3D-AD xyz
are in the camera frame), or (0, 0, 0) where undefined.
"""
from __future__ import annotations

import numpy as np

from iaenet.ops import _neighbourhoods
from iaenet.ops._arrays import as_float_array, empty_like_kind, stream_of, to_numpy
from iaenet.ops._ext import ext
from iaenet.ops._params import check_camera, check_int, check_k, check_radius

ORIGIN = (0.0, 0.0, 0.0)


def estimate_normals(points, k: int = 30, radius: float | None = None, camera=ORIGIN):
    """PCA normals of an unorganized cloud, like Open3D's `estimate_normals` + orientation to the camera.

    points: (N, 3) float array in metres (numpy, or torch on CPU/CUDA). k: neighbours per point, the point
    itself included (Open3D's KDTreeSearchParamKNN(k)); 3 <= k <= N. radius: None for plain kNN, or metres
    for Open3D's KDTreeSearchParamHybrid(radius, k): only those of the k nearest within the radius count.
    camera: (x, y, z) the normals are flipped towards (n . (camera - p) >= 0), or None for unoriented.
    Returns (N, 3) float32 of the kind of `points`; (0, 0, 0) where fewer than 3 neighbours lie within the
    radius or all neighbours coincide.
    """
    points = as_float_array(points, "points", ndim=2, last_dim=3)
    k = check_k(k, int(points.shape[0]), minimum=3)
    radius = check_radius(radius)
    camera = check_camera(camera)
    nbr_idx, dist2 = _neighbourhoods.search(points, k)
    return _normals_kernel(points, nbr_idx, _neighbourhoods.counts_within(dist2, radius, k), camera)


def normals_from_neighbors(points, nbr_idx, nbr_count=None, camera=ORIGIN):
    """PCA normals from given neighbourhoods.

    nbr_idx: (N, K) integer, row i = neighbours of point i, nearest first, point i itself first. nbr_count:
    (N,) integer in [0, K] or None: only the first nbr_count[i] entries of row i are used. Other arguments and
    the result as in `estimate_normals`.
    """
    points = as_float_array(points, "points", ndim=2, last_dim=3)
    camera = check_camera(camera)
    nbr_idx, nbr_count = _neighbourhoods.check_neighbours(nbr_idx, nbr_count, int(points.shape[0]), points)
    return _normals_kernel(points, nbr_idx, nbr_count, camera)


def estimate_normals_grid(organized, window: int = 5, camera=ORIGIN):
    """Normals of an organized scan straight from its grid, without a neighbour search.

    organized: (H, W, 3) float array in metres, (0, 0, 0) = missing pixel. window: odd size >= 3 of the square
    pixel window whose valid points are fitted by PCA (clipped at the image border); on MVTec 3D-AD scans 5
    leaves almost no pixel undefined and 7 spans about as many points as kNN-30. Returns (H, W, 3) float32
    of the kind of `organized`, oriented to `camera`; (0, 0, 0) at missing pixels and where the window holds
    fewer than 3 valid points or only (numerically) collinear ones.
    """
    organized = as_float_array(organized, "organized", ndim=3, last_dim=3)
    if check_int(window, "window") < 3 or window % 2 == 0:
        raise ValueError(f"window: expected an odd size >= 3, got {window}")
    camera = check_camera(camera)
    out = empty_like_kind(organized, tuple(organized.shape), "float32")
    ext().normals_grid(organized, int(window) // 2, camera, out, stream_of(organized))
    return out


def estimate_normals_reference(points, k: int = 30, radius: float | None = None, camera=ORIGIN) -> np.ndarray:
    """Open3D's normals for the same parameters (for tests and benchmarks): (N, 3) float32 numpy."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(to_numpy(points).astype(np.float64)))
    param = o3d.geometry.KDTreeSearchParamKNN(k) if radius is None else o3d.geometry.KDTreeSearchParamHybrid(radius, k)
    cloud.estimate_normals(param)
    if camera is not None:
        cloud.orient_normals_towards_camera_location(np.asarray(camera, dtype=np.float64))
    return np.asarray(cloud.normals, dtype=np.float32)


def _normals_kernel(points, nbr_idx, nbr_count, camera):
    out = empty_like_kind(points, (int(points.shape[0]), 3), "float32")
    ext().normals_knn(points, nbr_idx, nbr_count, camera, out, stream_of(points))
    return out
