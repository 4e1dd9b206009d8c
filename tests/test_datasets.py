"""Dataset layouts (MVTec 3D-AD on the real fixtures; Eyecandies, Real3D-AD on files made here),
layout detection, describe(), and bad input."""
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image

from iaenet.data import mvtec
from iaenet.data.datasets import describe, detect_layout, format_description, list_categories, open_dataset
from iaenet.data.eyecandies import FOCAL_LENGTH, back_project

# ----------------------------------------------------------------------------- MVTec 3D-AD, real fixtures


def test_mvtec_tiny_splits(mvtec_tiny):
    assert list_categories(mvtec_tiny) == ["cable_gland"]
    train = open_dataset(mvtec_tiny, "cable_gland", "train")
    assert train.layout == "mvtec3d" and len(train) == 4 and train.labels == [0] * 4
    assert open_dataset(mvtec_tiny, "cable_gland", "val").split == "validation"
    test = open_dataset(mvtec_tiny, "cable_gland", "test")
    assert test.defect_counts() == {"bent": 1, "cut": 1, "good": 2, "hole": 1, "thread": 1}
    for sample, scan in zip(test.samples, test):
        assert scan.points.shape == (100, 100, 3) and scan.rgb.shape == (100, 100, 3)
        assert scan.gt.shape == (100, 100) and scan.defect == sample.defect
        assert scan.label == (sample.defect != "good")
        assert scan.gt.any() == bool(scan.label)  # real gt: ids > 0 are the anomaly
        assert scan.name.endswith(f"{sample.defect}/xyz/{Path(sample.id).name}.tiff")
    good_train = train[0]
    assert not good_train.gt.any() and good_train.label == 0  # no gt folder: all normal


def test_mvtec_dev_counts(mvtec_dev):
    counts = {split: len(open_dataset(mvtec_dev, "cable_gland", split)) for split in ("train", "validation", "test")}
    assert counts == {"train": 32, "validation": 4, "test": 21}
    scan = open_dataset(mvtec_dev, "cable_gland", "test")[-1]
    assert scan.points.shape == (400, 400, 3) and scan.defect == "thread"


def test_listing_reads_no_scan(mvtec_tiny, monkeypatch):
    def refuse(path):
        raise AssertionError(f"read {path} while only listing")

    monkeypatch.setattr(mvtec, "read_xyz_tiff", refuse)
    dataset = open_dataset(mvtec_tiny, "cable_gland", "test")
    assert len(dataset) == 6 and dataset.defect_counts()["good"] == 2
    with pytest.raises(AssertionError, match="while only listing"):
        dataset[0]


def test_describe_real(mvtec_tiny):
    description = describe(mvtec_tiny)
    entry = description["categories"]["cable_gland"]
    assert description["layout"] == "MVTec 3D-AD"
    assert entry["splits"]["test"] == {"count": 6, "defects": {"bent": 1, "cut": 1, "good": 2, "hole": 1,
                                                               "thread": 1}}
    assert entry["grid"] == [[100, 100]] and entry["points"] is None and entry["scans_read"] == 3
    assert 0.5 < entry["valid_share"] < 0.95
    text = format_description(description)
    assert "cable_gland (MVTec 3D-AD)" in text and "100x100" in text and "thread 1" in text


# ----------------------------------------------------------------------------- MVTec layout, made here


def _write_mvtec_sample(folder: Path, split: str, defect: str, stem: str, size=(8, 8), gt=None, rgb=True):
    h, w = size
    points = np.zeros((h, w, 3), np.float32)
    points[..., 0], points[..., 1] = np.meshgrid(np.arange(1, w + 1) * 1e-3, np.arange(1, h + 1) * 1e-3)
    points[..., 2] = 0.6
    points[0, 0] = 0  # one missing point
    (folder / split / defect / "xyz").mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / split / defect / "xyz" / f"{stem}.tiff", points, photometric="rgb")
    if rgb:
        (folder / split / defect / "rgb").mkdir(exist_ok=True)
        Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(folder / split / defect / "rgb" / f"{stem}.png")
    if gt is not None:
        (folder / split / defect / "gt").mkdir(exist_ok=True)
        Image.fromarray(gt.astype(np.uint8)).save(folder / split / defect / "gt" / f"{stem}.png")
    return points


