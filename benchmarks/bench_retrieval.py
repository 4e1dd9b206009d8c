"""X2 per test scan: iaenet's restricted retrieval (M3D and M2D searches through the retrieval kernel, one batched
OMP) against the reference style (Shape-Guided: cdist to M3D, the candidate union built in a Python loop over the
neighbour patches, torch.cdist, one sklearn sparse_encode OMP call per cell).

Run:  PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_retrieval.py
Sizes: 30 training scans x 400 patches of 500 points (20k points per scan on the 224 grid), a test scan of
400 patches; f2 of D = 153 (EfficientNet-Lite0 40 + 80 channels + FPFH 33) and D = 801 (WRN-50-2 256 + 512 + 33).
With --benchmark-json, extra_info holds the bank bytes per training scan, the retrieval sizes and, on the
reference entry, ``speedup_of_ours``. Under --benchmark-disable every case runs once at small sizes as a
plain correctness test (ours == reference).
"""
import numpy as np
import pytest
import torch

from iaenet.memory import DualMemoryBank, cell_scores_reference

SIZE, G = 224, 28
FULL = {"train_scans": 30, "patches": 400, "points_per_patch": 500, "side": 150}
SMALL = {"train_scans": 3, "patches": 40, "points_per_patch": 50, "side": 60}
_MEAN_SECONDS = {}


@pytest.fixture(scope="module", params=[153, 801], ids=lambda d: f"D{d}")
def scene(request):
    torch.set_num_threads(2)
    return make_scene(request.param, SMALL if request.config.getoption("benchmark_disable") else FULL)


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


def reference_scores(bank: DualMemoryBank, latents, patch_idx, pixel_index, features) -> np.ndarray:
    """Shape-Guided's RGB branch: cdist + topk over M3D, then cell_scores_reference, then the bilinear map."""
    neighbours = torch.topk(torch.cdist(torch.from_numpy(latents), bank.m3d), k=bank.config.k_patches,
                            largest=False).indices
    cells = cell_scores_reference(bank, neighbours.numpy(), patch_idx, pixel_index, features)
    up = torch.nn.functional.interpolate(torch.from_numpy(cells).reshape(1, 1, G, G), size=(SIZE, SIZE),
                                         mode="bilinear", align_corners=False).flatten()
    return up[torch.from_numpy(pixel_index)].numpy()


def _run(benchmark, function, rounds):
    result = benchmark.pedantic(function, rounds=rounds, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        _MEAN_SECONDS[benchmark.name] = benchmark.stats.stats.mean
    return result


@pytest.mark.benchmark(group="X2 per test scan")
def test_ours(benchmark, scene):
    bank, test = scene
    result = _run(benchmark, lambda: bank.score(*test), rounds=5)
    np.testing.assert_allclose(result.point_scores, reference_scores(bank, *test), rtol=1e-4, atol=1e-4)
    info = bank.summary()
    benchmark.extra_info.update(bank_bytes_per_scan=info["per_scan_bytes"], m2d_rows=info["m2d_rows"],
                                m3d_rows=info["patches"], scored_cells=len(result.scored_cells),
                                rows_per_patch=info["rows_per_patch_mean"])


@pytest.mark.benchmark(group="X2 per test scan")
def test_reference(benchmark, scene):
    bank, test = scene
    _run(benchmark, lambda: reference_scores(bank, *test), rounds=2)
    ours = _MEAN_SECONDS.get(benchmark.name.replace("test_reference", "test_ours"))
    if ours is not None and benchmark.stats is not None:
        benchmark.extra_info["speedup_of_ours"] = benchmark.stats.stats.mean / ours
