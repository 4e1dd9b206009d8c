"""The references' background removal, with Open3D, to test and benchmark `preprocess` against.

Steps as in the BTF preprocessing script that BTF, M3DM, CPMF and Shape-Guided share (notes §1):
segment_plane(0.004, ransac_n=50, 1000 iterations) on the border points, zero the points closer
than 5 mm to the plane, keep the largest cluster_dbscan(eps=0.006, min_points=30) cluster.
Padding is left out: it does not change which points are kept.
"""
from __future__ import annotations

import numpy as np

from .preprocess import BORDER, EPS, MIN_POINTS, PLANE_DISTANCE, PLANE_THRESHOLD, RANSAC_ITERATIONS


def open3d_foreground_mask(points: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W) bool: the points the reference pipeline keeps of an (H, W, 3) grid."""
    import open3d as o3d

    height, width, _ = points.shape
    border = np.concatenate([points[:BORDER].reshape(-1, 3), points[-BORDER:].reshape(-1, 3),
                             points[:, :BORDER].reshape(-1, 3), points[:, -BORDER:].reshape(-1, 3)])
    border = border[np.all(border != 0, axis=1)].astype(np.float64)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(border))
    o3d.utility.random.seed(seed)
    plane, _ = cloud.segment_plane(distance_threshold=PLANE_THRESHOLD, ransac_n=50,
                                   num_iterations=RANSAC_ITERATIONS)
    flat = points.reshape(-1, 3).astype(np.float64)
    distance = np.abs(flat @ np.asarray(plane[:3]) + plane[3])
    candidates = np.flatnonzero(np.all(flat != 0, axis=1) & (distance >= PLANE_DISTANCE))
    keep = np.zeros(height * width, dtype=bool)
    if len(candidates) == 0:
        return keep.reshape(height, width)
    remaining = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(flat[candidates]))
    labels = np.asarray(remaining.cluster_dbscan(eps=EPS, min_points=MIN_POINTS))
    if (labels >= 0).any():
        largest = np.bincount(labels[labels >= 0]).argmax()
        keep[candidates[labels == largest]] = True
    return keep.reshape(height, width)