def test_mvtec_layout_made_here(tmp_path):
    part = tmp_path / "data" / "part"
    points = _write_mvtec_sample(part, "train", "good", "000", rgb=False)
    _write_mvtec_sample(part, "test", "good", "000")  # no gt file
    ids = np.zeros((8, 8), np.uint8)
    ids[2:4, 3:5] = 254
    _write_mvtec_sample(part, "test", "crack", "000", gt=ids)
    train = open_dataset(tmp_path / "data", "part", "train")[0]
    np.testing.assert_array_equal(train.points, points)
    assert train.rgb is None and not train.gt.any()
    crack, good = open_dataset(tmp_path / "data", "part", "test")  # sorted by defect type
    assert good.label == 0 and not good.gt.any() and good.rgb.shape == (8, 8, 3)
    assert crack.label == 1 and crack.defect == "crack"
    np.testing.assert_array_equal(crack.gt, ids > 0)


def test_mvtec_relative_root(tmp_path, monkeypatch):
    """A root given relative to the working folder is recognised (it once joined the folder twice)."""
    _write_mvtec_sample(tmp_path / "data" / "part", "train", "good", "000", rgb=False)
    monkeypatch.chdir(tmp_path)
    assert list_categories(Path("data")) == ["part"]
    assert len(open_dataset("data", "part", "train")) == 1


def test_mvtec_gt_size_mismatch(tmp_path):
    part = tmp_path / "part"
    _write_mvtec_sample(part, "test", "hole", "000", gt=np.ones((6, 8), np.uint8))
    dataset = open_dataset(tmp_path, "part", "test")
    with pytest.raises(ValueError, match="gt image is 8x6") as info:
        dataset[0]
    assert "hole/gt/000.png" in str(info.value)


def test_mvtec_good_with_anomalous_gt_is_an_error(tmp_path):
    part = tmp_path / "part"
    _write_mvtec_sample(part, "test", "good", "000", gt=np.full((8, 8), 255, np.uint8))
    with pytest.raises(ValueError, match="label is 0") as info:
        open_dataset(tmp_path, "part", "test")[0]
    assert "good/xyz/000.tiff" in str(info.value)


# ----------------------------------------------------------------------------- Eyecandies, made here

H, W = 12, 16


def _eyecandies_depth():
    """A plane at 0.4 m with a dome towards the camera (depth in metres along the optical axis)."""
    v, u = np.mgrid[0:H, 0:W]
    dome = np.clip(1 - ((u - 8) ** 2 + (v - 6) ** 2) / 20.0, 0, None)
    return 0.4 - 0.01 * dome


def _write_eyecandies_sample(data: Path, stem: str, depth: np.ndarray, mask=None, kinds=None, png=True):
    data.mkdir(parents=True, exist_ok=True)
    low, high = float(depth.min()), float(depth.max())
    coded = np.round((depth - low) / (high - low) * 65535).astype(np.uint16)
    Image.fromarray(coded).save(data / f"{stem}_depth.png")
    (data / f"{stem}_info_depth.yaml").write_text(yaml.safe_dump({"normalization": {"min": low, "max": high}}))
    # every normal faces the camera: (0, 0, -1) in the camera frame, (0, 0, 1) in the PNG's frame
    Image.fromarray(np.tile(np.uint8([128, 128, 255]), (H, W, 1))).save(data / f"{stem}_normals.png")
    if png:
        Image.fromarray(np.full((H, W, 3), 40, np.uint8)).save(data / f"{stem}_image_4.png")
    if mask is not None:
        Image.fromarray(mask.astype(np.uint8) * 255).save(data / f"{stem}_mask.png")
    for kind, kind_mask in (kinds or {}).items():
        Image.fromarray(kind_mask.astype(np.uint8) * 255).save(data / f"{stem}_{kind}_mask.png")
    return (coded / 65535.0) * (high - low) + low  # the depth the reader must recover


@pytest.fixture
def eyecandies_root(tmp_path):
    root = tmp_path / "eyecandies"
    depth = _eyecandies_depth()
    empty = np.zeros((H, W), bool)
    bump = empty.copy()
    bump[5:7, 7:9] = True
    _write_eyecandies_sample(root / "CandyCane" / "train" / "data", "000", depth, mask=empty)
    _write_eyecandies_sample(root / "CandyCane" / "train" / "data", "001", depth)
    _write_eyecandies_sample(root / "CandyCane" / "val" / "data", "000", depth, mask=empty)
    public = root / "CandyCane" / "test_public" / "data"
    _write_eyecandies_sample(public, "000", depth, mask=empty, kinds={"bumps": empty, "colors": empty})
    _write_eyecandies_sample(public, "001", depth, mask=bump, kinds={"bumps": bump, "colors": empty})
    _write_eyecandies_sample(public, "002", depth, mask=bump, png=False)
    _write_eyecandies_sample(root / "CandyCane" / "test_private" / "data", "000", depth)
    return root


