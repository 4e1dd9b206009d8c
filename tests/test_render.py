import numpy as np
import pytest
import torch

from iaenet.ops.render import (
    SENSOR_CAMERA,
    PinholeCamera,
    render_organized,
    render_pinhole,
    render_reference,
)


def _cloud(rng, n):
    pts = rng.random((n, 3), dtype=np.float32)
    nrm = rng.normal(size=(n, 3)).astype(np.float32)
    return pts, nrm


@pytest.mark.parametrize("n,radius,splat", [(1, 0, "square"), (300, 0, "square"), (5000, 2, "square"),
                                            (5000, 3, "disc"), (20000, 1, "disc")])
def test_pinhole_matches_reference(rng, n, radius, splat):
    pts, nrm = _cloud(rng, n)
    cam = PinholeCamera.fit(pts)
    img, pix = render_pinhole(pts, nrm, cam, radius=radius, splat=splat)
    ref_img, ref_pix = render_reference(pts, nrm, cam.as_vector(), None, None, (224, 224), radius, splat)
    np.testing.assert_allclose(img, ref_img, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(pix, ref_pix)


@pytest.mark.parametrize("grid,size,radius", [((224, 224), (224, 224), 0), ((400, 400), (224, 224), 1),
                                              ((100, 100), (224, 160), 2)])
def test_organized_matches_reference(rng, grid, size, radius):
    n = grid[0] * grid[1] // 3
    gi = rng.choice(grid[0] * grid[1], n, replace=False)
    pts, nrm = _cloud(rng, n)
    pts[:, 2] += 0.5
    img, pix = render_organized(pts, nrm, gi, grid, size, radius=radius)
    ref_img, ref_pix = render_reference(pts, nrm, SENSOR_CAMERA, gi, grid, size, radius, "square")
    np.testing.assert_allclose(img, ref_img, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(pix, ref_pix)
    assert (pix >= 0).all()


def test_z_buffer_winners_equal_reference():
    # many exact depth ties: the lower index must win everywhere, in the kernel and the reference alike
    rng = np.random.default_rng(5)
    pts = np.round(rng.random((4000, 3)) * 4).astype(np.float32) / 4
    pts[:, 2] += 1
    nrm = rng.normal(size=(4000, 3)).astype(np.float32)
    cam = PinholeCamera.fit(pts, rotation=np.eye(3))
    img, pix = render_pinhole(pts, nrm, cam, radius=3)
    ref_img, ref_pix = render_reference(pts, nrm, cam.as_vector(), None, None, (224, 224), 3, "square")
    np.testing.assert_array_equal(img, ref_img)
    np.testing.assert_array_equal(pix, ref_pix)


def test_pixel_is_where_the_point_is_drawn(rng):
    # a point's centre pixel holds its own shade unless a nearer point covers it
    pts, nrm = _cloud(rng, 3000)
    cam = PinholeCamera.fit(pts)
    img, pix = render_pinhole(pts, nrm, cam, radius=1)
    solo = np.array([render_pinhole(pts[i:i + 1], nrm[i:i + 1], cam, radius=0)[0][tuple(pix[i])] for i in range(50)])
    own = img[pix[:50, 0], pix[:50, 1]]
    depth = (cam.extrinsic[:3, :3] @ pts.T.astype(np.float64) + cam.extrinsic[:3, 3:]).T[:, 2]
    for i in range(50):
        if own[i] != solo[i]:  # occluded: some nearer point must cover that pixel
            r, c = pix[i]
            covering = (np.abs(pix[:, 0] - r) <= 1) & (np.abs(pix[:, 1] - c) <= 1)
            assert (depth[covering] < depth[i]).any()
    assert (own == solo).mean() > 0.3


def test_nearest_wins_and_background_white():
    pts = np.array([[0, 0, 2.0], [0, 0, 1.0], [0.5, 0.5, 1.0]], np.float32)
    nrm = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 1]], np.float32)  # point 1 is seen edge-on
    cam = PinholeCamera(np.array([[100, 0, 50], [0, 100, 50], [0, 0, 1.0]]), np.eye(4))
    img, pix = render_pinhole(pts, nrm, cam, image_size=(101, 101), radius=0)
    assert tuple(pix[0]) == tuple(pix[1]) == (50, 50)
    assert img[50, 50] == pytest.approx(0.35)  # the nearer, grazing point 1
    assert tuple(pix[2]) == (100, 100) and img[100, 100] == pytest.approx(0.5 * (0.7 + 1.06 * (1 / np.sqrt(1.5))))
    assert (img == 1.0).sum() == 101 * 101 - 2


