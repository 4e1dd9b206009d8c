import numpy as np
import pytest
import torch

import torch.nn.functional as F

import iaenet.ops
from iaenet.experts.expert2d import Expert2D, Expert2DConfig, Expert2DScorer, ScanCells, ScanView, _pooling_matrix
from iaenet.experts.pictures2d import save_feature_norm_png, save_rendering_png


@pytest.fixture(scope="module")
def expert():
    torch.set_num_threads(2)
    return Expert2D()


@pytest.fixture(scope="module")
def train_views(expert):
    views = []
    for s in range(3):
        grid, normals, fpfh = _scan(seed=s)
        views.append(expert.view(grid, normals=normals, fpfh=fpfh))
    return views, expert.cell_features(views)


def _scan(bump: float = 0.0, size: int = 96, seed: int = 0):
    """A dome on an empty background as an organized grid, its normals, and a smooth stand-in FPFH per point."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u, v = (xx - size / 2) / size, (yy - size / 2) / size
    r2 = u * u + v * v
    z = 0.3 - 0.05 * np.sqrt(np.maximum(0.16 - r2, 0)) - bump * np.exp(-((u - 0.1) ** 2 + v ** 2) / 0.002)
    grid = np.stack([u * 0.1, v * 0.1, z], -1).astype(np.float32)
    grid[r2 > 0.15] = 0
    gy, gx = np.gradient(grid, axis=(0, 1))
    normals = np.cross(gx, gy).astype(np.float32)
    valid = np.all(grid != 0, axis=-1).ravel()
    pts = grid.reshape(-1, 3)[valid]
    rng = np.random.default_rng(seed)
    fpfh = (np.abs(np.sin(pts[:, :1] * np.arange(1, 34) * 40)) * 100 + rng.random((len(pts), 33))).astype(np.float32)
    return grid, normals, fpfh


def test_shapes_and_parts(expert, train_views):
    _, _, fpfh = _scan()
    view, cells = train_views[0][0], train_views[1][0]
    assert view.image.shape == (224, 224, 3) and view.image.dtype == np.float32
    assert view.pixels.shape == (len(fpfh), 2) and (view.pixels >= 0).all()
    assert cells.features.shape == (28 * 28, 24 + 40 + 33) and expert.feature_dim == 97
    assert cells.features.dtype == np.float32 and cells.counts.sum() == len(fpfh)
    # the CNN part (both stages, normalised together) and the FPFH part
    norms = np.stack([np.linalg.norm(cells.features[:, a:b], axis=1) for a, b in [(0, 64), (64, 97)]])
    # averages of unit vectors (and of zeros where the pooling window leaves the object): at most 1
    assert (norms <= 1 + 1e-5).all() and (norms[:, cells.counts > 0] > 0).all()
    assert (cells.features[cells.counts == 0] == 0).all()


@pytest.mark.parametrize("normalisation", ["joint", "per_stage"])
def test_points_reach_cells_through_their_pixels(expert, train_views, normalisation):
    """Per-point features scattered to the image and pooled with torch's AvgPool2d(3, 1) + AdaptiveAvgPool2d(28)
    on the dense grid, as CPMF writes it, give the cell features (ours pools the points sparsely). CNN part: the
    stages' vectors normalised together ("joint", CPMF) or each stage on its own ("per_stage")."""
    _, _, fpfh = _scan()
    view = train_views[0][0]
    cells = Expert2D(Expert2DConfig(cnn_normalisation=normalisation), backbone=expert.backbone).cell_features([view])[0]
    cell_of_point = (view.pixels[:, 0] // 8) * 28 + view.pixels[:, 1] // 8
    np.testing.assert_array_equal(cells.counts, np.bincount(cell_of_point, minlength=784))
    image = torch.from_numpy(view.image).permute(2, 0, 1)[None]
    maps = [F.interpolate(m, size=(224, 224), mode="bilinear", align_corners=False)[0] for m in expert.backbone(image)]
    r, c = torch.from_numpy(view.pixels[:, 0].astype(np.int64)), torch.from_numpy(view.pixels[:, 1].astype(np.int64))
    stages = [m[:, r, c].T for m in maps]
    parts = ([torch.cat(stages, 1)] if normalisation == "joint" else stages) + [torch.from_numpy(fpfh)]
    grid = torch.zeros(97, 224, 224)
    grid[:, r, c] = torch.cat([F.normalize(p, dim=1) for p in parts], 1).T
    dense = F.adaptive_avg_pool2d(F.avg_pool2d(grid[None], 3, stride=1), 28)[0].reshape(97, -1).T.numpy()
    occupied = cells.counts > 0
    np.testing.assert_allclose(cells.features[occupied], dense[occupied], atol=1e-5)
    # the 96x96 grid is drawn at scaled pixels: grid cell (r, c) -> floor((r + 0.5) * 224 / 96)
    gi = view.grid_index
    np.testing.assert_array_equal(view.pixels[:, 0], ((2 * (gi // 96) + 1) * 224) // (2 * 96))


@pytest.mark.parametrize("size,cells", [(224, 28), (448, 28), (64, 8)])
def test_pooling_matrix_is_cpmfs_pooling(rng, size, cells):
    x = torch.from_numpy(rng.standard_normal((size, size)))
    a = torch.from_numpy(_pooling_matrix(size, cells).copy())
    want = F.adaptive_avg_pool2d(F.avg_pool2d(x[None, None], 3, stride=1), cells)[0, 0]
    torch.testing.assert_close(a @ x @ a.T, want)


def test_points_sharing_a_pixel_are_averaged(expert, train_views):
    view, cells = train_views[0][0], train_views[1][0]
    twice = ScanView(view.image, np.concatenate([view.pixels, view.pixels]), np.concatenate([view.grid_index] * 2),
                     np.concatenate([view.fpfh, view.fpfh]))
    doubled = expert.cell_features([twice])[0]
    np.testing.assert_allclose(doubled.features, cells.features, atol=1e-6)
    np.testing.assert_array_equal(doubled.counts, 2 * cells.counts)


@pytest.mark.parametrize("normalisation,cnn_parts", [("joint", [(0, 64)]), ("per_stage", [(0, 24), (24, 64)])])
def test_image_pooling_normalises_each_part_per_cell(expert, train_views, normalisation, cnn_parts):
    views = train_views[0]
    image_expert = Expert2D(Expert2DConfig(pooling="image", cnn_normalisation=normalisation), backbone=expert.backbone)
    cells = image_expert.cell_features(views[:1])[0]
    for a, b in cnn_parts:
        np.testing.assert_allclose(np.linalg.norm(cells.features[:, a:b], axis=1), 1, atol=1e-5)
    fpfh_norm = np.linalg.norm(cells.features[:, 64:], axis=1)
    np.testing.assert_allclose(fpfh_norm[cells.counts > 0], 1, atol=1e-5)
    assert (fpfh_norm[cells.counts == 0] == 0).all()
    cell_of_point = (views[0].pixels[:, 0] // 8) * 28 + views[0].pixels[:, 1] // 8
    c = int(np.argmax(cells.counts))
    mean = views[0].fpfh[cell_of_point == c].mean(0)
    np.testing.assert_allclose(cells.features[c, 64:], mean / np.linalg.norm(mean), rtol=1e-5)
    np.testing.assert_array_equal(cells.cnn_norm, train_views[1][0].cnn_norm)
    with pytest.raises(ValueError, match="pooling"):
        Expert2DConfig(pooling="cells")


def test_normalisation_rules_differ_only_in_the_cnn_part(expert, train_views):
    """With one stage map the two rules coincide; with two they change only the CNN columns (the exact rule is
    checked against the dense CPMF pooling above)."""
    view = train_views[0][0]
    one = [Expert2D(Expert2DConfig(stages=(4,), cnn_normalisation=n)).cell_features([view])[0].features
           for n in ("joint", "per_stage")]
    np.testing.assert_array_equal(one[0], one[1])
    joint, per_stage = (Expert2D(Expert2DConfig(cnn_normalisation=n), backbone=expert.backbone).cell_features([view])[0]
                        for n in ("joint", "per_stage"))
    np.testing.assert_array_equal(joint.features[:, 64:], per_stage.features[:, 64:])
    assert not np.allclose(joint.features[:, :64], per_stage.features[:, :64], atol=1e-3)
    with pytest.raises(ValueError, match="cnn_normalisation"):
        Expert2DConfig(cnn_normalisation="both")


def test_deterministic_and_batched_equals_single(expert, train_views):
    views, batched = train_views
    grid, normals, fpfh = _scan(seed=1)
    again = expert.view(grid, normals=normals, fpfh=fpfh)
    np.testing.assert_array_equal(again.image, views[1].image)
    np.testing.assert_array_equal(again.pixels, views[1].pixels)
    single = expert.cell_features([again])[0]
    np.testing.assert_allclose(single.features, batched[1].features, atol=1e-5)
    assert np.array_equal(expert.cell_features(views[:2])[1].features, batched[1].features)


def test_unorganized_cloud_and_rgb_input(expert):
    grid, normals, fpfh = _scan()
    valid = np.all(grid != 0, axis=-1).ravel()
    cloud, cloud_normals = grid.reshape(-1, 3)[valid], normals.reshape(-1, 3)[valid]
    view = expert.view(cloud, normals=cloud_normals, fpfh=fpfh)
    assert (view.pixels >= 0).all() and (view.image < 1).mean() > 0.1
    np.testing.assert_array_equal(view.grid_index, np.arange(len(cloud)))
    fitted = Expert2D(Expert2DConfig(camera="fitted", radius=2), backbone=expert.backbone)
    view = fitted.view(grid, normals=normals, fpfh=fpfh)
    cols = view.pixels[:, 1]
    assert (view.pixels >= 0).all() and 0.6 * 224 < cols.max() - cols.min() < 0.8 * 224  # Open3D's zoom 0.7
    rgb = np.zeros(grid.shape, np.uint8)
    rgb[..., 0] = 200
    rgb_expert = Expert2D(Expert2DConfig(image_source="rgb"), backbone=expert.backbone)
    view = rgb_expert.view(grid, rgb=rgb, normals=normals, fpfh=fpfh)
    np.testing.assert_allclose(view.image[..., 0], 200 / 255, atol=1e-5)
    assert (view.image[..., 1] == 0).all()
    with pytest.raises(ValueError, match="rgb"):
        rgb_expert.view(grid, normals=normals, fpfh=fpfh)
    with pytest.raises(ValueError, match="organized"):
        rgb_expert.view(cloud, rgb=rgb, normals=cloud_normals, fpfh=fpfh)


def test_scorer_finds_the_bump(expert, train_views):
    scorer = Expert2DScorer(expert).fit(train_views[1])
    good = scorer.score(train_views[1][:1])[0]
    assert good.object < 1e-3 and good.cells.shape == (28, 28)
    grid, normals, fpfh = _scan(bump=0.02, seed=0)
    bad_view = expert.view(grid, normals=normals, fpfh=fpfh)
    bad_cells = expert.cell_features([bad_view])
    bad = scorer.score(bad_cells)[0]
    assert bad.object > 10 * max(good.object, 1e-3)
    hot = bad.points > 0.5 * bad.object
    assert hot.any() and bad_view.pixels[hot, 1].mean() > 112  # the bump sits right of the centre
    np.testing.assert_array_equal(scorer.score(bad_cells)[0].points, bad.points)
    refit = Expert2DScorer(expert).fit(train_views[1])
    np.testing.assert_array_equal(refit.score(bad_cells)[0].cells, bad.cells)


def test_default_geometry_uses_iaenet_ops(expert):
    if not all(hasattr(iaenet.ops, name) for name in ("fpfh", "estimate_normals_grid", "estimate_normals")):
        pytest.skip("iaenet.ops.fpfh / estimate_normals_grid not merged into this branch yet")
    grid, _, _ = _scan()
    cells = expert.features([grid])[0]
    assert isinstance(cells, ScanCells) and np.isfinite(cells.features).all()


@pytest.mark.parametrize(
    "points,kwargs,match",
    [
        (np.zeros((8, 8, 3), np.float32), {}, "no valid point"),
        (np.full((8, 8, 3), np.nan, np.float32), {}, "NaN"),
        (np.ones((8, 8, 2), np.float32), {}, "points"),
        (np.ones((8, 8, 3), np.int32), {}, "points"),
        (np.ones((8, 8, 3), np.float32), dict(normals=np.ones((8, 7, 3)), fpfh=np.ones((64, 33))), "normals"),
        (np.ones((8, 8, 3), np.float32), dict(normals=np.ones((8, 8, 3)), fpfh=np.ones((64, 32))), "fpfh"),
        (np.ones((8, 8, 3), np.float32), dict(normals=np.ones((8, 8, 3)), fpfh=np.full((64, 33), np.inf)), "fpfh"),
    ],
)
def test_bad_input(expert, points, kwargs, match):
    with pytest.raises(ValueError, match=match):
        expert.view(points, **kwargs)


def test_bad_config_and_unfitted_scorer(expert):
    with pytest.raises(ValueError, match="image_source"):
        Expert2DConfig(image_source="depth")
    with pytest.raises(ValueError, match="cells"):
        Expert2DConfig(cells=30)
    with pytest.raises(ValueError, match="camera"):
        Expert2DConfig(camera="top")
    with pytest.raises(ValueError, match="camera"):
        Expert2DConfig(camera="fitted", image_source="rgb")
    with pytest.raises(RuntimeError, match="fit"):
        Expert2DScorer(expert).score([])
    with pytest.raises(ValueError, match="no training"):
        Expert2DScorer(expert).fit([])


def test_pictures(train_views, tmp_path):
    from PIL import Image

    view, cells = train_views[0][0], train_views[1][0]
    a = save_rendering_png(tmp_path / "view.png", view.image)
    b = save_feature_norm_png(tmp_path / "norm.png", cells)
    img = np.asarray(Image.open(a))
    assert img.shape == (224, 224, 3) and img.max() == 255 and img.min() >= 89  # background white, shades >= 0.35
    norm = np.asarray(Image.open(b))
    assert norm.shape == (224, 224) and norm.max() == 255
    with pytest.raises(FileNotFoundError, match="missing"):
        save_rendering_png(tmp_path / "missing" / "x.png", view.image)
    with pytest.raises(ValueError, match="image"):
        save_rendering_png(tmp_path / "x.png", np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="cells"):
        save_feature_norm_png(tmp_path / "x.png", np.ones(5))


def _full_and_working(size_full: int = 192, size: int = 96):
    """A dome drawn on a fine grid (the 'full resolution') and the working grid sampled from it with the
    preprocessing's nearest indices, like iaenet.prepare."""
    from iaenet.data.preprocess import resize_nearest_like

    grid, _, _ = _scan(size=size_full)
    return grid, resize_nearest_like(grid, size)


def test_full_resolution_rendering_keeps_the_working_points_pixels(expert):
    full, working = _full_and_working()
    cfg = Expert2DConfig(render_source="full", radius=1)
    view_full = Expert2D(cfg, backbone=expert.backbone).view(working, full=full)
    view_grid = expert.view(working)
    # the same working points at the same pixels; the picture comes from the fine grid's points and normals
    assert np.array_equal(view_full.pixels, view_grid.pixels)
    drawn = view_full.image[..., 0] < 1
    assert drawn.sum() == pytest.approx((view_grid.image[..., 0] < 1).sum(), rel=0.1)
    assert not np.array_equal(view_full.image, view_grid.image)
    with pytest.raises(ValueError, match="full-resolution"):
        Expert2D(cfg, backbone=expert.backbone).view(working)


@pytest.mark.parametrize("views", [3, 9])
def test_several_views_average_each_points_cnn_vector(expert, views):
    from iaenet.experts.expert2d import view_rotations

    rotations = view_rotations(views, 15.0)
    assert len(rotations) == views and np.allclose(rotations[0], np.eye(3))
    assert all(np.allclose(r @ r.T, np.eye(3)) for r in rotations)
    grid, normals, fpfh = _scan()
    multi = Expert2D(Expert2DConfig(views=views), backbone=expert.backbone)
    view = multi.view(grid, normals=normals, fpfh=fpfh)
    assert len(view.extra) == views - 1
    for image, pixels in view.extra:
        assert image.shape == (224, 224, 3) and pixels.shape == view.pixels.shape
        assert (pixels[:, 0] >= 0).mean() > 0.95  # the turned part stays in the frame
    one = expert.view(grid, normals=normals, fpfh=fpfh)
    cells_multi, cells_one = multi.cell_features([view])[0], expert.cell_features([one])[0]
    assert cells_multi.features.shape == cells_one.features.shape
    assert np.array_equal(cells_multi.counts, cells_one.counts)
    # the FPFH part is the same, the CNN part is the views' average
    assert np.allclose(cells_multi.features[:, 64:], cells_one.features[:, 64:], atol=1e-6)
    assert not np.allclose(cells_multi.features[:, :64], cells_one.features[:, :64], atol=1e-3)
    # a view set whose turned views are dropped again gives the one-view features exactly
    alone = ScanView(view.image, view.pixels, view.grid_index, view.fpfh)
    assert np.array_equal(multi.cell_features([alone])[0].features, cells_one.features)


def test_several_views_config_checks():
    with pytest.raises(ValueError, match="views"):
        Expert2DConfig(views=4)
    with pytest.raises(ValueError, match="several views"):
        Expert2DConfig(views=3, pooling="image")
    with pytest.raises(ValueError, match="render_source"):
        Expert2DConfig(render_source="mesh")
    with pytest.raises(ValueError, match="backbone"):
        Expert2DConfig(backbone="vgg")
