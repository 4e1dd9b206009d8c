"""Every SIMD variant of the CPU kernels gives the same bits: the AVX2 and portable variants, which an AVX-512
machine would never pick, run here under a lowered limit and are compared with the default variant."""
import numpy as np
import pytest

from iaenet.ops import (BankProjection, PinholeCamera, estimate_normals, fpfh, iaf_forward, knn, render_organized,
                        render_pinhole, restricted_knn)
from iaenet.ops._ext import cpu_isa_limit, ext

LIMITS = ["avx2", "portable"]


def surface(rng, n_side=60):
    """An organized bumpy surface in front of the camera: points (N,3), grid index (N,), grid shape."""
    yy, xx = np.mgrid[0:n_side, 0:n_side].astype(np.float32) / n_side - 0.5
    z = 0.4 + 0.03 * np.exp(-(xx ** 2 + yy ** 2) / 0.02) + 0.002 * rng.standard_normal(xx.shape)
    grid = np.stack([xx * 0.1, yy * 0.1, z], -1).reshape(-1, 3).astype(np.float32)
    keep = np.flatnonzero(rng.random(len(grid)) > 0.1)  # holes, as real scans have
    return grid[keep], keep, (n_side, n_side)


def assert_same(a, b):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x.view(np.uint8), y.view(np.uint8))  # bits, NaN and -0 included


def under_each_limit(function):
    """function() at the default variant, then under each lowered limit; all results bit-identical."""
    want = function()
    for limit in LIMITS:
        with cpu_isa_limit(limit):
            assert ext().cpu_isa() in (limit, "portable")
            assert_same(function(), want)
    return want


def test_limit_applies_and_restores():
    before = ext().cpu_isa()
    with cpu_isa_limit("portable"):
        assert ext().cpu_isa() == "portable"
    assert ext().cpu_isa() == before
    with pytest.raises(ValueError, match="expected 'portable', 'avx2' or 'avx512'"):
        ext().set_cpu_isa_limit("sse4")


@pytest.mark.parametrize("side", [60, 160], ids=["sparse-direct-splats", "dense-min-filter"])
@pytest.mark.parametrize("radius, splat", [(0, "square"), (1, "square"), (2, "disc"), (3, "square")])
def test_render_variants(rng, side, radius, splat):
    # 60 x 60 points on a 224 x 224 view take the direct per-point splats, 160 x 160 the centre + minimum filter.
    points, grid, shape = surface(rng, side)
    normals = estimate_normals(points, k=12)
    under_each_limit(lambda: render_organized(points, normals, grid, shape, radius=radius, splat=splat))
    camera = PinholeCamera.fit(points, rotation=np.eye(3))
    under_each_limit(lambda: render_pinhole(points, normals, camera, radius=radius, splat=splat))


def test_render_error_checks_in_every_variant(rng):
    points, grid, shape = surface(rng)
    normals = estimate_normals(points, k=12)
    bad = normals.copy()
    bad[17, 1] = np.nan
    for limit in ["avx512", *LIMITS]:
        with cpu_isa_limit(limit), pytest.raises(ValueError, match=r"normals: contains NaN or inf \(first at index \(17, 1\)\)"):
            render_organized(points, bad, grid, shape)


def test_knn_normals_fpfh_variants(rng):
    points, _, _ = surface(rng)
    under_each_limit(lambda: knn(points, k=16))
    under_each_limit(lambda: estimate_normals(points, k=20))
    under_each_limit(lambda: fpfh(points, k=40))


def test_retrieval_variants(rng):
    basis = rng.standard_normal((5, 41))
    rows_all = rng.standard_normal((700, 5)) @ basis + 0.05 * rng.standard_normal((700, 41))
    bank, queries = rows_all[:650].astype(np.float32), rows_all[650:].astype(np.float32)
    counts = rng.integers(5, 40, 80)
    rows = np.concatenate([np.sort(rng.choice(650, c, replace=False)) for c in counts]).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    patches = rng.integers(0, 80, 30)
    projection = BankProjection.fit(bank, 8)
    dense = under_each_limit(lambda: restricted_knn(bank, indptr, rows, patches, queries, 5))
    assert_same(under_each_limit(lambda: restricted_knn(bank, indptr, rows, patches, queries, 5,
                                                        projection=projection)), dense)


@pytest.mark.parametrize("widths", [[2, 64, 64, 64, 2], [2, 7, 30, 2]], ids=["paper", "odd-widths"])
def test_iaf_variants(rng, widths):
    # 3001 points: the blocked, locality-ordered path with a partial last block.
    def net():
        return [(rng.uniform(-0.7, 0.7, (o, i)).astype(np.float32), rng.uniform(-0.7, 0.7, o).astype(np.float32))
                for i, o in zip(widths[:-1], widths[1:])]

    selector, predictor = net(), net()
    scores = rng.uniform(0, 3, (3001, 2)).astype(np.float32)
    under_each_limit(lambda: iaf_forward(scores, selector, predictor, return_weights=True))
