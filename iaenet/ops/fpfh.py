"""Fast Point Feature Histograms with Open3D's semantics (kernel: csrc/fpfh).

33 bins per point: three 11-bin histograms of the Darboux-frame angle features. As in Open3D, each part of a
point with at least one other neighbour sums to 200 (the neighbours' SPFH weighted by 1/squared distance and
rescaled to 100, plus the point's own SPFH, which sums to 100); a point without other neighbours gets zeros.
"""
from __future__ import annotations

import numpy as np

from iaenet.ops import _neighbourhoods
from iaenet.ops._arrays import as_float_array, check_same_kind, empty_like_kind, is_torch, stream_of, to_numpy
from iaenet.ops._ext import ext
from iaenet.ops._params import check_camera, check_k, check_radius
from iaenet.ops.normals import ORIGIN, _normals_kernel

FPFH_DIMS = 33
UNIT_TOLERANCE = 1e-3  # how far a given normal's length may be from 1 (float32 rounding is ~1e-7)


def fpfh(points, normals=None, k: int = 100, radius: float | None = None, normals_k: int = 30,
         normals_radius: float | None = None, camera=ORIGIN):
    """FPFH of every point, like Open3D's `compute_fpfh_feature` (transposed, float32).

    points: (N, 3) float array in metres (numpy, or torch on CPU/CUDA). normals: (N, 3) float array of unit
    vectors (length within UNIT_TOLERANCE of 1, else ValueError), or None to estimate them here by PCA over the `normals_k` nearest neighbours (hybrid with `normals_radius` if
    given), oriented to `camera`, reusing the FPFH neighbour search (the normals_k nearest are the first
    columns of the k nearest). k: neighbours per point including the point itself (Open3D's max_nn),
    2 <= k <= N. radius: None for plain kNN, or metres for Open3D's hybrid search (the k nearest within the
    radius). The defaults are BTF/CPMF's parameters in effect (their radii 0.1/0.25 m cover whole objects).
    Returns (N, 33) float32 of the kind of `points`.
    """
    points = as_float_array(points, "points", ndim=2, last_dim=3)
    n = int(points.shape[0])
    k = check_k(k, n, minimum=2)
    radius = check_radius(radius)
    if normals is not None:
        normals = _check_normals(normals, points)
        nbr_idx, dist2 = _neighbourhoods.search(points, k)
    else:
        normals_k = check_k(normals_k, n, name="normals_k", minimum=3)
        normals_radius = check_radius(normals_radius, "normals_radius")
        camera = check_camera(camera)
        # One search serves both: rows are sorted, so the normals_k nearest are the first columns of the wider one.
        nbr_idx, dist2 = _neighbourhoods.search(points, max(k, normals_k))
        normals_count = _neighbourhoods.counts_within(dist2, normals_radius, normals_k)
        normals = _normals_kernel(points, nbr_idx, normals_count, camera)
    nbr_count = _neighbourhoods.counts_within(dist2, radius, k)
    return _fpfh_kernel(points, normals, nbr_idx, nbr_count)


def fpfh_from_neighbors(points, normals, nbr_idx, nbr_count=None):
    """FPFH from given normals and neighbourhoods.

    normals: (N, 3) float array of unit vectors, as for `fpfh`. nbr_idx: (N, K) integer, row i = neighbours of point i, nearest first,
    point i itself first (Open3D skips the first entry as the point itself). nbr_count: (N,) integer in
    [0, K] or None: only the first nbr_count[i] entries of row i are used. Returns (N, 33) float32.
    """
    points = as_float_array(points, "points", ndim=2, last_dim=3)
    normals = _check_normals(normals, points)
    nbr_idx, nbr_count = _neighbourhoods.check_neighbours(nbr_idx, nbr_count, int(points.shape[0]), points)
    return _fpfh_kernel(points, normals, nbr_idx, nbr_count)


def fpfh_reference(points, normals, k: int = 100, radius: float | None = None) -> np.ndarray:
    """Open3D's FPFH for the given normals (for tests and benchmarks): (N, 33) float32 numpy."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(to_numpy(points).astype(np.float64)))
    cloud.normals = o3d.utility.Vector3dVector(to_numpy(normals).astype(np.float64))
    param = o3d.geometry.KDTreeSearchParamKNN(k) if radius is None else o3d.geometry.KDTreeSearchParamHybrid(radius, k)
    feature = o3d.pipelines.registration.compute_fpfh_feature(cloud, param)
    return np.asarray(feature.data, dtype=np.float32).T.copy()


def _check_normals(normals, points):
    normals = as_float_array(normals, "normals", ndim=2, last_dim=3)
    if normals.shape[0] != points.shape[0]:
        raise ValueError(f"normals: expected shape ({points.shape[0]}, 3) to match points, got {tuple(normals.shape)}")
    check_same_kind(points, "points", normals=normals)
    # the angle features assume unit normals: other lengths silently give other histograms
    lengths = normals.norm(dim=1) if is_torch(normals) else np.linalg.norm(normals, axis=1)
    off = to_numpy(abs(lengths - 1) > UNIT_TOLERANCE)
    if off.any():
        first = int(np.flatnonzero(off)[0])
        raise ValueError(f"normals: expected unit vectors (length within {UNIT_TOLERANCE} of 1), {int(off.sum())} "
                         f"row(s) are not, first row {first} of length {float(lengths[first]):.6g}; normalise "
                         "them (a zero normal has no direction: drop its point) or pass normals=None")
    return normals


def _fpfh_kernel(points, normals, nbr_idx, nbr_count):
    out = empty_like_kind(points, (int(points.shape[0]), FPFH_DIMS), "float32")
    ext().fpfh(points, normals, nbr_idx, nbr_count, out, stream_of(points))
    return out
