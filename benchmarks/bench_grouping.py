"""Neighbour search and patch grouping speed: iaenet.ops against the tools the references use.

- FPS + 500-NN grouping of a real scan (the part of a 400x400 cable_gland dev scan, ~22.7k points, ~450
  patches) against the Shape-Guided approach (Python-loop FPS, dense distance matrix, full argsort).
- knn k=30 and k=100 on that scan and on a 200k-point surface, against Open3D (o3d.core.nns batch search;
  the legacy KDTreeFlann per-point loop on the scan only) and scipy's cKDTree (workers=2).
- Peak resident memory of knn on the 200k cloud, measured from /proc in a fresh subprocess (the C++
  buffers are invisible to tracemalloc).

Run:  PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_grouping.py
pytest-benchmark's table puts each entry's ratio to the fastest of its group in parentheses. Under
--benchmark-disable every case runs once on small inputs as a plain correctness test (a few seconds).
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import iaenet
from iaenet.ops import group_patches, knn
from iaenet.ops.patches import group_patches_reference

REPO = Path(__file__).resolve().parents[1]
SCAN = REPO.parent / "shared" / "data" / "mvtec3d_dev" / "cable_gland" / "train" / "good" / "xyz" / "000.tiff"
LARGE_SIDE = 448  # the 200k cloud: a 448 x 448 height field (200,704 points)


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module", params=["small", "full"])
def scan(request):
    """Object points of a real dev scan: valid pixels farther than 5 mm from a plane fitted to the border
    (~22.7k points); "small" (only size under --benchmark-disable) keeps every 8th of them."""
    if request.param == "full" and request.config.getoption("benchmark_disable"):
        pytest.skip("full-size inputs only when benchmarking")
    if not SCAN.exists():
        pytest.skip(f"real data not found at {SCAN}")
    import tifffile

    xyz = tifffile.imread(SCAN)
    valid = np.all(xyz != 0, axis=2)
    border = np.zeros(valid.shape, bool)
    border[:10], border[-10:], border[:, :10], border[:, -10:] = True, True, True, True
    ring = xyz[border & valid].astype(np.float64)
    coef, *_ = np.linalg.lstsq(np.c_[ring[:, :2], np.ones(len(ring))], ring[:, 2], rcond=None)
    pts = xyz[valid]
    height = np.abs(pts[:, :2] @ coef[:2] + coef[2] - pts[:, 2]) / np.sqrt(1 + coef[0] ** 2 + coef[1] ** 2)
    part = pts[height > 0.005]
    return np.ascontiguousarray(part if request.param == "full" else part[::8])


@pytest.fixture(scope="module", params=["small", "200k"])
def large(request):
    """A seeded bumpy 2-manifold: a LARGE_SIDE^2 height field with jitter ("small": 64^2 points)."""
    if request.param == "200k" and request.config.getoption("benchmark_disable"):
        pytest.skip("full-size inputs only when benchmarking")
    return surface(LARGE_SIDE if request.param == "200k" else 64)


def surface(side: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    u, v = np.meshgrid(np.linspace(0, 0.1, side), np.linspace(0, 0.1, side))
    z = 0.004 * np.sin(u * 90) * np.cos(v * 70) + 0.0002 * rng.standard_normal(u.shape)
    xy_jitter = 0.1 / side * 0.3 * rng.standard_normal((2,) + u.shape)
    return np.ascontiguousarray(np.stack([u + xy_jitter[0], v + xy_jitter[1], z], -1).reshape(-1, 3), np.float32)


def run(benchmark, function, rounds=3):
    return benchmark.pedantic(function, rounds=rounds, iterations=1, warmup_rounds=1)


# --- FPS + 500-NN grouping ------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="grouping: FPS + 500-NN, real scan")
def test_grouping_ours(benchmark, scan):
    patch_size = min(500, len(scan))
    centres, patches = run(benchmark, lambda: group_patches(scan, patch_size=patch_size, seed=0))
    want = group_patches_reference(scan, len(centres), patch_size, int(centres[0]))
    np.testing.assert_array_equal(centres, want[0])
    np.testing.assert_array_equal(patches, want[1])
    benchmark.extra_info.update(points=len(scan), patches=len(centres))


@pytest.mark.benchmark(group="grouping: FPS + 500-NN, real scan")
def test_grouping_reference(benchmark, scan):
    patch_size = min(500, len(scan))
    num_patches = max(1, round(len(scan) * 10 / patch_size))
    centres, patches = run(benchmark, lambda: group_patches_reference(scan, num_patches, patch_size, 0), rounds=1)
    assert patches.shape == (num_patches, patch_size) and centres[0] == 0


# --- knn ------------------------------------------------------------------------------------------------------


def open3d_nns(points: np.ndarray, k: int):
    import open3d as o3d

    tensor = o3d.core.Tensor(points)
    search = o3d.core.nns.NearestNeighborSearch(tensor)
    search.knn_index()
    idx, dist2 = search.knn_search(tensor, k)
    return idx.numpy(), dist2.numpy()


def open3d_kdtreeflann(points: np.ndarray, k: int):
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    tree = o3d.geometry.KDTreeFlann(cloud)
    return [tree.search_knn_vector_3d(p, k)[1] for p in cloud.points]


def scipy_ckdtree(points: np.ndarray, k: int):
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(points).query(points, k, workers=2)
    return idx, dist**2


def check_distances(ours_dist2: np.ndarray, other_dist2: np.ndarray):
    # Other tools evaluate distances in another order (or in float64): equal up to rounding.
    np.testing.assert_allclose(ours_dist2, other_dist2, rtol=2e-5, atol=1e-12)


@pytest.mark.parametrize("k", [30, 100])
@pytest.mark.parametrize("tool", ["ours", "open3d nns", "open3d KDTreeFlann loop", "scipy cKDTree"])
def test_knn_scan(benchmark, scan, k, tool):
    benchmark.group = f"knn k={k}, real scan"
    compare(benchmark, scan, k, tool)


@pytest.mark.parametrize("k", [30, 100])
@pytest.mark.parametrize("tool", ["ours", "open3d nns", "scipy cKDTree"])
def test_knn_large(benchmark, large, k, tool):
    benchmark.group = f"knn k={k}, 200k surface"
    compare(benchmark, large, k, tool)


def compare(benchmark, points, k, tool):
    benchmark.extra_info["points"] = len(points)
    ours = knn(points, k)
    if tool == "ours":
        run(benchmark, lambda: knn(points, k))
    elif tool == "open3d KDTreeFlann loop":
        neighbours = run(benchmark, lambda: open3d_kdtreeflann(points, k), rounds=1)
        assert len(neighbours) == len(points) and all(len(n) == k for n in neighbours)
    else:
        function = open3d_nns if tool == "open3d nns" else scipy_ckdtree
        _, dist2 = run(benchmark, lambda: function(points, k))
        check_distances(ours[1], dist2)


# --- memory ---------------------------------------------------------------------------------------------------

_MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    from bench_grouping import surface
    from iaenet.ops import knn

    def status_kib(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

    points = surface(int(sys.argv[3]))
    knn(points[:1000], 1)  # load the extension and the OpenMP runtime before the baseline
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current resident size
    before = status_kib("VmRSS")
    idx, dist2 = knn(points, int(sys.argv[4]))
    print(json.dumps({"points": len(points), "before_kib": before, "peak_kib": status_kib("VmHWM")}))
    """
)


