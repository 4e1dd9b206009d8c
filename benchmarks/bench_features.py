"""Normals + FPFH speed: iaenet against Open3D with BTF/CPMF's parameters (normals hybrid(0.1 m, 30),
FPFH hybrid(0.25 m, 100); in metres these radii cover the whole object, so both act as kNN-30 / kNN-100).

Ours is the whole pipeline: one exact 100-nearest-neighbour search (its first 30 columns serve the normals),
normals oriented to the camera, FPFH. Open3D's side is estimate_normals + orientation + compute_fpfh_feature.
Cases: a real preprocessed scan (valid points of a 400x400 cable_gland scan minus the background plane,
~22.7k points) and a 200k-point scan-like cloud (a 500x400 height field with sensor noise, in grid order).

Run:  PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_features.py
With --benchmark-json, extra_info holds each entry's peak resident memory growth (``peak_rss_mib``, C++
allocations included) and, on the Open3D entry, ``speedup_of_ours``. Under --benchmark-disable every case runs
once as a plain correctness test, the 200k cloud shrunk to 20k points.
"""
import re

import numpy as np
import pytest

from iaenet.ops.fpfh import fpfh
from iaenet.ops.normals import ORIGIN

BTF = dict(normals_radius=0.1, normals_k=30, radius=0.25, k=100)
_MEAN_SECONDS = {}


def object_points(xyz: np.ndarray, border: int = 20, keep_above_mm: float = 5.0) -> np.ndarray:
    """Valid points of an organized scan that lie more than `keep_above_mm` in front of the background plane
    (a least-squares plane z = ax + by + c through the valid points of the image border)."""
    valid = np.any(xyz != 0, axis=2)
    edge = np.zeros_like(valid)
    edge[:border], edge[-border:], edge[:, :border], edge[:, -border:] = True, True, True, True
    plane_pts = xyz[edge & valid].astype(np.float64)
    coef = np.linalg.lstsq(np.c_[plane_pts[:, :2], np.ones(len(plane_pts))], plane_pts[:, 2], rcond=None)[0]
    pts = xyz[valid]
    height = np.c_[pts[:, :2], np.ones(len(pts))] @ coef - pts[:, 2]  # towards the camera is positive
    return np.ascontiguousarray(pts[height > keep_above_mm / 1000.0])


def scan_like_cloud(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """A (rows*cols, 3) float32 height field 0.6 m from the camera, 0.4 mm pixels, bumps of a few mm and
    0.05 mm noise, in grid order like a scan's valid points."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols] * 0.0004
    z = 0.6 - 0.004 * np.sin(60 * x) * np.cos(45 * y) - 0.01 * np.exp(-((x - 0.08) ** 2 + (y - 0.1) ** 2) / 0.001)
    pts = np.stack([x - x.mean(), y - y.mean(), z + rng.normal(0, 5e-5, z.shape)], -1).reshape(-1, 3)
    return pts.astype(np.float32)


@pytest.fixture(scope="module")
def clouds(request):
    from pathlib import Path

    import tifffile

    scan = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mvtec3d_dev" / "cable_gland"
    scan = scan / "train" / "good" / "xyz" / "000.tiff"
    if not scan.exists():
        pytest.skip(f"real data not found at {scan}")
    small = request.config.getoption("benchmark_disable")
    return {"scan": object_points(tifffile.imread(scan)), "cloud200k": scan_like_cloud(*((200, 100) if small else (500, 400)))}


def ours(points):
    return fpfh(points, camera=ORIGIN, **BTF)


def open3d_pipeline(points):
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(BTF["normals_radius"], BTF["normals_k"]))
    cloud.orient_normals_towards_camera_location(np.zeros(3))
    param = o3d.geometry.KDTreeSearchParamHybrid(BTF["radius"], BTF["k"])
    return np.asarray(o3d.pipelines.registration.compute_fpfh_feature(cloud, param).data, dtype=np.float32).T


def _peak_rss_mib(pipeline: str, points: np.ndarray) -> float:
    """Peak growth of the resident set while `pipeline` ("ours" or "open3d_pipeline") runs once on `points`,
    measured in a fresh interpreter so that memory kept by this process's allocators does not hide it."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure_in_child, (pipeline, points))


def _measure_in_child(pipeline: str, points: np.ndarray) -> float:
    function = {"ours": ours, "open3d_pipeline": open3d_pipeline}[pipeline]
    function(points[:1000])  # imports and one-off set-up are not the pipeline's memory
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux: resets the high-water mark VmHWM to the current resident set
    before = _status_kib("VmRSS")
    function(points)
    return (_status_kib("VmHWM") - before) / 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1))


def _run(benchmark, pipeline: str, points: np.ndarray, rounds: int):
    # One untimed warm-up call each: Open3D's first call in a process is several times slower than later ones,
    # and ours pays page faults on its first large outputs; both sides are compared warm.
    result = benchmark.pedantic(globals()[pipeline], args=(points,), rounds=rounds, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        _MEAN_SECONDS[benchmark.name] = benchmark.stats.stats.mean
        benchmark.extra_info["points"] = len(points)
        benchmark.extra_info["peak_rss_mib"] = _peak_rss_mib(pipeline, points)
    return result


def _cosine(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("case", ["scan", "cloud200k"])
def test_ours(benchmark, clouds, case):
    benchmark.group = f"normals + FPFH, {case}"
    pts = clouds[case]
    result = _run(benchmark, "ours", pts, rounds=3)
    assert result.shape == (len(pts), 33)
    np.testing.assert_allclose(result.reshape(-1, 3, 11).sum(-1), 200.0, atol=1e-3)


@pytest.mark.parametrize("case", ["scan", "cloud200k"])
def test_open3d(benchmark, clouds, case):
    benchmark.group = f"normals + FPFH, {case}"
    pts = clouds[case]
    result = _run(benchmark, "open3d_pipeline", pts, rounds=3)
    cos = _cosine(ours(pts), result)
    assert (cos > 0.999).mean() >= 0.999
    mine = _MEAN_SECONDS.get(f"test_ours[{case}]")
    if mine is not None and benchmark.stats is not None:
        benchmark.extra_info["speedup_of_ours"] = benchmark.stats.stats.mean / mine