def test_eyecandies_back_projection_matches_the_official_formula():
    depth = _eyecandies_depth()
    intrinsics = np.array([[FOCAL_LENGTH, 0, W / 2, 0], [0, FOCAL_LENGTH, H / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    expected = np.zeros((H, W, 3))
    for v in range(H):  # the dataset's own per-pixel formula (identity pose), pixel centres at +0.5
        for u in range(W):
            d = depth[v, u]
            expected[v, u] = (d * np.linalg.inv(intrinsics) @ [u + 0.5, v + 0.5, 1, 1 / d])[:3]
    np.testing.assert_allclose(back_project(depth), expected, rtol=1e-6)


def test_eyecandies_layout(eyecandies_root):
    assert list_categories(eyecandies_root) == ["CandyCane"]
    assert detect_layout(eyecandies_root / "CandyCane").name == "eyecandies"
    train = open_dataset(eyecandies_root, "CandyCane", "train")
    assert train.labels == [0, 0] and train.defect_counts() == {"good": 2}
    scan = train[0]
    recovered = _write_eyecandies_sample(eyecandies_root / "copy", "x", _eyecandies_depth())
    np.testing.assert_allclose(scan.points, back_project(recovered), rtol=1e-6)
    assert scan.num_valid == H * W and scan.rgb.shape == (H, W, 3) and not scan.gt.any()
    np.testing.assert_allclose(scan.normals.reshape(-1, 3), np.tile([0, 0, -1], (H * W, 1)), atol=0.01)
    assert not train[1].gt.any()  # no mask file in train: good
    assert len(open_dataset(eyecandies_root, "CandyCane", "val")) == 1
    assert open_dataset(eyecandies_root, "CandyCane", "validation").split == "validation"


def test_eyecandies_labels_from_masks(eyecandies_root):
    test = open_dataset(eyecandies_root, "CandyCane", "test")
    assert open_dataset(eyecandies_root, "CandyCane", "test_public").split == "test"
    assert test.labels == [0, 1, 1]
    assert [sample.defect for sample in test.samples] == ["good", "bumps", "anomalous"]
    good, bumps, unknown_kind = test
    assert not good.gt.any() and bumps.gt.sum() == 4 and bumps.defect == "bumps"
    assert unknown_kind.rgb is None
    private = open_dataset(eyecandies_root, "CandyCane", "test_private")
    assert private.labels == [None] and private[0].gt is None and private[0].label is None


def test_eyecandies_bad_files(eyecandies_root):
    data = eyecandies_root / "CandyCane" / "train" / "data"
    (data / "000_info_depth.yaml").write_text("normalization: {min: 0.3}\n")
    with pytest.raises(ValueError, match="normalization.max") as info:
        open_dataset(eyecandies_root, "CandyCane", "train")[0]
    assert "000_info_depth.yaml" in str(info.value)
    (data / "000_info_depth.yaml").write_text("normalization: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        open_dataset(eyecandies_root, "CandyCane", "train")[0]
    (data / "001_info_depth.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="001_info_depth.yaml"):
        open_dataset(eyecandies_root, "CandyCane", "train")[1]
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(data / "000_depth.png")
    (data / "000_info_depth.yaml").write_text("normalization: {min: 0.3, max: 0.5}\n")
    with pytest.raises(ValueError, match="single-channel 16-bit") as info:
        open_dataset(eyecandies_root, "CandyCane", "train")[0]
    assert "000_depth.png" in str(info.value)
    with pytest.raises(ValueError, match="even sizes"):
        back_project(np.full((5, 4), 0.4))


# ----------------------------------------------------------------------------- Real3D-AD, made here


def _write_pcd(path: Path, points: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    head = (f"VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {len(points)}\nHEIGHT 1\n"
            f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(points)}\nDATA ascii\n")
    path.write_text(head + "".join(f"{x} {y} {z}\n" for x, y, z in points.tolist()))


@pytest.fixture
def real3d_root(tmp_path, rng):
    root = tmp_path / "real3d"
    cloud = rng.uniform(1, 30, size=(40, 3)).round(3)
    _write_pcd(root / "duck" / "train" / "1_template.pcd", cloud)
    _write_pcd(root / "duck" / "train" / "2_prototype.pcd", cloud + 1)
    _write_pcd(root / "duck" / "test" / "3_good.pcd", cloud)
    _write_pcd(root / "duck" / "test" / "4_bulge.pcd", cloud)
    _write_pcd(root / "duck" / "test" / "5_sink.pcd", cloud)
    _write_pcd(root / "duck" / "test" / "6_temp.pcd", cloud)
    labels = (np.arange(45) % 9 == 0).astype(int)
    moved = np.vstack([cloud, cloud[:5] + 0.5])
    (root / "duck" / "gt").mkdir()
    (root / "duck" / "gt" / "4_bulge.txt").write_text(
        "".join(f"{x} {y} {z} {label}\n" for (x, y, z), label in zip(moved.tolist(), labels)))
    (root / "duck" / "gt" / "5_sink.txt").write_text(
        "".join(f"{x},{y},{z},{label}\n" for (x, y, z), label in zip(moved.tolist(), labels)))
    return root, cloud, moved, labels


def test_real3d_layout(real3d_root):
    root, cloud, moved, labels = real3d_root
    assert detect_layout(root / "duck").name == "real3d"
    train = open_dataset(root, "duck", "train")
    assert [s.id for s in train.samples] == ["train/1_template", "train/2_prototype"]
    np.testing.assert_allclose(train[1].points, cloud + 1, rtol=1e-6)
    test = open_dataset(root, "duck", "test")
    assert [s.id for s in test.samples] == ["test/3_good", "test/4_bulge", "test/5_sink"]  # temp skipped
    assert test.labels == [0, 1, 1] and test.defect_counts() == {"bulge": 1, "good": 1, "sink": 1}
    good, bulge, sink = test
    assert not good.is_organized and good.gt.shape == (40,) and not good.gt.any()
    for scan in (bulge, sink):  # the gt table replaces the PCD's points
        np.testing.assert_allclose(scan.points, moved, rtol=1e-6)
        np.testing.assert_array_equal(scan.gt, labels == 1)
    assert describe(root)["categories"]["duck"]["points"] == [40, 45]


def test_real3d_bad_gt(real3d_root):
    root = real3d_root[0]
    (root / "duck" / "gt" / "5_sink.txt").unlink()
    with pytest.raises(FileNotFoundError, match="5_sink.txt"):
        open_dataset(root, "duck", "test")[2]
    (root / "duck" / "gt" / "4_bulge.txt").write_text("1 2 3 0\n1 2 3\n")
    with pytest.raises(ValueError, match="x y z label") as info:
        open_dataset(root, "duck", "test")[1]
    assert "4_bulge.txt" in str(info.value)
    (root / "duck" / "gt" / "4_bulge.txt").write_text("1 2 3 0\n1 2 nan 1\n")
    with pytest.raises(ValueError, match="NaN"):
        open_dataset(root, "duck", "test")[1]
    (root / "duck" / "gt" / "4_bulge.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        open_dataset(root, "duck", "test")[1]


# ----------------------------------------------------------------------------- detection and bad input


def test_mixed_root(tmp_path, eyecandies_root, real3d_root):
    _write_mvtec_sample(tmp_path / "eyecandies" / "part", "train", "good", "000")
    (real3d_root[0] / "duck").rename(tmp_path / "eyecandies" / "duck")
    description = describe(tmp_path / "eyecandies", scans_per_category=1)
    assert description["layout"] == "mixed"
    assert {name: entry["layout"] for name, entry in description["categories"].items()} == {
        "CandyCane": "Eyecandies", "duck": "Real3D-AD", "part": "MVTec 3D-AD"}
    assert description["categories"]["CandyCane"]["grid"] == [[H, W]]
    assert "duck (Real3D-AD)" in format_description(description)


def test_unknown_layout_and_missing_paths(tmp_path):
    (tmp_path / "stuff" / "train").mkdir(parents=True)
    (tmp_path / "stuff" / "train" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="no dataset category found") as info:
        list_categories(tmp_path)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(ValueError, match="unknown dataset layout") as info:
        open_dataset(tmp_path, "stuff", "train")
    assert "stuff" in str(info.value)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        open_dataset(tmp_path / "nope", "stuff", "train")
    with pytest.raises(NotADirectoryError):
        describe(tmp_path / "stuff" / "train" / "notes.txt")


def test_category_root_hint_and_bad_split(mvtec_tiny):
    with pytest.raises(ValueError, match="pass its parent"):
        list_categories(mvtec_tiny / "cable_gland")
    with pytest.raises(FileNotFoundError, match="no category 'cable'.*cable_gland"):
        open_dataset(mvtec_tiny, "cable", "train")
    with pytest.raises(ValueError, match="no split 'tset'.*train, validation, test"):
        open_dataset(mvtec_tiny, "cable_gland", "tset")
    with pytest.raises(TypeError, match="integer"):
        open_dataset(mvtec_tiny, "cable_gland", "test")["0"]
