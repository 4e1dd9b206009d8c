"""X2 per test scan: iaenet's restricted retrieval (M2D search through the retrieval kernel, pruned by M2D's
principal axes where they hold most of the variance, and the OMP residual kernel) against the reference style
(Shape-Guided: the candidate union built in a Python loop over the neighbour patches, torch.cdist, one sklearn
sparse_encode OMP call per cell).

Run:  PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_retrieval.py
Scenes:
- real: MVTec 3D-AD cable_gland from ../shared/data (skipped without it): the 2D expert's f2 (EfficientNet-Lite0
  + FPFH, D = 97) of the 32 train/good scans and of one defective test scan, the 3D expert's patches, and its M3D
  neighbours (the `fast` network trained for one epoch on 4 scans: the neighbours decide which M2D rows become
  candidates, not how good the 3D expert is). Both sides get the same neighbours. Under --benchmark-disable: 3
  training scans, the network trained on 2.
- D153 / D801: synthetic, 30 training scans x 400 patches of 500 points (20k points per scan on the 224 grid), a
  test scan of 400 patches; isotropic Gaussian f2 of the sizes of EfficientNet-Lite0 40 + 80 + FPFH 33 and WRN-50-2
  256 + 512 + 33 (the M3D search by cdist on the reference side, faiss on ours). Nothing can be pruned in such
  features (all distances concentrate), so the bank keeps the dense search: the worst case.
With --benchmark-json, extra_info holds the bank bytes per training scan, the retrieval sizes and, on the
reference entry, ``speedup_of_ours``. Under --benchmark-disable every case runs once at small sizes as a
plain correctness test (ours == reference).
"""
from dataclasses import replace
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from iaenet.memory import DualMemoryBank, cell_scores_reference, flat_pixel_index

SIZE, G = 224, 28
FULL = {"train_scans": 30, "patches": 400, "points_per_patch": 500, "side": 150}
SMALL = {"train_scans": 3, "patches": 40, "points_per_patch": 50, "side": 60}
_MEAN_SECONDS = {}


DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "mvtec3d_dev"


@pytest.fixture(scope="module", params=["real", 153, 801], ids=lambda d: d if d == "real" else f"D{d}")
def scene(request):
    torch.set_num_threads(2)
    small = request.config.getoption("benchmark_disable")
    if request.param == "real":
        return make_real_scene(train_scans=3 if small else None)
    return make_scene(request.param, SMALL if small else FULL)


def make_real_scene(train_scans: int | None):
    """(bank, (None, patch_idx, pixel_index, f2, neighbours)) from the real dev subset; see the module docstring."""
    if not (DEV / "cable_gland").is_dir():
        pytest.skip(f"real data not found at {DEV}")
    from iaenet.data.datasets import open_dataset
    from iaenet.data.preprocess import preprocess_scan
    from iaenet.experts import PRESETS, Expert3D
    from iaenet.experts.expert2d import Expert2D

    train = [preprocess_scan(scan, SIZE) for scan in islice(open_dataset(DEV, "cable_gland", "train"), train_scans)]
    test = next(preprocess_scan(scan, SIZE) for scan in open_dataset(DEV, "cable_gland", "test") if scan.label)
    points = [scan.valid_points()[0] for scan in train]
    expert3d = Expert3D(replace(PRESETS["fast"], epochs=1, max_train_scans=2 if train_scans else 4))
    expert3d.train(points, progress=False)
    expert3d.build_bank(points)
    cells = Expert2D().features(train + [test])
    bank = DualMemoryBank()
    for i, (cloud, scan_cells) in enumerate(zip(points, cells)):
        bank.add_scan(expert3d.bank[expert3d.bank_scan == i], expert3d.patches(cloud),
                      flat_pixel_index(scan_cells.view.pixels, SIZE), scan_cells.features)
    x1 = expert3d.score(test.valid_points()[0])
    return bank, (None, x1.patch_idx, flat_pixel_index(cells[-1].view.pixels, SIZE), cells[-1].features, x1.neighbours)



