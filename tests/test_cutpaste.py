"""Pseudo-anomaly synthesis: Perlin noise, Cut-Paste on organized scans (real and synthetic), geometric defects
on clouds, the dataset writer and its CLI, and bad input."""
import json

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from iaenet.cli import main
from iaenet.data.cutpaste import CutPasteConfig, CutPasteSynthesizer, write_synthetic_anomalies
from iaenet.data.datasets import open_dataset
from iaenet.data.geometric_defects import GeometricDefectConfig, GeometricDefectSynthesizer
from iaenet.data.perlin import perlin_noise
from iaenet.data.preprocess import preprocess_scan
from iaenet.data.scan import Scan
from iaenet.data.synthetic import CATEGORIES, render_sample

CATEGORY = "cable_gland"


def _clean(scan: Scan) -> Scan:
    return preprocess_scan(scan, size=max(scan.points.shape[:2]))


@pytest.fixture(scope="module")
def tiny_scans(mvtec_tiny):
    """The 4 cleaned 100x100 training scans of the tiny fixture."""
    return [_clean(scan) for scan in open_dataset(mvtec_tiny, CATEGORY, "train")]


@pytest.fixture(scope="module")
def dev_scans(mvtec_dev):
    """Two cleaned 400x400 training scans of the dev subset."""
    train = open_dataset(mvtec_dev, CATEGORY, "train")
    return [_clean(train[0]), _clean(train[1])]


def _valid(points: np.ndarray) -> np.ndarray:
    return np.all(points != 0, axis=-1)


def _check_defect(target: Scan, result: Scan, donor_points: np.ndarray, config: CutPasteConfig) -> None:
    """What every Cut-Paste result must satisfy against its target and its only donor."""
    before, after = target.points, result.points
    assert result.points.shape == before.shape and result.points.dtype == np.float32
    assert result.label == 1 and result.defect == "cutpaste" and result.name.startswith(target.name + "#cutpaste")
    gt = result.gt
    assert gt.sum() >= config.size_limits(gt.shape)[0]
    assert not (gt & ~_valid(after)).any()  # gt only where the output has points
    changed = np.any(after != before, axis=-1)
    assert changed[gt].any()  # a visible defect
    assert not (changed & ~gt & _valid(after)).any()  # outside gt a point may only have become a hole
    assert not (_valid(after) & ~_valid(before)).any()  # no point appears where the target had none
    kept = _valid(after)
    np.testing.assert_array_equal(after[kept][:, :2], before[kept][:, :2])  # x, y are the target's
    # z = z_donor - mean + mean_target + offset: bounded by both reliefs and the largest step
    donor_z, target_z = donor_points[_valid(donor_points), 2], before[_valid(before), 2]
    bound = np.ptp(donor_z) + np.ptp(target_z) + config.max_offset + 1e-6
    assert np.abs(after[gt, 2] - before[gt, 2]).max() <= bound


# ----------------------------------------------------------------------------- Perlin noise


def test_perlin_noise_range_shape_and_seed():
    noise = perlin_noise((37, 53), (4, 2), np.random.default_rng(1), angle=0.3)
    assert noise.shape == (37, 53) and noise.dtype == np.float32
    assert -1.0 <= noise.min() < 0.0 < noise.max() <= 1.0
    np.testing.assert_array_equal(noise, perlin_noise((37, 53), (4, 2), np.random.default_rng(1), angle=0.3))
    assert not np.array_equal(noise, perlin_noise((37, 53), (4, 2), np.random.default_rng(2), angle=0.3))


def test_perlin_noise_scale_and_rotation():
    rng = np.random.default_rng(0)
    # finer lattices change sign more often along a row
    crossings = [np.count_nonzero(np.diff(np.sign(perlin_noise((128, 128), (c, c), rng)), axis=1))
                 for c in (1, 16)]
    assert crossings[1] > 4 * crossings[0]
    # a turned lattice still covers the corners (the references' rotated image leaves them empty)
    turned = perlin_noise((128, 128), (2, 2), rng, angle=np.pi / 4)
    assert np.abs(turned[:8, :8]).max() > 0
    # one cell along rows, four along columns: smoother down the columns
    stretched = perlin_noise((128, 128), (1, 4), rng)
    assert np.abs(np.diff(stretched, axis=0)).mean() < np.abs(np.diff(stretched, axis=1)).mean()


@pytest.mark.parametrize("shape, cells", [((0, 5), (1, 1)), ((5, 5), (0, 1))])
def test_perlin_noise_bad_input(shape, cells):
    with pytest.raises(ValueError, match="shape|cells"):
        perlin_noise(shape, cells, np.random.default_rng(0))


