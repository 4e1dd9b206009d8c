"""Local patches of a point cloud for the 3D expert: farthest-point centres and their nearest points."""
from __future__ import annotations

import numpy as np

from iaenet.ops._arrays import as_float_array, to_numpy
from iaenet.ops._params import check_int, check_positive
from iaenet.ops.neighbours import knn
from iaenet.ops.sampling import farthest_point_sample


def group_patches(points, num_patches: int | None = None, patch_size: int = 500, group_mul: float = 10, seed: int = 0):
    """Cuts a cloud into overlapping patches of `patch_size` points (Shape-Guided's grouping, exact and seeded).

    points: (N, 3) float array (numpy, or torch on CPU/CUDA), finite, N >= patch_size.
    num_patches: P, the number of centres; None gives max(1, round(N * group_mul / patch_size)), so every
    point lies in about `group_mul` patches (Python's round, as in Shape-Guided's cut_patches.py); group_mul is
    finite and > 0 and may ask for at most N patches.
    seed: draws the first centre (the references draw it unseeded).
    Returns (centre_idx, patch_idx): (P,) int64 centres chosen by farthest point sampling, and (P, patch_size)
    int64 indices of the patch_size points nearest each centre (the centre first), sorted by distance with ties
    to the lower index; both of the same kind and device as `points`.
    """
    points = as_float_array(points, "points", ndim=2, last_dim=3)
    n = int(points.shape[0])
    patch_size = check_int(patch_size, "patch_size", minimum=1)
    if n < patch_size:
        raise ValueError(f"points: {n} points cannot fill a patch of patch_size={patch_size} points")
    group_mul = check_positive(group_mul, "group_mul")
    if num_patches is None:
        num_patches = max(1, round(n * group_mul / patch_size))
        if num_patches > n:
            raise ValueError(f"group_mul: {group_mul} asks for {num_patches} patches, more than the {n} points")
    elif check_int(num_patches, "num_patches", minimum=1) > n:
        raise ValueError(f"num_patches: need at most {n} (the number of points), got {num_patches}")
    centre_idx = farthest_point_sample(points, int(num_patches), seed=seed)
    patch_idx, _ = knn(points, patch_size, queries=points[centre_idx])
    return centre_idx, patch_idx


def group_patches_reference(points, num_patches: int, patch_size: int, start: int):
    """The references' grouping in torch (for tests and benchmarks): a Python-loop FPS from `start`, then a dense
    (P, N) distance matrix from a (P, N, 3) broadcast and a full argsort per centre.

    Distances use the kernels' float32 order (dx*dx + dy*dy) + dz*dz and the argsort is stable, so the result
    equals group_patches for the same first centre. Returns numpy (P,) and (P, patch_size) int64 arrays.
    """
    import torch

    xyz = torch.from_numpy(np.ascontiguousarray(to_numpy(points), dtype=np.float32))
    centres = torch.empty(num_patches, dtype=torch.int64)
    distance = torch.full((len(xyz),), float("inf"))
    farthest = start
    for i in range(num_patches):
        centres[i] = farthest
        distance = torch.minimum(distance, _sq_dist(xyz, xyz[farthest]))
        farthest = int(torch.argmax(distance))  # the first maximum: ties to the lowest index
    dist = _sq_dist(xyz[None, :, :], xyz[centres][:, None, :])
    patches = torch.argsort(dist, dim=-1, stable=True)[:, :patch_size]
    return centres.numpy(), patches.numpy()


def _sq_dist(a, b):
    d = a - b
    return d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]