@pytest.mark.parametrize("k", [30, 100])
def test_knn_peak_memory(request, k):
    """Peak RSS growth of one knn call in a fresh process (Linux /proc: VmHWM after resetting it; getrusage's
    ru_maxrss would carry the parent's peak over exec). Expected: the (N, k) outputs plus O(N) for the grid."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak RSS")
    quick = request.config.getoption("benchmark_disable")
    if quick and k != 30:
        pytest.skip("one small probe is enough as a plain test (each probe starts a Python process)")
    side = 64 if quick else LARGE_SIDE
    out = subprocess.run(
        # The probe imports the very iaenet this process runs (the installed package, or a source tree on PYTHONPATH).
        [sys.executable, "-c", _MEMORY_PROBE, str(Path(iaenet.__file__).parents[1]), str(Path(__file__).parent),
         str(side), str(k)],
        check=True, capture_output=True, text=True,
    )
    probe = json.loads(out.stdout)
    n = probe["points"]
    growth = (probe["peak_kib"] - probe["before_kib"]) * 1024
    outputs = n * k * (8 + 4)
    print(f"\nknn k={k}, {n} points: peak RSS {probe['peak_kib'] / 1024:.1f} MiB, growth over the call "
          f"{growth / 2**20:.1f} MiB, of which outputs {outputs / 2**20:.1f} MiB")
    # No N x N buffer: the growth stays within the outputs plus a few dozen bytes per point.
    assert growth <= outputs + 100 * n + 8 * 2**20
