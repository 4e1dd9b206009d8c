"""3D expert: networks, training data, OMP reconstruction, fit/score, files, bad input (tiny preset, synthetic)."""
import warnings

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from sklearn.decomposition import sparse_encode

from iaenet.experts import PRESETS, Expert3D, Expert3DConfig, point_scores_to_grid
from iaenet.experts import expert3d
from iaenet.experts.expert3d import _min_over_patches
from iaenet.experts.sdf_data import draw_queries, neighbour_sigma, normalise_patches
from iaenet.experts.sdf_nets import SDFDecoder, SDFNetwork, neural_pull_loss
from iaenet.ops import omp_residuals

TINY = PRESETS["tiny"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Two shared cores: OpenMP spin-waiting across busy cores makes small ops ~100x slower than one thread.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def smooth_surface(rng, n=1500, bump=0.0):
    """A wavy height field over the unit square; `bump` adds a Gaussian bump of that height at the centre."""
    xy = rng.random((n, 2))
    z = 0.1 * np.sin(3 * xy[:, 0]) * np.cos(2 * xy[:, 1])
    z += bump * np.exp(-((xy[:, 0] - 0.5) ** 2 + (xy[:, 1] - 0.5) ** 2) / 0.003)
    return np.c_[xy, z].astype(np.float32)


@pytest.fixture(scope="module")
def train_clouds():
    rng = np.random.default_rng(0)
    return [smooth_surface(rng) for _ in range(4)]


@pytest.fixture(scope="module")
def fitted(train_clouds):
    return Expert3D(TINY.replace(epochs=10)).fit(train_clouds, progress=False)


# ---- networks --------------------------------------------------------------------------------------------


def test_paper_preset_has_the_reference_layer_sizes():
    net = SDFNetwork(PRESETS["paper"])
    convs = [m for m in net.encoder.point_layers if isinstance(m, torch.nn.Conv1d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 128), (128, 1024)]
    fcs = [m for m in net.encoder.head if isinstance(m, torch.nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(1024, 512), (512, 128)]
    dec = net.decoder
    assert (dec.xyz_in.in_features, dec.xyz_in.out_features) == (3, 512)
    assert (dec.latent_in.in_features, dec.latent_in.out_features) == (128, 512)
    assert (dec.joint.in_features, dec.joint.out_features) == (1024, 512)
    assert len(dec.hidden) == 7 and all(h.parametrizations.weight.original0.shape == (512, 1) for h in dec.hidden)
    assert dec.out.bias.item() == -0.5
    assert abs(dec.out.weight.mean().item() - 2 * np.sqrt(np.pi) / np.sqrt(512)) < 1e-5


def test_shapes_and_non_negative_latents():
    net = SDFNetwork(TINY).eval()
    latents = net.encoder(torch.randn(5, TINY.patch_size, 3))
    assert latents.shape == (5, TINY.latent_dim) and bool((latents >= 0).all())
    assert net.decoder(torch.randn(5, 7, 3), latents).shape == (5, 7)


def test_decoder_latent_branch_equals_concatenation():
    torch.manual_seed(0)
    dec = SDFDecoder(latent_dim=6, width=16, layers=2)
    q, f = torch.randn(3, 9, 3), torch.randn(3, 6)
    x = torch.relu(dec.xyz_in(q))
    lat = torch.relu(dec.latent_in(f))[:, None, :].expand(-1, 9, -1)
    h = torch.relu(dec.joint(torch.cat([x, lat], dim=-1)))
    for layer in dec.hidden:
        h = torch.relu(layer(h))
    torch.testing.assert_close(dec(q, f), dec.out(h).squeeze(-1))


def test_neural_pull_loss_is_zero_for_an_exact_sdf():
    class Plane(torch.nn.Module):  # SDF of the plane z = 0
        def forward(self, q, f):
            return q[..., 2] + 0 * f.sum()

    q = torch.randn(2, 50, 3)
    on_surface = q * torch.tensor([1.0, 1.0, 0.0])
    assert neural_pull_loss(Plane(), q, torch.zeros(2, 1), on_surface).item() < 1e-6
    assert neural_pull_loss(Plane(), q, torch.zeros(2, 1), q).item() > 0.1


# ---- training data ---------------------------------------------------------------------------------------


def test_normalise_patches_unit_extent_and_zero_mean(rng):
    patches = torch.from_numpy((rng.random((4, 30, 3)) * [2, 1, 0.5] + 100).astype(np.float32))
    out = normalise_patches(patches)
    extent = (out.amax(1) - out.amin(1)).amax(-1)
    torch.testing.assert_close(extent, torch.ones(4))
    torch.testing.assert_close(out.mean(1), torch.zeros(4, 3), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="patch 1 has zero extent"):
        normalise_patches(torch.cat([patches[:1], torch.ones(1, 30, 3)]))


def test_sigma_is_the_50th_neighbour_excluding_self(rng):
    patches = rng.random((3, 200, 3)).astype(np.float32)
    got = neighbour_sigma(torch.from_numpy(patches), 50, chunk=2).numpy()
    want = np.stack([cKDTree(p).query(p, 51)[0][:, -1] for p in patches])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_queries_have_the_nearest_patch_point_as_target_and_are_seeded(rng):
    patches = normalise_patches(torch.from_numpy(rng.random((6, 64, 3)).astype(np.float32)))
    sigma = neighbour_sigma(patches, 10)
    q1, t1 = draw_queries(patches, sigma, TINY, torch.Generator().manual_seed(3))
    q2, t2 = draw_queries(patches, sigma, TINY, torch.Generator().manual_seed(3))
    assert torch.equal(q1, q2) and torch.equal(t1, t2)
    nearest = np.stack([p[cKDTree(p).query(q)[1]] for p, q in zip(patches.numpy(), q1.numpy())])
    np.testing.assert_array_equal(t1.numpy(), nearest)
    # each patch's offsets are sigma-scaled Gaussian noise with scale 0.5 or 1.0
    ratio = ((q1 - patches).norm(dim=-1) / sigma).pow(2).mean(dim=1) / 3  # ~ scale^2
    assert bool(((ratio - 0.25).abs() < 0.1).logical_or((ratio - 1.0).abs() < 0.4).all())


# ---- OMP -------------------------------------------------------------------------------------------------


def test_scoring_reconstructs_latents_by_sklearn_omp(fitted, rng, monkeypatch):
    # F' comes from the OMP kernel (iaenet.ops.omp_residuals, the memory bank's too); decoded with sklearn's
    # OMP reconstruction over the same k nearest bank latents instead, the points get the same X1
    calls = []

    def kernel(*args, **kwargs):
        calls.append(kwargs)
        return omp_residuals(*args, **kwargs)

    monkeypatch.setattr(expert3d, "omp_residuals", kernel)
    cloud = smooth_surface(rng)
    result = fitted.score(cloud)
    assert calls == [{"return_codes": True}]
    points = torch.from_numpy(cloud)
    patch_idx, normalised = fitted._patches(points, fitted.config.group_mul_bank)
    latents, bank = fitted._encode(normalised).double().numpy(), fitted.bank.double().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sklearn warns on its early stops
        recon = np.stack([sparse_encode(latents[i:i + 1], bank[rows], algorithm="omp",
                                        n_nonzero_coefs=fitted.config.omp_atoms)[0] @ bank[rows]
                          for i, rows in enumerate(result.neighbours)])
    with torch.no_grad():
        sdf = fitted.network.decoder(normalised, torch.from_numpy(recon).float())
    x1 = _min_over_patches(sdf.abs(), patch_idx, points).numpy()
    np.testing.assert_allclose(result.point_scores, x1, rtol=1e-5, atol=1e-6)
    assert result.latent_score == pytest.approx(np.linalg.norm(latents - recon, axis=1).max(), rel=1e-6)


def test_more_neighbours_than_the_omp_kernel_takes():
    with pytest.raises(ValueError, match="k_neighbours .* must be <= 16"):
        TINY.replace(k_neighbours=17)


@pytest.mark.cuda
def test_cuda_scores_like_cpu(fitted, tmp_path, rng):
    fitted.save(tmp_path / "expert.safetensors")
    on_cuda = Expert3D.load(tmp_path / "expert.safetensors", device="cuda")
    cloud = smooth_surface(rng)
    a, b = fitted.score(cloud), on_cuda.score(cloud)
    np.testing.assert_array_equal(a.neighbours, b.neighbours)
    np.testing.assert_allclose(a.point_scores, b.point_scores, rtol=1e-4, atol=1e-6)
    assert a.latent_score == pytest.approx(b.latent_score, rel=1e-5)


# ---- fit and score ---------------------------------------------------------------------------------------


def test_fit_and_score_shapes(fitted, rng):
    cloud = smooth_surface(rng)
    result = fitted.score(cloud)
    patches = fitted.patches(cloud)
    assert result.point_scores.shape == (1500,) and result.point_scores.dtype == np.float32
    assert result.patch_idx.shape == patches.shape == (round(1500 * 10 / 64), 64)
    assert result.neighbours.shape == (len(patches), TINY.k_neighbours)
    assert np.isfinite(result.point_scores).all() and (result.point_scores >= 0).all()
    assert result.object_score == pytest.approx(float(result.point_scores.max()))
    assert result.latent_score > 0
    assert fitted.bank.shape == (4 * round(1500 * 10 / 64), TINY.latent_dim)
    assert fitted.bank_names == ["0", "1", "2", "3"] and int(fitted.bank_scan.max()) == 3
    assert len(fitted.losses) == 10 and fitted.losses[-1] < fitted.losses[0]
    as_torch = fitted.score(torch.from_numpy(cloud))
    assert isinstance(as_torch.point_scores, torch.Tensor)
    np.testing.assert_array_equal(as_torch.point_scores.numpy(), result.point_scores)


def test_same_seed_same_weights_and_scores(train_clouds, rng):
    a = Expert3D(TINY).fit(train_clouds, progress=False)
    b = Expert3D(TINY).fit(train_clouds, progress=False)
    for (name, pa), pb in zip(a.network.state_dict().items(), b.network.state_dict().values()):
        assert torch.equal(pa, pb), name
    cloud = smooth_surface(rng)
    np.testing.assert_array_equal(a.score(cloud).point_scores, b.score(cloud).point_scores)
    c = Expert3D(TINY.replace(seed=1)).fit(train_clouds, progress=False)
    assert not torch.equal(c.bank, a.bank)


@pytest.mark.parametrize("height", [0.08, -0.08], ids=["bump", "dent"])
def test_bump_or_dent_scores_higher_than_its_surroundings(fitted, height):
    cloud = smooth_surface(np.random.default_rng(7), bump=height)
    scores = fitted.score(cloud).point_scores
    radius = np.hypot(cloud[:, 0] - 0.5, cloud[:, 1] - 0.5)
    on_bump, around = scores[radius < 0.05].mean(), scores[(radius > 0.15) & (radius < 0.35)].mean()
    assert on_bump > 2 * around, (on_bump, around)
    # and the same region of a bump-free surface scores lower
    flat = smooth_surface(np.random.default_rng(8))
    flat_scores = fitted.score(flat).point_scores[np.hypot(flat[:, 0] - 0.5, flat[:, 1] - 0.5) < 0.05]
    assert on_bump > 2 * flat_scores.mean(), (on_bump, flat_scores.mean())


def test_resume_continues_exactly(train_clouds, tmp_path):
    full = Expert3D(TINY.replace(epochs=3))
    full.train(train_clouds, progress=False)
    first = Expert3D(TINY)
    first.train(train_clouds, progress=False, checkpoint_path=tmp_path / "ckpt.safetensors",
                log_path=tmp_path / "loss.txt")
    assert len((tmp_path / "loss.txt").read_text().splitlines()) == 2
    resumed = Expert3D(TINY.replace(epochs=3))
    resumed.train(train_clouds, progress=False, resume_from=tmp_path / "ckpt.safetensors")
    assert resumed.losses[:2] == first.losses and resumed.losses == full.losses
    for pa, pb in zip(full.network.state_dict().values(), resumed.network.state_dict().values()):
        assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="another config"):
        Expert3D(TINY.replace(decoder_width=8)).train(train_clouds, progress=False,
                                                     resume_from=tmp_path / "ckpt.safetensors")


def test_save_load_round_trip_gives_identical_scores(fitted, tmp_path, rng):
    path = tmp_path / "expert.safetensors"
    fitted.save(path)
    loaded = Expert3D.load(path)
    assert loaded.config == fitted.config and loaded.bank_names == fitted.bank_names
    assert loaded.losses == fitted.losses
    cloud = smooth_surface(rng)
    a, b = fitted.score(cloud), loaded.score(cloud)
    np.testing.assert_array_equal(a.point_scores, b.point_scores)
    np.testing.assert_array_equal(a.neighbours, b.neighbours)
    assert a.latent_score == b.latent_score


def test_call_size_changes_nothing_but_speed(fitted, tmp_path, rng):
    path = tmp_path / "expert.safetensors"
    fitted.save(path)
    one_by_one = Expert3D.load(path, score_batch_patches=1)
    cloud = smooth_surface(rng)
    np.testing.assert_allclose(one_by_one.score(cloud).point_scores, fitted.score(cloud).point_scores,
                               rtol=1e-5, atol=1e-6)  # |sdf| is a difference of O(1) terms
    with pytest.raises(ValueError, match="score_batch_patches"):
        Expert3D(TINY, score_batch_patches=0)


def test_bad_files(tmp_path, fitted):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        Expert3D.load(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="junk.safetensors"):
        Expert3D.load(junk)
    ckpt = tmp_path / "ckpt.safetensors"
    Expert3D(TINY.replace(epochs=1)).train([smooth_surface(np.random.default_rng(0))] * 2, progress=False,
                                            checkpoint_path=ckpt)
    with pytest.raises(ValueError, match="expected 'iaenet.expert3d'"):
        Expert3D.load(ckpt)


def test_bad_input(fitted):
    with pytest.raises(ValueError, match="fewer than one patch"):
        fitted.score(np.zeros((10, 3), np.float32))
    cloud = smooth_surface(np.random.default_rng(1))
    cloud[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fitted.score(cloud)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        fitted.score(np.zeros((100, 2), np.float32))
    with pytest.raises(TypeError, match="single array"):
        fitted.fit(np.zeros((100, 3), np.float32))
    with pytest.raises(ValueError, match="no memory bank"):
        Expert3D(TINY).score(smooth_surface(np.random.default_rng(1)))
    with pytest.raises(ValueError, match="need at least batch_patches"):
        Expert3D(TINY.replace(batch_patches=500)).train([smooth_surface(np.random.default_rng(1))],
                                                       progress=False)
    with pytest.raises(ValueError, match="unknown preset"):
        Expert3D("huge")
    with pytest.raises(ValueError, match="sigma_neighbour"):
        Expert3DConfig(patch_size=40)


def test_config_json_round_trip():
    for config in PRESETS.values():
        assert Expert3DConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="do not match"):
        Expert3DConfig.from_json('{"patch_size": 500}')


# ---- scatter helpers -------------------------------------------------------------------------------------


def test_min_over_patches_and_uncovered_points():
    cloud = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [2.2, 0, 0]])
    patch_idx = torch.tensor([[0, 1], [1, 2]])
    got = _min_over_patches(torch.tensor([[0.5, 0.3], [0.1, 0.9]]), patch_idx, cloud)
    torch.testing.assert_close(got, torch.tensor([0.5, 0.1, 0.9, 0.9]))  # point 3 takes point 2's score


def test_point_scores_to_grid():
    grid = point_scores_to_grid(np.array([1.0, 2.0], np.float32), np.array([0, 5]), (2, 3))
    np.testing.assert_array_equal(grid, [[1, 0, 0], [0, 0, 2]])
    with pytest.raises(ValueError, match="pixel_index"):
        point_scores_to_grid(np.array([1.0]), np.array([6]), (2, 3))