def test_camera_fit_matches_open3d_default_view():
    pts = np.array([[0, 0, 0], [1, 1, 1]], np.float32)
    cam = PinholeCamera.fit(pts)
    np.testing.assert_allclose(cam.intrinsic, [[193.9897, 0, 111.5], [0, 193.9897, 111.5], [0, 0, 1]], atol=1e-3)
    np.testing.assert_allclose(cam.extrinsic[:3, :3], np.diag([1, -1, -1]))
    np.testing.assert_allclose(cam.extrinsic[:3, 3], [-0.5, 0.5, 0.5 + 0.7 / np.tan(np.pi / 6)], atol=1e-6)


def test_behind_camera_and_offscreen_points_get_minus_one():
    pts = np.array([[0, 0, -1.0], [100, 0, 1.0], [0, 0, 1.0]], np.float32)
    cam = PinholeCamera(np.array([[10, 0, 5], [0, 10, 5], [0, 0, 1.0]]), np.eye(4))
    img, pix = render_pinhole(pts, np.ones_like(pts), cam, image_size=(11, 11))
    np.testing.assert_array_equal(pix, [[-1, -1], [-1, -1], [5, 5]])


def test_torch_grey_rgb_and_determinism(rng):
    pts, nrm = _cloud(rng, 2000)
    a, pa = render_pinhole(torch.from_numpy(pts), torch.from_numpy(nrm), channels=3)
    b, pb = render_pinhole(pts, nrm)
    assert isinstance(a, torch.Tensor) and a.shape == (224, 224, 3) and pa.dtype == torch.int32
    np.testing.assert_array_equal(a[..., 1].numpy(), b)
    np.testing.assert_array_equal(pa.numpy(), pb)
    np.testing.assert_array_equal(render_pinhole(pts, nrm)[0], b)


def test_real_scan(mvtec_tiny):
    import tifffile

    xyz = tifffile.imread(next((mvtec_tiny / "cable_gland" / "train" / "good" / "xyz").glob("*.tiff")))
    flat = xyz.reshape(-1, 3)
    gi = np.flatnonzero(np.all(flat != 0, axis=1))
    pts = np.ascontiguousarray(flat[gi])
    nrm = np.tile(np.float32([0, 0, 1]), (len(pts), 1))
    img, pix = render_organized(pts, nrm, gi, xyz.shape[:2])
    ref_img, ref_pix = render_reference(pts, nrm, SENSOR_CAMERA, gi, xyz.shape[:2], (224, 224), 1, "square")
    np.testing.assert_allclose(img, ref_img, atol=1e-6)
    np.testing.assert_array_equal(pix, ref_pix)
    fg = img[img < 1]
    assert 0.35 <= fg.min() and fg.max() <= 0.88


@pytest.mark.parametrize(
    "kwargs,err",
    [
        (dict(points=np.zeros((0, 3), np.float32)), ValueError),
        (dict(points=np.zeros((5, 2), np.float32)), ValueError),
        (dict(points=np.array([[0, 0, np.nan]] * 5, np.float32)), ValueError),
        (dict(normals=np.zeros((4, 3), np.float32)), ValueError),
        (dict(normals=np.full((5, 3), np.inf, np.float32)), ValueError),
        (dict(radius=-1), ValueError),
        (dict(radius=1.5), ValueError),
        (dict(splat="star"), ValueError),
        (dict(channels=2), ValueError),
        (dict(image_size=(0, 10)), ValueError),
        (dict(camera="open3d"), TypeError),
        (dict(points="abc"), TypeError),
    ],
)
def test_bad_input(kwargs, err):
    args = dict(points=np.ones((5, 3), np.float32), normals=np.ones((5, 3), np.float32))
    args.update(kwargs)
    with pytest.raises(err):
        render_pinhole(**args)


@pytest.mark.parametrize("call,err,match", [
    (lambda p: render_pinhole(p, p, image_size=(float("inf"), 10)), ValueError, "image_size: expected .* two ints"),
    (lambda p: render_pinhole(p, p, image_size=(223.9, 10)), ValueError, "image_size: expected .* two ints"),
    (lambda p: render_organized(p, p, [0, 1, 2], (3, 1), image_size=(8, np.nan)), ValueError, "image_size"),
    (lambda p: PinholeCamera.fit(p, zoom=float("inf")), ValueError, "zoom: must be finite and > 0"),
    (lambda p: PinholeCamera.fit(p, zoom=0), ValueError, "zoom: must be finite and > 0"),
    (lambda p: PinholeCamera.fit(p, fov_deg=float("nan")), ValueError, "fov_deg: must be finite and > 0"),
    (lambda p: PinholeCamera.fit(p, fov_deg=180), ValueError, r"fov_deg: must be in \(0, 180\)"),
    (lambda p: PinholeCamera.fit(p, fov_deg="60"), TypeError, "fov_deg: expected a number"),
])
def test_bad_sizes_and_camera_numbers(call, err, match):
    with pytest.raises(err, match=match):
        call(np.ones((3, 3), np.float32))


