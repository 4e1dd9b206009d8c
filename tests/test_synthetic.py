"""Synthetic dataset generator: layout, file formats, determinism, ground truth, scanner traits."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage

from iaenet.data.synthetic import (
    CATEGORIES,
    DEFECTS,
    PROJECTOR_ELEVATION_DEG,
    generate_dataset,
    render_sample,
)

RESOLUTION = 64
COUNTS = dict(n_train=2, n_validation=1, n_test_good=2, n_test_per_defect=2)
PLANE_DROP = 0.005  # the reference preprocessing drops points within 5 mm of the table plane


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("synth") / "data", resolution=RESOLUTION, seed=3, **COUNTS)


def _files(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _samples(root: Path, split: str):
    """(category, folder, stem) for every scan of a split."""
    for category in CATEGORIES:
        for folder in sorted((root / category / split).iterdir()):
            for xyz in sorted((folder / "xyz").iterdir()):
                yield category, folder, xyz.stem


def _valid(xyz: np.ndarray) -> np.ndarray:
    return np.all(xyz != 0, axis=-1)


def _border(shape: tuple[int, int], width: int) -> np.ndarray:
    band = np.zeros(shape, dtype=bool)
    band[:width] = band[-width:] = True
    band[:, :width] = band[:, -width:] = True
    return band


def _table_distance(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane through the valid border points (the table): the signed distance of
    every pixel to it (m) and the residuals of the border points."""
    border = _border(xyz.shape[:2], max(2, xyz.shape[0] // 25)) & _valid(xyz)
    points = xyz[border].astype(np.float64)
    design = np.c_[points[:, :2], np.ones(len(points))]
    coef, *_ = np.linalg.lstsq(design, points[:, 2], rcond=None)
    scale = np.sqrt(1.0 + coef[0] ** 2 + coef[1] ** 2)
    distance = (xyz[..., :2].astype(np.float64) @ coef[:2] + coef[2] - xyz[..., 2]) / scale
    return distance, distance[border]


def test_layout_and_counts(dataset):
    assert sorted(p.name for p in dataset.iterdir()) == sorted([*CATEGORIES, "synthetic.json"])
    for category in CATEGORIES:
        root = dataset / category
        assert sorted(p.name for p in root.iterdir()) == ["test", "train", "validation"]
        expected = {
            "train/good": (COUNTS["n_train"], ["rgb", "xyz"]),
            "validation/good": (COUNTS["n_validation"], ["rgb", "xyz"]),
            "test/good": (COUNTS["n_test_good"], ["gt", "rgb", "xyz"]),
            **{f"test/{d}": (COUNTS["n_test_per_defect"], ["gt", "rgb", "xyz"]) for d in DEFECTS},
        }
        assert sorted(p.name for p in (root / "test").iterdir()) == sorted(["good", *DEFECTS])
        for folder, (count, subs) in expected.items():
            assert sorted(p.name for p in (root / folder).iterdir()) == subs
            stems = [f"{i:03d}" for i in range(count)]
            for sub in subs:
                suffix = ".tiff" if sub == "xyz" else ".png"
                assert sorted(p.name for p in (root / folder / sub).iterdir()) == [s + suffix for s in stems]
    meta = json.loads((dataset / "synthetic.json").read_text())
    assert meta["resolution"] == RESOLUTION and meta["seed"] == 3 and meta["categories"] == list(CATEGORIES)
    assert meta["defects"] == list(DEFECTS) and all(meta[k] == v for k, v in COUNTS.items())


def test_file_formats(dataset):
    for split in ("train", "validation", "test"):
        for category, folder, stem in _samples(dataset, split):
            xyz = tifffile.imread(folder / "xyz" / f"{stem}.tiff")
            assert xyz.dtype == np.float32 and xyz.shape == (RESOLUTION, RESOLUTION, 3)
            assert np.isfinite(xyz).all()
            z = xyz[..., 2][_valid(xyz)]
            assert 0.3 < z.min() and z.max() < 0.5, "metres, 0.3-0.5 m from the scanner"
            # Missing points are zero in all three coordinates, never partly zero.
            assert np.array_equal(np.any(xyz == 0, axis=-1), ~_valid(xyz))
            rgb = Image.open(folder / "rgb" / f"{stem}.png")
            assert rgb.mode == "RGB" and rgb.size == (RESOLUTION, RESOLUTION)
            if split == "test":
                gt = Image.open(folder / "gt" / f"{stem}.png")
                assert gt.mode == "L" and gt.size == (RESOLUTION, RESOLUTION)
                assert set(np.unique(np.asarray(gt))) <= {0, 255}


def test_same_seed_gives_byte_identical_files(dataset, tmp_path):
    again = generate_dataset(tmp_path / "again", resolution=RESOLUTION, seed=3, **COUNTS)
    assert _files(again) == _files(dataset)
    other = generate_dataset(tmp_path / "other", resolution=RESOLUTION, seed=4, **COUNTS)
    ours, theirs = _files(dataset), _files(other)
    differing = [name for name in ours if name.endswith(".tiff") and ours[name] != theirs[name]]
    assert len(differing) == sum(name.endswith(".tiff") for name in ours), "another seed changes every scan"


def test_a_scan_does_not_depend_on_the_other_counts(dataset, tmp_path):
    single = generate_dataset(tmp_path / "one", categories="ring", resolution=RESOLUTION, seed=3,
                              n_train=1, n_validation=0, n_test_good=1, n_test_per_defect=1)
    ours, full = _files(single), _files(dataset)
    scans = [name for name in ours if name != "synthetic.json"]
    assert len(scans) == 2 + 3 * (1 + len(DEFECTS))  # one train scan (xyz, rgb), one per test folder
    assert all(ours[name] == full[name] for name in scans)


def test_ground_truth_marks_the_part_only_in_anomalous_samples(dataset):
    for category, folder, stem in _samples(dataset, "test"):
        gt = np.asarray(Image.open(folder / "gt" / f"{stem}.png")) > 0
        if folder.name == "good":
            assert not gt.any(), f"{folder}/{stem}"
            continue
        assert gt.any(), f"{folder}/{stem} has an empty mask"
        xyz = tifffile.imread(folder / "xyz" / f"{stem}.tiff")
        distance, _ = _table_distance(xyz)
        measured = gt & _valid(xyz)
        assert measured.any(), f"{folder}/{stem}: no measured point in the mask"
        assert (np.abs(distance[measured]) > PLANE_DROP).all(), "the mask lies on the part, above the table"


@pytest.mark.parametrize("defect", DEFECTS)
@pytest.mark.parametrize("category", CATEGORIES)
def test_defect_changes_the_scan_only_in_its_mask(category, defect):
    resolution = 80  # 1 mm pixels
    key = [11, CATEGORIES.index(category), DEFECTS.index(defect)]
    bad = render_sample(category, np.random.default_rng(key), defect, resolution)
    good = render_sample(category, np.random.default_rng(key), None, resolution)
    mask = bad.gt
    assert mask.any() and not good.gt.any()
    assert not (mask & ~bad.part_mask).any(), "the mask holds part pixels only"
    assert np.array_equal(good.part_mask, bad.part_mask)

    both = _valid(bad.xyz) & _valid(good.xyz)
    moved = np.any(bad.xyz != good.xyz, axis=-1)
    assert (both & mask).any()
    assert moved[both & mask].all(), "every measured mask pixel moved"
    assert not moved[both & ~mask].any(), "no measured pixel outside the mask moved"
    # Only the defect's own shadow and slope change which pixels are measured: within
    # (max displacement / tan(projector elevation)) + 1 pixel of the mask, <= 3 px here.
    shadow_px = int(np.ceil(2.5 / np.tan(np.deg2rad(PROJECTOR_ELEVATION_DEG)))) + 1
    near = ndimage.binary_dilation(mask, iterations=shadow_px)
    assert np.array_equal(_valid(bad.xyz) & ~near, _valid(good.xyz) & ~near)
    # The colour changes through the shading of the new normals (one pixel around the mask)
    # and, for contamination, through the material's colour.
    recoloured = np.any(bad.rgb != good.rgb, axis=-1)
    assert not recoloured[~ndimage.binary_dilation(mask)].any()
    if defect == "contamination":
        shift = np.abs(bad.rgb.astype(int) - good.rgb.astype(int)).sum(axis=-1)
        assert np.median(shift[mask]) > 60, "a visible colour change"


def test_good_specimens_vary_a_little():
    scans = [render_sample("plate", np.random.default_rng([5, i]), None, 96) for i in range(4)]
    centres = []
    for scan in scans:
        points = scan.xyz[scan.part_mask & _valid(scan.xyz)].astype(np.float64)
        centres.append(points.mean(axis=0))
        extent = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
        assert (0.015 < extent).all() and (extent < 0.06).all(), "parts are a few centimetres"
    shifts = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert (shifts > 1e-4).all() and (shifts < 0.012).all(), "each specimen lies a few mm apart"
    assert not np.array_equal(scans[0].part_mask, scans[1].part_mask)


def test_table_plane_fills_the_border(dataset):
    for category, folder, stem in _samples(dataset, "train"):
        xyz = tifffile.imread(folder / "xyz" / f"{stem}.tiff")
        border = _border(xyz.shape[:2], max(2, RESOLUTION // 25))
        assert _valid(xyz)[border].mean() > 0.4
        _, residuals = _table_distance(xyz)
        assert 0.05e-3 < residuals.std() < 0.2e-3, "a plane with ~0.1 mm depth noise"


def test_odd_rows_and_columns_are_sparser(dataset):
    valid = np.stack([_valid(tifffile.imread(folder / "xyz" / f"{stem}.tiff"))
                      for _, folder, stem in _samples(dataset, "train")])
    assert valid[:, 1::2].mean() < valid[:, 0::2].mean() - 0.1
    assert valid[:, :, 1::2].mean() < valid[:, :, 0::2].mean() - 0.1
    assert 0.05 < 1.0 - valid.mean() < 0.6, "some but not most points are missing"


@pytest.mark.parametrize("category", CATEGORIES)
def test_plane_removal_and_largest_component_keep_exactly_the_part(category):
    """The reference preprocessing (drop points within 5 mm of the border plane, keep the
    largest grid-connected component) must find the part: every measured part point stands
    more than 5 mm above the table, every table point less, and the part is one component."""
    for index, defect in enumerate((None, *DEFECTS)):
        scan = render_sample(category, np.random.default_rng([21, index]), defect, 128)
        valid = _valid(scan.xyz)
        distance, _ = _table_distance(scan.xyz)
        kept = valid & (np.abs(distance) > PLANE_DROP)
        assert np.array_equal(kept, valid & scan.part_mask)
        labels, _ = ndimage.label(kept, structure=np.ones((3, 3)))
        assert np.bincount(labels[kept]).max() >= 0.9 * kept.sum()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown category 'teapot'"):
        generate_dataset(tmp_path / "a", categories=["ring", "teapot"])
    with pytest.raises(ValueError, match="twice"):
        generate_dataset(tmp_path / "a", categories=["ring", "ring"])
    with pytest.raises(ValueError, match="categories is empty"):
        generate_dataset(tmp_path / "a", categories=[])
    with pytest.raises(ValueError, match="resolution must be between 32 and 4096, got 31"):
        generate_dataset(tmp_path / "a", resolution=31)
    with pytest.raises(TypeError, match="resolution must be an integer"):
        generate_dataset(tmp_path / "a", resolution=64.0)
    for name in ("n_train", "n_validation", "n_test_good", "n_test_per_defect", "seed"):
        with pytest.raises(ValueError, match=f"{name} must be >= 0, got -1"):
            generate_dataset(tmp_path / "a", **{name: -1})
    with pytest.raises(TypeError, match="n_train must be an integer"):
        generate_dataset(tmp_path / "a", n_train=True)
    assert not (tmp_path / "a").exists(), "nothing is written before the arguments are checked"

    with pytest.raises(ValueError, match="unknown defect 'scratch'"):
        render_sample("ring", np.random.default_rng(0), "scratch")
    with pytest.raises(ValueError, match="unknown category"):
        render_sample("teapot", np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        render_sample("ring", 0)


def test_existing_output_needs_overwrite(tmp_path):
    small = dict(resolution=32, n_train=1, n_validation=0, n_test_good=0, n_test_per_defect=0)
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not empty; pass overwrite=True"):
        generate_dataset(out, categories="ring", **small)
    (out / "ring" / "train" / "good" / "xyz").mkdir(parents=True)
    stale = out / "ring" / "train" / "good" / "xyz" / "999.tiff"
    stale.write_bytes(b"old")
    generate_dataset(out, categories="ring", overwrite=True, **small)
    assert not stale.exists(), "the regenerated category is replaced, not merged"
    assert (out / "notes.txt").read_text() == "keep me", "nothing else is deleted"
    assert (out / "ring" / "train" / "good" / "xyz" / "000.tiff").is_file()

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="is not a folder"):
        generate_dataset(a_file, **small)
