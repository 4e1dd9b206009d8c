import numpy as np
import pytest
import torch

from iaenet.memory import (DualMemoryBank, MemoryConfig, cell_scores_reference, flat_pixel_index, scored_cells,
                           widened_cells)

SIZE, G = 224, 28


def synthetic_scan(rng, n_points=1500, patches=12, points_per_patch=120, latent_dim=16, feature_dim=24,
                   centre=(112, 112), half=40):
    """A blob of points on the 224 grid, spatially coherent patches (nearest pixels to random centres),
    random latents and cell features: the shapes the experts hand over."""
    rows = rng.integers(centre[0] - half, centre[0] + half, n_points)
    cols = rng.integers(centre[1] - half, centre[1] + half, n_points)
    pixel_index = np.unique(rows * SIZE + cols)
    rng.shuffle(pixel_index)
    rc = np.stack([pixel_index // SIZE, pixel_index % SIZE], 1).astype(np.float64)
    centres = rc[rng.choice(len(rc), patches, replace=False)]
    dist = ((rc[None] - centres[:, None]) ** 2).sum(-1)
    patch_idx = np.argsort(dist, axis=1, kind="stable")[:, :points_per_patch]
    latents = rng.standard_normal((patches, latent_dim)).astype(np.float32)
    cell_features = rng.standard_normal((G * G, feature_dim)).astype(np.float32)
    return latents, patch_idx, pixel_index, cell_features


def cells_of(pixels: np.ndarray) -> set[tuple[int, int]]:
    return {(int(p) // SIZE // 8, int(p) % SIZE // 8) for p in pixels if p >= 0}


def square(cells: set[tuple[int, int]], w: int) -> set[int]:
    """The widened set written out by hand: every cell within +-w rows and columns, inside the grid."""
    out = set()
    for r, c in cells:
        for dr in range(-w, w + 1):
            for dc in range(-w, w + 1):
                if 0 <= r + dr < G and 0 <= c + dc < G:
                    out.add((r + dr) * G + c + dc)
    return out


@pytest.fixture
def bank_and_scans(rng):
    scans = [synthetic_scan(rng) for _ in range(3)]
    bank = DualMemoryBank()
    for i, scan in enumerate(scans):
        bank.add_scan(*scan, name=f"train{i}")
    return bank, scans


def test_widened_cells_at_the_grid_edges():
    # One patch per corner/edge case: (0,0), (223,223), the last column of row 5 (no wrap into row 6's first
    # columns, unlike the reference's flat +-2 shift) and an undrawn point (-1) that reaches no cell.
    pixel_index = np.array([0, 223 * SIZE + 223, 5 * 8 * SIZE + 27 * 8 + 3, -1, 100 * SIZE + 17])
    patch_idx = np.array([[0, 0], [1, 1], [2, 3], [4, 3]])
    got = widened_cells(patch_idx, pixel_index, MemoryConfig()).numpy()
    for p, members in enumerate(patch_idx):
        assert set(np.flatnonzero(got[p])) == square(cells_of(pixel_index[members]), 2)
    assert got[0].sum() == 9 and got[1].sum() == 9 and got[2].sum() == 15
    assert not got[2].reshape(G, G)[6:8, 0:2].any()
    no_widening = widened_cells(patch_idx, pixel_index, MemoryConfig(widen=0)).numpy()
    assert [int(x) for x in no_widening.sum(1)] == [1, 1, 1, 1]


def test_csr_map_holds_exactly_the_widened_cells(bank_and_scans):
    bank, scans = bank_and_scans
    indptr, rows = bank.indptr.numpy(), bank.rows.numpy()
    m2d_cell, m2d_scan, patch_scan = bank.m2d_cell.numpy(), bank.m2d_scan.numpy(), bank.patch_scan.numpy()
    assert indptr[0] == 0 and indptr[-1] == len(rows) and len(indptr) == bank.num_patches + 1
    patch = 0
    for s, (latents, patch_idx, pixel_index, features) in enumerate(scans):
        retained = set()
        for members in patch_idx:
            mine = rows[indptr[patch]:indptr[patch + 1]]
            assert (np.diff(mine) > 0).all() and (m2d_scan[mine] == s).all() and patch_scan[patch] == s
            want = square(cells_of(pixel_index[members]), 2)
            assert set(m2d_cell[mine].tolist()) == want
            retained |= want
            patch += 1
        # M2D holds each retained cell of the scan once, with the scan's own features.
        in_scan = np.flatnonzero(m2d_scan == s)
        assert sorted(m2d_cell[in_scan].tolist()) == sorted(retained)
        np.testing.assert_array_equal(bank.m2d.numpy()[in_scan], features[m2d_cell[in_scan]])
    np.testing.assert_array_equal(bank.m3d.numpy(), np.concatenate([s[0] for s in scans]))


def test_a_training_scan_scores_zero_and_a_perturbed_cell_scores_higher(bank_and_scans, rng):
    bank, scans = bank_and_scans
    latents, patch_idx, pixel_index, features = scans[1]
    same = bank.score(latents, patch_idx, pixel_index, features)
    assert np.abs(same.cell_scores).max() < 1e-5 and same.object_score < 1e-5
    hit = int(same.scored_cells[len(same.scored_cells) // 2])
    changed = features.copy()
    changed[hit] += rng.standard_normal(features.shape[1]).astype(np.float32)
    res = bank.score(latents, patch_idx, pixel_index, changed)
    flat = res.cell_scores.reshape(-1)
    assert flat[hit] > 0.5 and np.delete(flat, hit).max() < 1e-5
    # The bilinear map peaks at the perturbed cell: points in it score most.
    in_cell = (pixel_index // SIZE // 8) * G + pixel_index % SIZE // 8 == hit
    if in_cell.any():
        assert res.point_scores[in_cell].max() == pytest.approx(res.object_score)


def test_matches_the_reference_style_scoring(bank_and_scans, rng):
    bank, _ = bank_and_scans
    latents, patch_idx, pixel_index, features = synthetic_scan(rng)
    neighbours = bank.neighbours(latents).numpy()
    res = bank.score(latents, patch_idx, pixel_index, features, neighbours=neighbours)
    without_latents = bank.score(None, patch_idx, pixel_index, features, neighbours=neighbours)
    np.testing.assert_array_equal(without_latents.cell_scores, res.cell_scores)
    want = cell_scores_reference(bank, neighbours, patch_idx, pixel_index, features)
    np.testing.assert_allclose(res.cell_scores.reshape(-1), want, rtol=1e-4, atol=1e-5)
    # faiss finds the same M3D neighbours as an exact torch search.
    exact = torch.cdist(torch.from_numpy(latents), bank.m3d).topk(10, largest=False).indices.numpy()
    np.testing.assert_array_equal(np.sort(neighbours, 1), np.sort(exact, 1))


def test_m3d_neighbours_break_ties_towards_the_lower_row(rng):
    # The same scan added twice: every latent has two copies at distance 0, rows i and i + 12.
    scan = synthetic_scan(rng)
    bank = DualMemoryBank(MemoryConfig(k_patches=3))
    bank.add_scan(*scan)
    bank.add_scan(*scan)
    found = bank.neighbours(scan[0]).numpy()
    np.testing.assert_array_equal(found[:, :2], np.stack([np.arange(12), np.arange(12) + 12], 1))
    assert found[0, 2] not in (0, 12)


def test_scored_cells_are_the_union_of_the_widened_cells(rng):
    _, patch_idx, pixel_index, _ = synthetic_scan(rng, centre=(25, 198), half=24)  # clipped at two grid edges
    pixel_index[::7] = -1  # points without a pixel reach no cell
    for widen in (0, 2):
        cfg = MemoryConfig(widen=widen)
        want = np.flatnonzero(widened_cells(patch_idx, pixel_index, cfg).any(dim=0).numpy())
        np.testing.assert_array_equal(scored_cells(patch_idx, pixel_index, cfg).numpy(), want)


def test_points_read_the_bilinear_map(bank_and_scans, rng):
    bank, _ = bank_and_scans
    latents, patch_idx, pixel_index, features = synthetic_scan(rng)
    res = bank.score(latents, patch_idx, pixel_index, features)
    up = torch.nn.functional.interpolate(torch.from_numpy(res.cell_scores)[None, None], size=(SIZE, SIZE),
                                         mode="bilinear", align_corners=False).flatten().numpy()
    # Evaluated at the pixels in numpy: equal to torch's upsampling up to float32 rounding (its kernel groups the
    # four products differently).
    np.testing.assert_allclose(res.point_scores, up[pixel_index], rtol=1e-6, atol=1e-7)
    assert res.object_score == pytest.approx(res.point_scores.max())
    scored = np.zeros(G * G, bool)
    scored[res.scored_cells] = True
    assert (res.cell_scores.reshape(-1)[~scored] == 0).all()
    assert set(res.scored_cells.tolist()) == set(np.flatnonzero(widened_cells(patch_idx, pixel_index,
                                                                             MemoryConfig()).any(0).numpy()))


def test_torch_inputs_give_torch_outputs_and_scoring_is_deterministic(bank_and_scans, rng):
    bank, _ = bank_and_scans
    scan = synthetic_scan(rng)
    a = bank.score(*scan)
    b = bank.score(*(torch.from_numpy(np.asarray(x)) for x in scan))
    assert isinstance(b.point_scores, torch.Tensor)
    for field in ("point_scores", "cell_scores", "scored_cells", "neighbours", "cell_neighbours"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field).numpy())
    assert a.object_score == b.object_score == bank.score(*scan).object_score


def test_save_load_round_trip(bank_and_scans, rng, tmp_path):
    bank, _ = bank_and_scans
    path = tmp_path / "bank.safetensors"
    bank.save(path)
    loaded = DualMemoryBank.load(path)
    assert loaded.config == bank.config and loaded.names == ["train0", "train1", "train2"]
    for key in ("m3d", "m2d", "indptr", "rows", "patch_scan", "m2d_scan", "m2d_cell"):
        assert torch.equal(getattr(loaded, key), getattr(bank, key)), key
    scan = synthetic_scan(rng)
    np.testing.assert_array_equal(loaded.score(*scan).point_scores, bank.score(*scan).point_scores)
    assert loaded.nbytes == bank.nbytes


def test_float16_storage_halves_the_features(rng, tmp_path):
    scans = [synthetic_scan(rng) for _ in range(2)]
    full, half = DualMemoryBank(), DualMemoryBank(MemoryConfig(storage_dtype="float16"))
    for scan in scans:
        full.add_scan(*scan)
        half.add_scan(*scan)
    a, b = full.summary(), half.summary()
    assert b["m2d_bytes"] * 2 == a["m2d_bytes"] and b["m3d_bytes"] * 2 == a["m3d_bytes"]
    assert half.m2d.dtype == torch.float16 and half.nbytes < full.nbytes
    assert a["per_scan_bytes"] == a["m3d_bytes"] / 2 + a["m2d_bytes"] / 2 + (a["csr_bytes"] + a["provenance_bytes"]) / 2
    half.save(tmp_path / "half.safetensors")
    loaded = DualMemoryBank.load(tmp_path / "half.safetensors")
    assert loaded.m2d.dtype == torch.float16
    # Scoring a float16 bank is scoring a float32 bank of the float16-rounded features, exactly.
    rounded = DualMemoryBank()
    for lat, idx, pix, feat in scans:
        rounded.add_scan(lat.astype(np.float16).astype(np.float32), idx, pix,
                         feat.astype(np.float16).astype(np.float32))
    test = synthetic_scan(rng)
    np.testing.assert_array_equal(loaded.score(*test).cell_scores, rounded.score(*test).cell_scores)


def test_load_rejects_missing_corrupt_and_foreign_files(bank_and_scans, tmp_path):
    bank, _ = bank_and_scans
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        DualMemoryBank.load(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="junk.safetensors"):
        DualMemoryBank.load(junk)
    from iaenet.tensor_files import save_tensors

    foreign = tmp_path / "foreign.safetensors"
    save_tensors(foreign, {"x": torch.zeros(2)}, "iaenet.expert3d", {})
    with pytest.raises(ValueError, match="expected 'iaenet.dual_memory_bank'"):
        DualMemoryBank.load(foreign)
    broken = tmp_path / "broken.safetensors"
    tensors = {k: getattr(bank, k).clone() for k in ("m3d", "m2d", "indptr", "rows", "patch_scan", "m2d_scan",
                                                      "m2d_cell")}
    tensors["rows"][0] = len(tensors["m2d"]) + 5
    save_tensors(broken, tensors, "iaenet.dual_memory_bank",
                 {"config": vars(bank.config) | {}, "names": bank.names})
    with pytest.raises(ValueError, match="rows index outside M2D"):
        DualMemoryBank.load(broken)


def test_empty_and_tiny_banks_and_scans(rng, tmp_path):
    bank = DualMemoryBank()
    scan = synthetic_scan(rng)
    with pytest.raises(ValueError, match="empty"):
        bank.score(*scan)
    with pytest.raises(ValueError, match="empty"):
        bank.save(tmp_path / "b.safetensors")
    with pytest.raises(ValueError, match="empty"):
        bank.summary()
    tiny = synthetic_scan(rng, patches=3)
    bank.add_scan(*tiny)
    with pytest.raises(ValueError, match="k_patches: 10 neighbours asked from a bank of 3 patches"):
        bank.score(*scan)
    # One-point patches with no widening: 2 M2D rows in all, fewer than k_cells = 5 candidates.
    small = DualMemoryBank(MemoryConfig(widen=0, k_patches=2))
    pix = np.array([0, 50 * SIZE + 50])
    small.add_scan(np.eye(2, 4, dtype=np.float32), np.array([[0], [1]]), pix, np.ones((G * G, 3), np.float32))
    with pytest.raises(ValueError, match="fewer than k = 5"):
        small.score(np.eye(2, 4, dtype=np.float32), np.array([[0], [1]]), pix, np.ones((G * G, 3), np.float32))


def _bad_add_cases(rng):
    lat, idx, pix, feat = synthetic_scan(rng)
    nan_lat = lat.copy()
    nan_lat[0, 0] = np.nan
    nan_feat = feat.copy()
    nan_feat[5, 1] = np.inf
    return [
        ((nan_lat, idx, pix, feat), ValueError, "latents: contains NaN"),
        ((lat, idx, pix, nan_feat), ValueError, "cell_features: contains NaN"),
        ((lat[:0], idx[:0], pix, feat), ValueError, "latents: expected a non-empty"),
        ((lat, idx, pix[:0], feat), ValueError, "pixel_index: the scan has no points"),
        ((lat[:-1], idx, pix, feat), ValueError, "patch_idx: 12 patches but 11 latents"),
        ((lat, idx + len(pix), pix, feat), ValueError, "patch_idx: point indices must lie"),
        ((lat, idx, pix + SIZE * SIZE, feat), ValueError, "pixel_index: flat pixel ids must lie"),
        ((lat, idx.astype(np.float32), pix, feat), TypeError, "patch_idx: expected an integer"),
        ((lat, idx, pix, feat[:-1]), ValueError, "cell_features: expected 784 rows"),
        ((lat, idx, pix, "features"), TypeError, "cell_features: expected a numeric array"),
    ]


def test_bad_inputs(rng):
    bank = DualMemoryBank()
    for args, err, match in _bad_add_cases(rng):
        with pytest.raises(err, match=match):
            bank.add_scan(*args)
    assert bank.num_patches == 0  # nothing half-added
    lat, idx, pix, feat = synthetic_scan(rng)
    bank.add_scan(lat, idx, pix, feat)
    with pytest.raises(ValueError, match="differ from the bank"):
        bank.add_scan(lat[:, :8], idx, pix, feat)
    with pytest.raises(ValueError, match="neighbours: expected shape"):
        bank.score(lat, idx, pix, feat, neighbours=np.zeros((12, 3), np.int64))
    with pytest.raises(ValueError, match="neighbours: M3D rows must lie"):
        bank.score(lat, idx, pix, feat, neighbours=np.full((12, 10), 99))
    with pytest.raises(ValueError, match="latents: needed"):
        bank.score(None, idx, pix, feat)
    with pytest.raises(ValueError, match="latents: dimension 8"):
        bank.score(lat[:, :8], idx, pix, feat)
    with pytest.raises(ValueError, match="cell_features: dimension 20"):
        bank.score(lat, idx, pix, feat[:, :20])


@pytest.mark.parametrize("kwargs,match", [
    ({"cells": 27}, "must divide"), ({"widen": -1}, "widen"), ({"k_cells": 2}, "omp_atoms"),
    ({"storage_dtype": "int8"}, "storage_dtype"), ({"k_patches": 0}, "k_patches"), ({"prune_dims": -1}, "prune_dims"),
    ({"k_cells": 17}, "k_cells"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MemoryConfig(**kwargs)


def test_pruned_m2d_search_gives_the_dense_scores(rng):
    # Cell features near a low-dimensional subspace (like real CNN + FPFH features): the bank prunes its CPU M2D
    # search by projected bounds, and the scores equal those of the dense search bit for bit.
    mix = rng.standard_normal((4, 24))

    def structured(scan):
        latents, patch_idx, pixel_index, _ = scan
        features = rng.standard_normal((G * G, 4)) @ mix + 0.05 * rng.standard_normal((G * G, 24))
        return latents, patch_idx, pixel_index, features.astype(np.float32)

    scans = [structured(synthetic_scan(rng)) for _ in range(4)]
    banks = [DualMemoryBank(MemoryConfig(prune_dims=dims)) for dims in (6, 0)]
    for bank in banks:
        for scan in scans[:3]:
            bank.add_scan(*scan)
    assert banks[0]._projection() is not None and banks[1]._projection() is None
    pruned, dense = (bank.score(*scans[3]) for bank in banks)
    np.testing.assert_array_equal(pruned.cell_neighbours, dense.cell_neighbours)
    np.testing.assert_array_equal(pruned.point_scores, dense.point_scores)
    # Isotropic features: the axes explain little, so the bank keeps the dense search.
    isotropic = DualMemoryBank(MemoryConfig(prune_dims=6))
    isotropic.add_scan(*synthetic_scan(rng))
    assert isotropic._projection() is None


def test_empty_cells_are_neither_stored_nor_searched(rng):
    # The 2D expert gives cells without points all-zero features: the bank keeps only cells with features, and
    # an empty test cell scores 0 without a search.
    scans = [synthetic_scan(rng) for _ in range(3)]
    empty = np.arange(0, G * G, 3)
    for scan in scans:
        scan[3][empty] = 0
    bank = DualMemoryBank()
    for scan in scans[:2]:
        bank.add_scan(*scan)
    assert not np.isin(bank.m2d_cell.numpy(), empty).any()
    assert (bank.m2d.norm(dim=1) > 0).all()
    widened = np.flatnonzero(widened_cells(scans[0][1], scans[0][2], bank.config).any(dim=0).numpy())
    assert len(bank.m2d_cell[bank.m2d_scan == 0]) == len(np.setdiff1d(widened, empty))
    result = bank.score(*scans[2])
    assert not np.isin(result.scored_cells, empty).any()
    assert (result.cell_scores.reshape(-1)[empty] == 0).all()
    reference = cell_scores_reference(bank, bank.neighbours(scans[2][0]).numpy(), *scans[2][1:])
    np.testing.assert_allclose(result.cell_scores.reshape(-1), reference, rtol=1e-4, atol=1e-5)


def test_flat_pixel_index():
    pixels = np.array([[0, 0], [3, 5], [-1, -1], [223, 223]])
    np.testing.assert_array_equal(flat_pixel_index(pixels), [0, 3 * 224 + 5, -1, 223 * 224 + 223])
    np.testing.assert_array_equal(flat_pixel_index(torch.as_tensor(pixels), 256), [0, 3 * 256 + 5, -1, 223 * 256 + 223])
    with pytest.raises(ValueError, match="pixels: expected"):
        flat_pixel_index(np.zeros((4, 3), np.int64))
    with pytest.raises(TypeError, match="pixels"):
        flat_pixel_index(pixels.astype(np.float32))
