"""Cut-Paste synthesis time per scan: a real 400x400 MVTec 3D-AD scan and a 256x256 synthetic scan.

There is no runnable reference here: G2SF's synthesis lives in its torch Dataset and needs torchvision, imgaug
and OpenCV, none of which iaenet depends on. Its cost is dominated by the same steps (Perlin noise at 512x512,
an image rotation, connected components, the paste), so the figure to watch is ours per scan against the
fusion training's budget (800 scans per category in the paper): "well under 100 ms" on a 400x400 scan.

Run:  PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_cutpaste.py
      (with --benchmark-json, extra_info holds `ms_per_scan` and `mean_gt_pixels`)
      Under --benchmark-disable each case runs once as a plain correctness test.
"""
from pathlib import Path

import numpy as np
import pytest

from iaenet.data.cutpaste import CutPasteSynthesizer
from iaenet.data.datasets import open_dataset
from iaenet.data.preprocess import preprocess_scan
from iaenet.data.scan import Scan
from iaenet.data.synthetic import render_sample

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mvtec3d_dev"
SCANS_PER_ROUND = 20  # different indices: the time includes the redraws some indices need


def _clean(scan: Scan) -> Scan:
    return preprocess_scan(scan, size=max(scan.points.shape[:2]))


def _run(benchmark, target: Scan, donors: list[Scan]) -> None:
    synthesizer = CutPasteSynthesizer(donors, seed=0)

    def make_round():
        return [synthesizer.synthesize(target, index) for index in range(SCANS_PER_ROUND)]

    results = benchmark.pedantic(make_round, rounds=5, iterations=1, warmup_rounds=1)
    assert all(result.gt.any() for result in results)
    benchmark.extra_info["mean_gt_pixels"] = float(np.mean([result.gt.sum() for result in results]))
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["ms_per_scan"] = 1e3 * benchmark.stats.stats.mean / SCANS_PER_ROUND


@pytest.mark.benchmark(group="cut-paste per scan")
def test_real_400(benchmark):
    if not DEV.exists():
        pytest.skip(f"real data not found at {DEV} (expected ../shared/data beside the checkout)")
    train = open_dataset(DEV, "cable_gland", "train")
    scans = [_clean(train[i]) for i in range(5)]
    _run(benchmark, scans[0], scans[1:])


@pytest.mark.benchmark(group="cut-paste per scan")
def test_synthetic_256(benchmark):
    scans = [_clean(Scan(points=render_sample("gland", np.random.default_rng(i)).xyz, name=f"gland {i}"))
             for i in range(5)]
    _run(benchmark, scans[0], scans[1:])