# ----------------------------------------------------------------------------- Cut-Paste configuration


def test_size_limits_scale_by_area():
    config = CutPasteConfig()
    assert config.size_limits((512, 512)) == (100, 1600, 300)
    low, high, total = config.size_limits((400, 400))
    scale = 400 * 400 / 512**2
    assert (low, high, total) == pytest.approx((100 * scale, 1600 * scale, 300 * scale))
    assert config.size_limits((256, 1024)) == (100, 1600, 300)  # same area as 512x512


@pytest.mark.parametrize("field, value, error", [
    ("threshold", 1.0, ValueError), ("threshold", "0.4", TypeError), ("threshold", float("nan"), ValueError),
    ("min_scale_exponent", -1, ValueError), ("max_scale_exponent", 11, ValueError),
    ("min_component", 0, ValueError), ("max_component", 50, ValueError), ("min_total", 0, ValueError),
    ("dilation", -1, ValueError), ("dilation", 1.5, TypeError), ("inside_share", 1.0, ValueError),
    ("min_offset", -1e-4, ValueError), ("max_offset", 1e-4, ValueError), ("max_attempts", 0, ValueError),
    ("max_rotation_deg", 270.0, ValueError), ("reference_size", True, TypeError),
])
def test_config_rejects_bad_values(field, value, error):
    with pytest.raises(error, match=field):
        CutPasteConfig(**{field: value})


# ----------------------------------------------------------------------------- Cut-Paste on scans


def test_dev_scan_defect_geometry(dev_scans):
    """On 400x400 real scans: gt, x/y, holes and the z bound, for several indices."""
    target, donor = dev_scans
    config = CutPasteConfig()
    synthesizer = CutPasteSynthesizer([donor], seed=4)
    for index in range(4):
        _check_defect(target, synthesizer.synthesize(target, index), donor.points, config)


def test_parts_in_place_get_one_step_each(dev_scans):
    """Donor = the target raised 5 cm, no dilation: every part lies on the target and is pasted in place, so
    its relief cancels and each part moves by its own step only, within the offset range. The parts are the
    mask's kept components, so their sizes show the limits scaled to 400x400."""
    target = dev_scans[0]
    raised = np.where(_valid(target.points)[..., None], target.points + np.float32([0, 0, 0.05]), 0)
    config = CutPasteConfig(dilation=0)
    low, high, total = config.size_limits(target.points.shape[:2])
    synthesizer = CutPasteSynthesizer([raised], config, seed=0)
    steps = []
    for index in range(3):
        result = synthesizer.synthesize(target, index)
        dz = (result.points[..., 2] - target.points[..., 2]).astype(np.float64)
        labels, count = ndimage.label(result.gt)
        assert np.array_equal(np.any(result.points != target.points, axis=-1), result.gt)
        sizes = np.bincount(labels.ravel())[1:]
        assert count >= 1 and sizes.min() >= low and sizes.max() <= high and sizes.sum() >= total
        for part in range(1, count + 1):
            step = dz[labels == part]
            assert np.ptp(step) < 1e-5  # float32 rounding of z ~ 0.5 m
            assert config.min_offset - 1e-5 <= abs(step.mean()) <= config.max_offset + 1e-5
            steps.append(step.mean())
    assert min(steps) < 0 < max(steps)  # raised and lowered parts


def _disc_scan(centre_col: int, relief: float, name: str, size: int = 200) -> Scan:
    """A flat part (a disc of radius 40 px at row 100) 0.5 m away, with a wavy relief of `relief` metres."""
    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    pitch = 2.5e-4  # m per pixel; the +0.5 keeps every coordinate non-zero
    z = 0.5 - relief * np.sin(cols / 3.0) * np.cos(rows / 4.0)
    points = np.stack([(cols - size / 2 + 0.5) * pitch, (rows - size / 2 + 0.5) * pitch, z], axis=-1)
    inside = (rows - 100) ** 2 + (cols - centre_col) ** 2 < 40**2
    return Scan(points=np.where(inside[..., None], points, 0).astype(np.float32), name=name)


def test_parts_off_the_target_are_moved_onto_it():
    """The donor's part lies where the target has nothing: every part must be moved onto the target, and
    it brings the donor's relief (the target is flat)."""
    target, donor = _disc_scan(50, 0.0, "left"), _disc_scan(150, 1e-3, "right")
    config = CutPasteConfig()
    synthesizer = CutPasteSynthesizer([donor], seed=0)
    for index in range(3):
        result = synthesizer.synthesize(target, index)
        _check_defect(target, result, donor.points, config)
        dz = result.points[..., 2][result.gt] - target.points[..., 2][result.gt]
        assert np.ptp(dz) > 2e-4  # relief, not just a flat step


