"""End to end on the CPU: one scan (already read) through preparation, both experts, the memory bank and the fusion,
for the `fast` and `paper` presets' networks; scans/s, seconds per stage and peak memory in extra_info.

Run: PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_end_to_end.py --benchmark-columns=min,median,rounds
     --benchmark-json=FILE

There is no runnable reference pipeline here (Shape-Guided and CPMF need CUDA builds and timm); extra_info
`reference_s_per_scan` carries their end-to-end times measured on this kind of 2-core machine with the reference code
(notes/reference-implementations.md §5: Shape-Guided 2.97 s predict + 1.07 s preprocessing, CPMF 2.30 s predict +
0.91 s views + 1.07 s preprocessing) and `speedup_vs_reference` the ratio to ours.
Models: the preset's architecture trained for one epoch (bench helper benchmarks/_end_to_end.py): inference cost does
not depend on the training length. Scans: real cable_gland test scans when ../shared/data is present.
Under --benchmark-disable (the test suite) each case runs once on the tiny preset and small synthetic scans, as a
correctness check of the timing path.
"""
from __future__ import annotations

import resource

import pytest
import torch

from iaenet.model import timed_prediction

from _end_to_end import inference_model, scans

REFERENCE_S_PER_SCAN = {"Shape-Guided": 2.97 + 1.07, "CPMF": 2.30 + 0.91 + 1.07}


@pytest.fixture(scope="module")
def data(tmp_path_factory, request):
    torch.set_num_threads(2)
    return scans(tmp_path_factory.mktemp("e2e"), small=request.config.getoption("benchmark_disable"))


@pytest.mark.parametrize("preset", ["fast", "paper"])
def test_end_to_end_cpu(benchmark, data, preset):
    train, test = data
    model = inference_model("tiny" if benchmark.disabled else preset, train, device="cpu")
    model.predict(test[0])  # warm-up
    stages: dict[str, float] = {}
    counter = {"i": 0}

    def one_scan():
        scan = test[counter["i"] % len(test)]
        counter["i"] += 1
        return timed_prediction(model, scan, stages)

    rounds = 10 if preset == "fast" else 3
    result = benchmark.pedantic(one_scan, rounds=rounds, iterations=1)
    assert result.scores.shape == (len(result.points),)
    median = benchmark.stats.stats.median if benchmark.stats else None
    if median:
        benchmark.extra_info["scans_per_second"] = 1 / median
        benchmark.extra_info["speedup_vs_reference"] = {k: v / median for k, v in REFERENCE_S_PER_SCAN.items()}
    benchmark.extra_info["reference_s_per_scan"] = REFERENCE_S_PER_SCAN
    benchmark.extra_info["stage_s_per_scan"] = {k: v / counter["i"] for k, v in stages.items()}
    benchmark.extra_info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
