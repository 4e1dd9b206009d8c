"""Farthest point sampling (kernel: csrc/fps)."""
from __future__ import annotations

import numpy as np

from iaenet.ops._arrays import as_float_array, empty_like_kind, stream_of, to_numpy
from iaenet.ops._ext import ext
from iaenet.ops._params import check_int, check_k


def farthest_point_sample(points, num_samples: int, start: int | None = None, seed: int = 0):
    """Indices of `num_samples` points chosen by farthest point sampling.

    points: (N, 3) float array (numpy, or torch on CPU/CUDA). num_samples: 1..N.
    start: int index of the first sample; None draws it from `seed`, an int >= 0 (reproducible, unlike the
    references' unseeded torch.randint). Returns (num_samples,) int64 of the same kind and device as `points`.
    Each next sample is the point farthest from all earlier ones; ties go to the lowest index.
    """
    points = as_float_array(points, "points", ndim=2, last_dim=3)
    n = int(points.shape[0])
    num_samples = check_k(num_samples, n, "num_samples")
    if start is None:
        start = int(np.random.default_rng(check_int(seed, "seed", minimum=0)).integers(n))
    if not 0 <= check_int(start, "start") < n:
        raise ValueError(f"start: index {start} out of range for {n} points")
    out = empty_like_kind(points, (num_samples,), "int64")
    ext().fps(points, out, int(start), stream_of(points))
    return out


def farthest_point_sample_reference(points, num_samples: int, start: int) -> np.ndarray:
    """Plain numpy farthest point sampling, the same float32 arithmetic as the kernel (for tests)."""
    p = to_numpy(points).astype(np.float32)
    min_dist = np.full(len(p), np.inf, dtype=np.float32)
    out = np.empty(num_samples, dtype=np.int64)
    out[0] = start
    for k in range(1, num_samples):
        d = p - p[out[k - 1]]
        min_dist = np.minimum(min_dist, d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2])
        out[k] = int(np.argmax(min_dist))
    return out