def test_deterministic_and_call_order_independent(tiny_scans):
    target, donors = tiny_scans[0], tiny_scans[1:]
    first = [CutPasteSynthesizer(donors, seed=3).synthesize(target, i) for i in range(4)]
    synthesizer = CutPasteSynthesizer(donors, seed=3)
    backwards = [synthesizer.synthesize(target, i) for i in reversed(range(4))][::-1]
    for a, b in zip(first, backwards):
        np.testing.assert_array_equal(a.points, b.points)
        np.testing.assert_array_equal(a.gt, b.gt)
    assert not np.array_equal(first[0].gt, first[1].gt)
    other_seed = CutPasteSynthesizer(donors, seed=4).synthesize(target, 0)
    assert not np.array_equal(first[0].points, other_seed.points)
    assert first[2].name == f"{target.name}#cutpaste2"


def test_tiny_real_scans_every_target(tiny_scans):
    """Each tiny scan as target with the others as donors (100x100: limits 3.8-61 px, total >= 11.4)."""
    config = CutPasteConfig()
    for number, target in enumerate(tiny_scans):
        donor = tiny_scans[(number + 1) % len(tiny_scans)]
        result = CutPasteSynthesizer([donor], seed=1).synthesize(target, number)
        _check_defect(target, result, donor.points, config)


def test_synthetic_generator_scans():
    """Scans of the embedded synthetic generator, across categories (donors of other categories too)."""
    scans = [_clean(Scan(points=render_sample(category, np.random.default_rng(i), resolution=96).xyz,
                         name=f"{category}-{i}")) for i, category in enumerate(CATEGORIES)]
    config = CutPasteConfig()
    for number, target in enumerate(scans):
        donor = scans[(number + 1) % len(scans)]
        _check_defect(target, CutPasteSynthesizer([donor], seed=0).synthesize(target, 0), donor.points, config)


def test_donors_resized_to_the_target_grid(dev_scans, tiny_scans):
    """A 100x100 donor serves a 400x400 target and the other way round (nearest resizing)."""
    config = CutPasteConfig()
    big, small = dev_scans[0], tiny_scans[1]
    up = CutPasteSynthesizer([small.points], seed=0).synthesize(big, 0)
    assert up.points.shape == (400, 400, 3)
    _check_defect(big, up, small.points, config)
    down = CutPasteSynthesizer([dev_scans[1]], seed=0).synthesize(small, 0)
    _check_defect(small, down, dev_scans[1].points, config)


def test_target_is_never_its_own_donor(tiny_scans):
    target = tiny_scans[0]
    with pytest.raises(ValueError, match="every donor is this scan itself"):
        CutPasteSynthesizer([target], seed=0).synthesize(target, 0)
    # among other donors it is skipped: the result equals the one made without it
    with_self = CutPasteSynthesizer([target, tiny_scans[1]], seed=0).synthesize(target, 0)
    _check_defect(target, with_self, tiny_scans[1].points, CutPasteConfig())


def test_cutpaste_bad_input(tiny_scans, rng):
    target, donor = tiny_scans[0], tiny_scans[1]
    synthesizer = CutPasteSynthesizer([donor])
    cloud = Scan(points=rng.uniform(0.1, 1, (50, 3)).astype(np.float32), name="cloud")
    with pytest.raises(ValueError, match="'cloud'.*organized"):
        synthesizer.synthesize(cloud, 0)
    with pytest.raises(TypeError, match="Scan"):
        synthesizer.synthesize(target.points, 0)
    with pytest.raises(ValueError, match="index"):
        synthesizer.synthesize(target, -1)
    anomalous = Scan(points=target.points, gt=_valid(target.points), label=1, name="bad")
    with pytest.raises(ValueError, match="'bad' already has"):
        synthesizer.synthesize(anomalous, 0)
    wide = np.zeros((100, 50, 3), np.float32)
    wide[40:60, 20:30] = (0.01, 0.02, 0.5)
    with pytest.raises(ValueError, match="donor 1 is 100x50 and cannot be resized"):
        CutPasteSynthesizer([donor, wide]).synthesize(target, 0)
    with pytest.raises(ValueError, match="donors is empty"):
        CutPasteSynthesizer([])
    with pytest.raises(ValueError, match="donor 0.*no valid point"):
        CutPasteSynthesizer([np.zeros((100, 100, 3), np.float32)])
    with pytest.raises(ValueError, match="donor 0.*unorganized"):
        CutPasteSynthesizer([cloud])
    with pytest.raises(TypeError, match="donor 0"):
        CutPasteSynthesizer(["scan.tiff"])
    with pytest.raises(TypeError, match="sequence"):
        CutPasteSynthesizer(donor)
    with pytest.raises(ValueError, match="seed"):
        CutPasteSynthesizer([donor], seed=-1)
    with pytest.raises(TypeError, match="CutPasteConfig"):
        CutPasteSynthesizer([donor], config={"threshold": 0.4})
    speck = np.zeros((100, 100, 3), np.float32)  # 4 foreground pixels: nothing fits the size limits
    speck[50:52, 50:52] = (0.01, 0.02, 0.5)
    with pytest.raises(ValueError, match="'speck': no Cut-Paste defect after 3 attempts"):
        CutPasteSynthesizer([donor], CutPasteConfig(max_attempts=3)).synthesize(Scan(points=speck, name="speck"), 0)


