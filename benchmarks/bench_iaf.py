"""Fused IAF inference on the points of one scan: the kernel (iaenet.ops.iaf_forward) against eager torch, the
selector and predictor run one layer after another (iaf_forward_reference, what torch.nn modules do).

Run:  PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_iaf.py --benchmark-columns=min,mean,median,rounds
(--benchmark-json=FILE writes extra_info speedup_vs_eager_torch for our cases: eager torch's median / ours, same
run, same scores). Sizes: 50k points (a 224 x 224 scan keeps about that many), the paper's networks
2 -> 64 -> 64 -> 64 -> 2 with torch.nn.Linear's seeded initial weights; torch tensors in and out, 2 threads on
both sides (OMP_NUM_THREADS=1 runs both on one). Scores: "uniform" on [0, 3]^2, and "clustered" like normalised
expert scores (|N(0, 0.5)| per expert, 2.5 % of the points spread over [0, 8]^2). Under --benchmark-disable the two
agree to 1e-5.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from iaenet.ops import iaf_forward
from iaenet.ops.iaf import iaf_forward_reference

POINTS, WIDTH = 50_000, 64


@pytest.fixture(scope="module", params=["uniform", "clustered"])
def problem(request):
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 2)))  # ours: OpenMP's count, 2 on this machine
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if request.param == "uniform":
        scores = rng.uniform(0, 3, (POINTS, 2))
    else:
        scores = np.abs(rng.normal(0, 0.5, (POINTS, 2)))
        scores[::40] = rng.uniform(0, 8, (len(scores[::40]), 2))
    nets = [_network() for _ in range(2)]
    return torch.from_numpy(scores.astype(np.float32)), nets[0], nets[1]


def _network():
    """The paper's 2 -> 64 -> 64 -> 64 -> 2 as (weight, bias) pairs of torch.nn.Linear's initial weights."""
    widths = [2, WIDTH, WIDTH, WIDTH, 2]
    layers = [torch.nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:])]
    return [(layer.weight.detach(), layer.bias.detach()) for layer in layers]


@pytest.mark.benchmark(group="IAF inference, 50k points")
def test_kernel(benchmark, problem):
    a = benchmark(iaf_forward, *problem)
    torch.testing.assert_close(a, iaf_forward_reference(*problem), rtol=0, atol=1e-5)
    _OURS[problem[0].data_ptr()] = benchmark


@pytest.mark.benchmark(group="IAF inference, 50k points")
def test_eager_torch(benchmark, problem):
    benchmark(iaf_forward_reference, *problem)
    ours = _OURS.get(problem[0].data_ptr())
    if ours is not None and _median(benchmark) and _median(ours):
        ours.extra_info["speedup_vs_eager_torch"] = round(_median(benchmark) / _median(ours), 1)


_OURS = {}  # our timed case per problem, given extra_info by test_eager_torch, which runs after it


def _median(benchmark) -> float | None:
    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    return stats.stats.median if stats is not None else None