def test_bad_grid_and_camera():
    pts = np.ones((3, 3), np.float32)
    with pytest.raises(ValueError, match="grid_index"):
        render_organized(pts, pts, [0, 1, 100], (5, 5))
    with pytest.raises(TypeError, match="grid_index"):
        render_organized(pts, pts, [0.0, 1.0, 2.0], (5, 5))
    with pytest.raises(ValueError, match="intrinsic"):
        PinholeCamera(np.zeros((3, 3)), np.eye(4))
    with pytest.raises(ValueError, match="rotation"):
        PinholeCamera.fit(pts, rotation=np.ones((3, 3)))


@pytest.mark.cuda
def test_cuda_matches_cpu(rng):
    pts, nrm = _cloud(rng, 20000)
    for cam_kwargs in (dict(), dict(radius=3, splat="disc")):
        a, pa = render_pinhole(torch.from_numpy(pts).cuda(), torch.from_numpy(nrm).cuda(), **cam_kwargs)
        b, pb = render_pinhole(pts, nrm, **cam_kwargs)
        np.testing.assert_array_equal(a.cpu().numpy(), b)
        np.testing.assert_array_equal(pa.cpu().numpy(), pb)
    gi = rng.choice(224 * 224, 20000, replace=False)
    a, pa = render_organized(torch.from_numpy(pts).cuda(), torch.from_numpy(nrm).cuda(), torch.from_numpy(gi).cuda(),
                             (224, 224))
    b, pb = render_organized(pts, nrm, gi, (224, 224))
    np.testing.assert_array_equal(a.cpu().numpy(), b)
    np.testing.assert_array_equal(pa.cpu().numpy(), pb)


@pytest.mark.parametrize("size,radius,splat", [((224, 224), 1, "disc"), ((224, 224), 2, "disc"), ((64, 48), 4, "disc"),
                                               ((64, 48), 5, "square"), ((97, 131), 6, "disc"), ((3, 5), 4, "square"),
                                               ((1, 1), 2, "disc")])
def test_dense_splats_match_reference(rng, size, radius, splat):
    # dense clouds: the kernel draws them by centre keys + minimum filter (csrc/render/render_filter.h); every
    # distinct disc half width, images smaller than the splat, and a camera that leaves many centres off-image
    # (those within `radius` of the border still cover pixels inside it)
    pts, nrm = _cloud(rng, 6000)
    cam = PinholeCamera.fit(pts, size, zoom=0.45)
    img, pix = render_pinhole(pts, nrm, cam, size, radius=radius, splat=splat)
    ref_img, ref_pix = render_reference(pts, nrm, cam.as_vector(), None, None, size, radius, splat)
    np.testing.assert_array_equal(img, ref_img)
    np.testing.assert_array_equal(pix, ref_pix)
    assert (pix[:, 0] < 0).any()  # some centres are off the image


@pytest.mark.parametrize("n", [3, 40])
def test_sparse_and_dense_paths_agree(rng, n):
    # few points for the image: the kernel splats each point directly; the same points plus many far-away ones
    # behind the camera (not drawn) take the filter path; the images must be the same
    pts, nrm = _cloud(rng, n)
    cam = PinholeCamera.fit(pts, rotation=np.eye(3))
    sparse, _ = render_pinhole(pts, nrm, cam, radius=3, splat="disc")
    behind = np.tile(np.float32([0, 0, -100]), (30000, 1))
    dense, _ = render_pinhole(np.concatenate([pts, behind]), np.concatenate([nrm, np.ones_like(behind)]), cam, radius=3,
                              splat="disc")
    np.testing.assert_array_equal(sparse, dense)
    ref_img, _ = render_reference(pts, nrm, cam.as_vector(), None, None, (224, 224), 3, "disc")
    np.testing.assert_array_equal(sparse, ref_img)


@pytest.mark.parametrize("grid,size,n", [((16384, 16384), (224, 224), 20000), ((7, 13), (5, 3), 50),
                                         ((1, 1), (1, 1), 1), ((3, 16384), (2, 16384), 30000)])