# ----------------------------------------------------------------------------- geometric defects


def _sphere(n=6000, radius=0.03, centre=(0.01, 0.02, 0.5)):
    direction = np.random.default_rng(5).normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return (radius * direction + centre).astype(np.float32), np.asarray(centre)


@pytest.mark.parametrize("kind, sign", [("bulge", 1), ("dent", -1)])
def test_geometric_bulge_and_dent_on_a_sphere(kind, sign):
    points, centre = _sphere()
    config = GeometricDefectConfig(kinds=(kind,))
    extent = np.linalg.norm(np.ptp(points, axis=0))
    for index in range(3):
        moved, labels = GeometricDefectSynthesizer(config, seed=2).synthesize(points, index)
        assert moved.shape == points.shape and labels.dtype == bool and 0 < labels.sum() < len(points) // 4
        radial = np.linalg.norm(moved - centre, axis=1) - np.linalg.norm(points - centre, axis=1)
        shift = np.linalg.norm(moved - points, axis=1)
        assert np.all(sign * radial[labels] > 0)  # outwards for a bulge, inwards for a dent
        largest = shift.max()
        assert largest <= config.max_amplitude * config.max_radius * extent * (1 + 1e-5)
        assert shift[~labels].max() < config.label_share * largest * (1 + 1e-3)
        # the defect is local: nothing moves beyond the region around its labelled points
        seed_point = points[np.argmax(shift)]
        assert shift[np.linalg.norm(points - seed_point, axis=1) > config.max_radius * extent].max() == 0


def test_geometric_hole_and_determinism():
    points, centre = _sphere(n=20000)
    synthesizer = GeometricDefectSynthesizer(GeometricDefectConfig(kinds=("hole",), rim=1.0), seed=0)
    for index in range(3):
        kept, labels = synthesizer.synthesize(points, index)
        assert len(kept) < len(points) and labels.shape == (len(kept),) and labels.any()
        distance, nearest = cKDTree(points).query(kept)
        assert distance.max() == 0 and np.all(np.diff(nearest) > 0)  # the input's points, in order
        removed = np.ones(len(points), dtype=bool)
        removed[nearest] = False
        # the hole is a cap of the sphere; the labels are the ring around it, up to twice its radius (rim 1)
        cap_centre = centre + 0.03 * _unit(points[removed].mean(axis=0) - centre)
        hole_radius = np.linalg.norm(points[removed] - cap_centre, axis=1).max()
        spacing = 0.03 * np.sqrt(4 * np.pi / len(points))  # mean distance between neighbouring points
        ring = np.linalg.norm(kept[labels] - cap_centre, axis=1)
        assert ring.min() > hole_radius - spacing and ring.max() < 2 * hole_radius + 2 * spacing
        assert np.linalg.norm(kept[~labels] - cap_centre, axis=1).min() > 2 * hole_radius - 2 * spacing
        np.testing.assert_array_equal(synthesizer.synthesize(points, index)[0], kept)  # deterministic
    assert len(synthesizer.synthesize(points, 0)[0]) != len(synthesizer.synthesize(points, 1)[0])


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def test_geometric_on_an_organized_scan(tiny_scans):
    """Grid positions are kept; a bulge comes towards the camera (the origin)."""
    scan = tiny_scans[0]
    synthesizer = GeometricDefectSynthesizer(GeometricDefectConfig(kinds=("bulge",), min_radius=0.1,
                                                                   max_radius=0.15), seed=0)
    result = synthesizer.synthesize_scan(scan, 0)
    assert result.points.shape == scan.points.shape and result.defect == "bulge" and result.label == 1
    np.testing.assert_array_equal(_valid(result.points), _valid(scan.points))
    assert result.gt.any() and not (result.gt & ~_valid(scan.points)).any()
    closer = np.linalg.norm(result.points[result.gt], axis=1) < np.linalg.norm(scan.points[result.gt], axis=1)
    assert closer.all()
    hole = GeometricDefectSynthesizer(GeometricDefectConfig(kinds=("hole",), min_radius=0.1, max_radius=0.15))
    holed = hole.synthesize_scan(scan, 0)
    assert holed.num_valid < scan.num_valid and holed.gt.any() and not (holed.gt & ~_valid(holed.points)).any()


