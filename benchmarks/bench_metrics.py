"""AU-PRO speed: iaenet.metrics (exact and 100 thresholds) against an au_pro_util-style implementation
(100 thresholds, a Python loop over thresholds and, inside, over ground-truth regions).

Run:  PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_metrics.py
The table's parenthesised factors are the ratios to the fastest entry of the group. With --benchmark-json,
extra_info holds each entry's peak traced memory beyond the input maps (``peak_mib``) and, on the reference
entry, ``speedup_of_ours_exact``. Under --benchmark-disable every case runs once as a plain correctness test.
"""
import tracemalloc

import numpy as np
import pytest
from scipy import ndimage

from iaenet.metrics_reference import au_pro_thresholds_reference
from iaenet.metrics import au_pro

N_MAPS, SIDE, LIMIT = 100, 224, 0.3
_MEAN_SECONDS = {}


@pytest.fixture(scope="module")
def test_set():
    """100 seeded 224x224 float32 maps (smooth noise, raised inside the defects) and their gt masks.

    Two thirds of the maps hold 1-3 elliptic defects; the rest are normal."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:SIDE, :SIDE]
    maps, gts = [], []
    for i in range(N_MAPS):
        gt = np.zeros((SIDE, SIDE), dtype=np.uint8)
        if i % 3:
            for _ in range(rng.integers(1, 4)):
                r, c = rng.integers(20, SIDE - 20, size=2)
                a, b = rng.uniform(2, 15, size=2)
                gt[((rows - r) / a) ** 2 + ((cols - c) / b) ** 2 <= 1] = 255
        noise = ndimage.gaussian_filter(rng.random((SIDE, SIDE)), sigma=2)
        maps.append((noise + 0.05 * (gt > 0)).astype(np.float32))
        gts.append(gt)
    return maps, gts


@pytest.fixture(scope="module")
def reference_value(test_set):
    return au_pro_thresholds_reference(*test_set, limit=LIMIT, num_thresholds=100)


def _run(benchmark, function, rounds):
    result = benchmark.pedantic(function, rounds=rounds, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        _MEAN_SECONDS[benchmark.name] = benchmark.stats.stats.mean
        tracemalloc.start()
        function()
        benchmark.extra_info["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result


@pytest.mark.benchmark(group="au_pro 100 maps 224x224")
def test_ours_exact(benchmark, test_set, reference_value):
    result = _run(benchmark, lambda: au_pro(*test_set, limits=(LIMIT,)), rounds=3)
    # The 100-threshold curve samples the exact one: close, not equal.
    assert 0.0 < result[LIMIT] < 1.0 and result[LIMIT] == pytest.approx(reference_value, abs=0.01)


@pytest.mark.benchmark(group="au_pro 100 maps 224x224")
def test_ours_100_thresholds(benchmark, test_set, reference_value):
    result = _run(benchmark, lambda: au_pro(*test_set, limits=(LIMIT,), num_thresholds=100), rounds=3)
    assert result[LIMIT] == pytest.approx(reference_value, abs=1e-12)


@pytest.mark.benchmark(group="au_pro 100 maps 224x224")
def test_reference_100_thresholds(benchmark, test_set, reference_value):
    result = _run(benchmark, lambda: au_pro_thresholds_reference(*test_set, LIMIT, 100), rounds=2)
    assert result == reference_value
    ours = _MEAN_SECONDS.get("test_ours_exact")
    if ours is not None and benchmark.stats is not None:
        benchmark.extra_info["speedup_of_ours_exact"] = benchmark.stats.stats.mean / ours