def make_scene(d: int, sizes: dict):
    """A seeded bank and test scan with the experts' shapes; patch i of every scan shares a latent prototype, so
    the M3D neighbours of a test patch are the corresponding patches of the training scans."""
    rng = np.random.default_rng(0)
    side, p, s = sizes["side"], sizes["patches"], sizes["points_per_patch"]
    n = p * s // 10  # every point in ~10 patches, as group_mul = 10 gives
    top = (SIZE - side) // 2
    flat = rng.choice(side * side, n, replace=False)
    rows, cols = top + flat // side, top + flat % side
    centres = rng.choice(n, p, replace=False)
    dist = (rows[centres, None] - rows[None]) ** 2 + (cols[centres, None] - cols[None]) ** 2
    patch_idx = np.argpartition(dist, s - 1, axis=1)[:, :s]
    prototypes = rng.standard_normal((p, 128)).astype(np.float32)

    def scan(shift: int):
        pixel_index = (rows + shift) * SIZE + cols + shift
        latents = prototypes + 0.3 * rng.standard_normal((p, 128)).astype(np.float32)
        features = rng.standard_normal((G * G, d)).astype(np.float32)
        return latents, patch_idx, pixel_index, features

    bank = DualMemoryBank()
    for i in range(sizes["train_scans"]):
        bank.add_scan(*scan(i % 5 - 2))
    return bank, scan(0)


def reference_scores(bank: DualMemoryBank, latents, patch_idx, pixel_index, features, neighbours=None) -> np.ndarray:
    """Shape-Guided's RGB branch: cdist + topk over M3D (unless the neighbours are given), then
    cell_scores_reference, then the bilinear map."""
    if neighbours is None:
        neighbours = torch.topk(torch.cdist(torch.from_numpy(latents), bank.m3d), k=bank.config.k_patches,
                                largest=False).indices.numpy()
    cells = cell_scores_reference(bank, neighbours, patch_idx, pixel_index, features)
    up = torch.nn.functional.interpolate(torch.from_numpy(cells).reshape(1, 1, G, G), size=(SIZE, SIZE),
                                         mode="bilinear", align_corners=False).flatten()
    return up[torch.from_numpy(pixel_index)].numpy()


def _neighbours(test):
    return test[4] if len(test) > 4 else None


def _run(benchmark, function, rounds):
    result = benchmark.pedantic(function, rounds=rounds, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        _MEAN_SECONDS[benchmark.name] = benchmark.stats.stats.mean
    return result


@pytest.mark.benchmark(group="X2 per test scan")
def test_ours(benchmark, scene):
    bank, test = scene
    result = _run(benchmark, lambda: bank.score(*test[:4], neighbours=_neighbours(test)), rounds=20)
    # Near-ties among the candidates may be ordered differently by torch.cdist (see docs/memory.md).
    np.testing.assert_allclose(result.point_scores, reference_scores(bank, *test), rtol=1e-4, atol=1e-3)
    info = bank.summary()
    projection = bank._projection()
    benchmark.extra_info.update(bank_bytes_per_scan=info["per_scan_bytes"], m2d_rows=info["m2d_rows"],
                                m3d_rows=info["patches"], scored_cells=len(result.scored_cells),
                                rows_per_patch=info["rows_per_patch_mean"], pruned=projection is not None,
                                explained=None if projection is None else projection.explained)


@pytest.mark.benchmark(group="X2 per test scan")
def test_reference(benchmark, scene):
    bank, test = scene
    _run(benchmark, lambda: reference_scores(bank, *test), rounds=3)
    ours = _MEAN_SECONDS.get(benchmark.name.replace("test_reference", "test_ours"))
    if ours is not None and benchmark.stats is not None:
        benchmark.extra_info["speedup_of_ours"] = benchmark.stats.stats.mean / ours