def test_organized_index_arithmetic(rng, grid, size, n):
    # the kernel splits grid indices and maps cells to pixels by multiplications (render_math.h, RenderDivisor);
    # the reference divides. Indices up to the largest grid the wrapper accepts.
    gi = rng.choice(grid[0] * grid[1], n, replace=False)
    gi[0] = grid[0] * grid[1] - 1
    pts, nrm = _cloud(rng, n)
    pts[:, 2] += 0.5
    img, pix = render_organized(pts, nrm, gi, grid, size, radius=1)
    ref_img, ref_pix = render_reference(pts, nrm, SENSOR_CAMERA, gi, grid, size, 1, "square")
    np.testing.assert_array_equal(img, ref_img)
    np.testing.assert_array_equal(pix, ref_pix)


def test_many_points_parallel_path_matches_reference(rng):
    # > 2^20 points and a ~1 M pixel image: the kernel's OpenMP paths (atomic minimum, parallel filter and shading)
    n, size = (1 << 20) + 3, (1030, 1030)
    pts, nrm = _cloud(rng, n)
    cam = PinholeCamera.fit(pts, size)
    img, pix = render_pinhole(pts, nrm, cam, size, radius=1)
    ref_img, ref_pix = render_reference(pts, nrm, cam.as_vector(), None, None, size, 1, "square")
    np.testing.assert_array_equal(img, ref_img)
    np.testing.assert_array_equal(pix, ref_pix)


def test_kernel_reports_bad_values():
    pts = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"grid_index: value -2 at position 1 .*\[0, 25\)"):
        render_organized(pts, pts, [0, -2, 3, 100], (5, 5))
    with pytest.raises(ValueError, match=r"grid_index: value 100 at position 3"):
        render_organized(pts, pts, [0, 2, 3, 100], (5, 5))
    bad = pts.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"points: contains NaN or inf \(first at index \(2, 1\)\)"):
        render_organized(bad, pts, [0, 1, 2, 3], (5, 5))
    bad[2, 1] = -np.inf
    with pytest.raises(ValueError, match=r"normals: contains NaN or inf \(first at index \(2, 1\)\)"):
        render_pinhole(pts, bad)


def test_kernel_rejects_grids_beyond_its_index_arithmetic():
    from iaenet.ops._ext import ext

    pts = np.ones((2, 3), np.float32)
    args = dict(points=pts, normals=pts, grid_index=np.zeros(2, np.int64), camera=SENSOR_CAMERA, radius=1, disc=False,
                zbuf=np.empty((4, 4), np.int64), image=np.empty((4, 4), np.float32), pixels=np.empty((2, 2), np.int32))
    for grid_h, grid_w in [(1 << 16, 1 << 16), (1 << 28, 1)]:
        with pytest.raises(ValueError, match="too large"):
            ext().render(grid_h=grid_h, grid_w=grid_w, **args)


def test_camera_from_grid_places_points_where_the_organized_render_does():
    from iaenet.ops.render import PinholeCamera

    # a pinhole sensor grid: pixel (r, c) sees the point at depth z on the ray through it
    h = w = 64
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float64)
    z = 0.5 + 0.01 * np.sin(rr / 7)
    f, c0 = 120.0, 31.5
    grid = np.stack([(cc - c0) / f * z, (rr - c0) / f * z, z], -1).astype(np.float32)
    index = np.arange(h * w)
    points = grid.reshape(-1, 3)
    for size in ((64, 64), (128, 128)):
        camera = PinholeCamera.from_grid(points, index, (h, w), size)
        _, pixels = render_organized(points, np.tile([0, 0, -1.0], (len(points), 1)).astype(np.float32), index,
                                     (h, w), size, radius=0)
        projected = camera.project(points, size)
        assert np.abs(projected.astype(int) - pixels).max() <= 1
        assert (projected == pixels).all(axis=1).mean() > 0.95
    # turning about a point on the optical axis by 0 degrees changes nothing; a turn moves the picture
    centre = points.mean(axis=0)
    assert np.array_equal(camera.rotated_about(centre, np.eye(3)).project(points, size), projected)
    turn = np.array([[1, 0, 0], [0, np.cos(0.2), -np.sin(0.2)], [0, np.sin(0.2), np.cos(0.2)]])
    assert not np.array_equal(camera.rotated_about(centre, turn).project(points, size), projected)
    behind = camera.project(np.array([[0, 0, -1.0]], np.float32), size)
    assert behind.tolist() == [[-1, -1]]
    with pytest.raises(ValueError, match="in front"):
        PinholeCamera.from_grid(points * -1, index, (h, w))