def test_geometric_bad_input(tiny_scans):
    synthesizer = GeometricDefectSynthesizer()
    with pytest.raises(ValueError, match="synthesize_scan"):
        synthesizer.synthesize(tiny_scans[0].points, 0)
    with pytest.raises(ValueError, match="missing"):
        synthesizer.synthesize(np.array([[0.0, 0.1, 0.5], [0.1, 0.1, 0.5]], np.float32), 0)
    with pytest.raises(ValueError, match="coincide"):
        synthesizer.synthesize(np.full((40, 3), 0.3, np.float32), 0)
    with pytest.raises(ValueError, match="no region"):
        synthesizer.synthesize(np.random.default_rng(0).uniform(0.1, 0.2, (20, 3)).astype(np.float32), 0)
    with pytest.raises(ValueError, match="kinds"):
        GeometricDefectConfig(kinds=("crack",))
    with pytest.raises(ValueError, match="max_radius"):
        GeometricDefectConfig(min_radius=0.1, max_radius=0.05)
    with pytest.raises(TypeError, match="GeometricDefectConfig"):
        GeometricDefectSynthesizer(CutPasteConfig())


# ----------------------------------------------------------------------------- writer and CLI


def test_cli_writes_a_readable_dataset(mvtec_tiny, tmp_path, capsys):
    out = tmp_path / "anomalies"
    args = ["synth-anomalies", str(mvtec_tiny), "--category", CATEGORY, "--count", "3", "--out", str(out)]
    assert main(args + ["--seed", "2"]) == 0
    folder = out / CATEGORY / "test" / "cutpaste"
    assert sorted(p.name for p in (folder / "xyz").iterdir()) == ["000.tiff", "001.tiff", "002.tiff"]
    assert main(["info", str(out)]) == 0
    assert "cutpaste 3" in capsys.readouterr().out
    scans = list(open_dataset(out, CATEGORY, "test"))
    assert len(scans) == 3 and all(s.label == 1 and s.gt.any() and s.points.shape == (100, 100, 3) for s in scans)
    sources = json.loads((folder / "sources.json").read_text())
    assert sources["count"] == 3 and set(sources["targets"]) == {"000", "001", "002"}
    assert sorted(sources["donors"]) == [f"{CATEGORY}/train/good/{i:03d}" for i in range(4)]  # min(8, 4 scans)
    assert all(target.startswith(f"{CATEGORY}/train/good/") for target in sources["targets"].values())

    assert main(args) == 1  # not empty, no --overwrite
    assert "not empty" in capsys.readouterr().err
    first = {p.name: p.read_bytes() for p in (folder / "xyz").iterdir()}
    assert main(args + ["--seed", "2", "--overwrite"]) == 0
    assert {p.name: p.read_bytes() for p in (folder / "xyz").iterdir()} == first  # same seed, same bytes

    # anomaly k does not depend on how many are written
    fewer = write_synthetic_anomalies(mvtec_tiny, CATEGORY, tmp_path / "fewer", 2, seed=2)
    assert (fewer / "gt" / "001.png").read_bytes() == (folder / "gt" / "001.png").read_bytes()


def test_writer_bad_input(mvtec_tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="no category 'nut'"):
        write_synthetic_anomalies(mvtec_tiny, "nut", tmp_path / "o", 1)
    with pytest.raises(ValueError, match="count"):
        write_synthetic_anomalies(mvtec_tiny, CATEGORY, tmp_path / "o", 0)
    with pytest.raises(ValueError, match="dataset root"):
        write_synthetic_anomalies(mvtec_tiny, CATEGORY, mvtec_tiny, 1)
    with pytest.raises(ValueError, match="donor_categories"):
        write_synthetic_anomalies(mvtec_tiny, CATEGORY, tmp_path / "o", 1, donor_categories=[])
    assert not (tmp_path / "o").exists()  # nothing written on bad input
