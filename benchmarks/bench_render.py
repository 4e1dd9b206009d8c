"""Rendering one 224x224 view: our kernel vs Open3D's headless Visualizer (what CPMF uses) and the numpy reference.

Run: PYTHONPATH=$PWD python -m pytest -p no:dash benchmarks/bench_render.py --benchmark-columns=min,mean,median,rounds
(--benchmark-json=FILE writes extra_info speedup_vs_open3d for our cases: Open3D median / ours, same run).
The cloud is a real cable_gland scan (full resolution, background plane removed by a depth cut) when
../shared/data is present, else a synthetic bumpy surface of the same size; normals come from the organized grid
by cross products (the rendering cost does not depend on how they were estimated).
Open3D's Visualizer needs an EGL/GL context; where none can be made, its case skips with the reason.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iaenet.ops._ext import ext
from iaenet.ops.render import SENSOR_CAMERA, PinholeCamera, render_organized, render_pinhole, render_reference

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "mvtec3d_dev" / "cable_gland" / "train" / "good"


@pytest.fixture(scope="module")
def cloud():
    """points (N,3), normals (N,3), flat grid index (N,), grid shape: a sensor-frame organized scan."""
    xyz = _scan()
    gy, gx = np.gradient(xyz, axis=(0, 1))
    nrm = np.cross(gx, gy)
    flat = xyz.reshape(-1, 3)
    valid = np.all(flat != 0, axis=1)
    valid &= flat[:, 2] < np.median(flat[valid, 2]) - 0.002  # nearer than the support plane: the object
    gi = np.flatnonzero(valid)
    return flat[gi].astype(np.float32), nrm.reshape(-1, 3)[gi].astype(np.float32), gi, xyz.shape[:2]


def _scan() -> np.ndarray:
    tiffs = sorted((DEV / "xyz").glob("*.tiff")) if DEV.exists() else []
    if tiffs:
        import tifffile

        return tifffile.imread(tiffs[0]).astype(np.float32)
    yy, xx = np.mgrid[0:400, 0:400].astype(np.float32) / 400 - 0.5
    z = 0.5 - 0.05 * np.exp(-(xx ** 2 + yy ** 2) / 0.05) + 0.002 * np.sin(40 * xx)
    return np.stack([xx * 0.1, yy * 0.1, z], -1).astype(np.float32)


def test_ours_pinhole(benchmark, cloud):
    pts, nrm, _, _ = cloud
    cam = PinholeCamera.fit(pts, rotation=np.eye(3))
    img, _ = benchmark(render_pinhole, pts, nrm, cam)
    assert (img < 1).mean() > 0.05
    _OURS.append(benchmark)


def test_ours_organized(benchmark, cloud):
    pts, nrm, gi, shape = cloud
    img, _ = benchmark(render_organized, pts, nrm, gi, shape)
    assert (img < 1).mean() > 0.05
    _OURS.append(benchmark)


def test_ours_organized_kernel_only(benchmark, cloud):
    """The extension call alone, outputs preallocated: test_ours_organized minus this is the Python wrapper's cost."""
    pts, nrm, gi, shape = cloud
    zbuf, image = np.empty((224, 224), np.int64), np.empty((224, 224), np.float32)
    pixels = np.empty((len(pts), 2), np.int32)
    benchmark(ext().render, pts, nrm, gi, SENSOR_CAMERA, shape[0], shape[1], 1, False, zbuf, image, pixels)
    np.testing.assert_array_equal(image, render_organized(pts, nrm, gi, shape)[0])


def test_numpy_reference(benchmark, cloud):
    pts, nrm, _, _ = cloud
    cam = PinholeCamera.fit(pts, rotation=np.eye(3))
    img, _ = benchmark.pedantic(render_reference, (pts, nrm, cam.as_vector(), None, None, (224, 224), 2, "square"),
                                rounds=3, iterations=1)
    np.testing.assert_array_equal(img, render_pinhole(pts, nrm, cam)[0])


def test_open3d_visualizer(benchmark, cloud):
    """CPMF's renderer: legacy Visualizer (invisible window, EGL offscreen), grey points, Open3D's default view."""
    o3d = pytest.importorskip("open3d")
    pts, nrm, _, _ = cloud
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64) * [1, -1, -1]))
    pcd.normals = o3d.utility.Vector3dVector(nrm.astype(np.float64) * [1, -1, -1])
    pcd.paint_uniform_color((0.5, 0.5, 0.5))
    vis = o3d.visualization.Visualizer()
    if not vis.create_window(width=224, height=224, visible=False):
        pytest.skip("Open3D could not create an offscreen window (no EGL/GL) on this machine")
    try:
        vis.add_geometry(pcd)

        def view():  # CPMF adds the cloud, updates and captures once per view
            vis.update_geometry(pcd)
            return np.asarray(vis.capture_screen_float_buffer(do_render=True))

        img = benchmark(view)
    finally:
        vis.destroy_window()
    assert img.shape == (224, 224, 3) and (img[..., 0] < 1).mean() > 0.05
    _report_speedups(_median(benchmark))


_OURS = []  # our timed cases, given extra_info speedup_vs_open3d by test_open3d_visualizer, which runs last


def _median(benchmark) -> float | None:
    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    return stats.stats.median if stats is not None else None


def _report_speedups(open3d_median: float | None) -> None:
    """extra_info 'speedup_vs_open3d' of our cases: Open3D's median time per view / ours, both from this run
    (pytest-benchmark writes extra_info at the end of the session, so setting it after our cases ran counts)."""
    for ours in _OURS:
        if open3d_median and _median(ours):
            ours.extra_info["speedup_vs_open3d"] = round(open3d_median / _median(ours), 1)
