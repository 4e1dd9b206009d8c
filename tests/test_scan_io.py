"""Scan validation, scan readers (TIFF, NPY, NPZ, PLY, PCD), writers, and bad input."""
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from iaenet.data.io import (prepare_output_folder, read_mask_png, read_rgb_png, read_scan, read_score_map,
                            read_scored_cloud, read_xyz_tiff, write_mask_png, write_score_map, write_scored_cloud,
                            write_xyz_tiff)
from iaenet.data.ply import read_ply_vertices
from iaenet.data.scan import Scan


def _cloud(rng, n=50):
    return rng.uniform(0.01, 1.0, size=(n, 3)).astype(np.float32)


def _grid(rng, h=6, w=5, missing=0.3):
    points = rng.uniform(0.01, 1.0, size=(h, w, 3)).astype(np.float32)
    points[rng.random((h, w)) < missing] = 0
    points[0, 0] = (0.5, 0.5, 0.5)  # at least one valid point
    return points


# ----------------------------------------------------------------------------- Scan

def test_scan_organized_valid_points(rng):
    points = _grid(rng)
    points[1, 2] = (0.3, 0.0, 0.7)  # one zero coordinate: missing, as in the references
    scan = Scan(points=points, name="s")
    assert scan.is_organized
    expected = np.all(points != 0, axis=-1)
    np.testing.assert_array_equal(scan.valid_mask, expected)
    assert scan.num_valid == expected.sum()
    valid, index = scan.valid_points()
    assert valid.shape == (expected.sum(), 3) and valid.dtype == np.float32
    np.testing.assert_array_equal(index, np.flatnonzero(expected))
    np.testing.assert_array_equal(valid, points.reshape(-1, 3)[index])


def test_scan_unorganized_and_float64_conversion(rng):
    points = _cloud(rng).astype(np.float64)
    points[3] = 0
    scan = Scan(points=points, gt=np.zeros(len(points), bool), label=0, defect="good")
    assert not scan.is_organized and scan.points.dtype == np.float32
    assert scan.num_valid == len(points) - 1
    assert scan.valid_points()[1].tolist() == [i for i in range(len(points)) if i != 3]


def test_scan_is_frozen(rng):
    scan = Scan(points=_cloud(rng))
    with pytest.raises(AttributeError):
        scan.label = 1


@pytest.mark.parametrize("points, error, words", [
    (np.ones((4, 3), dtype=np.int32), TypeError, "floating point"),
    (np.ones((4, 2), dtype=np.float32), ValueError, "shape"),
    (np.ones((2, 2, 2, 3), dtype=np.float32), ValueError, "shape"),
    (np.zeros((0, 3), dtype=np.float32), ValueError, "empty"),
    (np.zeros((4, 3), dtype=np.float32), ValueError, "no valid point"),
    ([[1.0, 1.0, 1.0]], TypeError, "numpy array"),
])
def test_scan_rejects_bad_points(points, error, words):
    with pytest.raises(error, match=words) as info:
        Scan(points=points, name="scan-7")
    assert "scan-7" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_scan_rejects_non_finite(rng, bad):
    points = _grid(rng)
    points[2, 1, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite") as info:
        Scan(points=points, name="part-3")
    assert "part-3" in str(info.value)


def test_scan_rejects_bad_companions(rng):
    points = _grid(rng, 6, 5)
    with pytest.raises(ValueError, match="rgb shape"):
        Scan(points=points, rgb=np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        Scan(points=points, rgb=np.zeros((6, 5, 3), np.float32))
    with pytest.raises(ValueError, match="organized"):
        Scan(points=_cloud(rng), rgb=np.zeros((50, 1, 3), np.uint8))
    with pytest.raises(TypeError, match="bool"):
        Scan(points=points, gt=np.zeros((6, 5), np.uint8))
    with pytest.raises(ValueError, match="gt shape"):
        Scan(points=points, gt=np.zeros((5, 6), bool))
    with pytest.raises(ValueError, match="normals shape"):
        Scan(points=points, normals=np.zeros((6, 4, 3), np.float32))
    with pytest.raises(ValueError, match="label"):
        Scan(points=points, label=2)
    with pytest.raises(ValueError, match="label"):
        Scan(points=points, label=True)
    gt = np.zeros((6, 5), bool)
    gt[1, 1] = True
    with pytest.raises(ValueError, match="label is 0"):
        Scan(points=points, gt=gt, label=0)
    assert Scan(points=points, gt=gt, label=np.int64(1)).label == 1


# ----------------------------------------------------------------------------- readers on real data

def test_read_real_mvtec_tiff(mvtec_tiny):
    path = mvtec_tiny / "cable_gland" / "test" / "hole" / "xyz" / "000.tiff"
    scan = read_scan(path)
    assert scan.points.shape == (100, 100, 3) and scan.points.dtype == np.float32
    assert scan.name == str(path) and scan.label is None
    z = scan.valid_points()[0][:, 2]
    assert 0.5 < z.min() < z.max() < 0.8  # metres from the sensor
    gt = read_mask_png(mvtec_tiny / "cable_gland" / "test" / "hole" / "gt" / "000.png")
    assert gt.shape == (100, 100) and gt.dtype == bool and gt.any()
    rgb = read_rgb_png(mvtec_tiny / "cable_gland" / "test" / "hole" / "rgb" / "000.png")
    assert rgb.shape == (100, 100, 3) and rgb.dtype == np.uint8


# ----------------------------------------------------------------------------- round trips

def test_npy_round_trip(tmp_path, rng):
    for points in (_grid(rng), _cloud(rng)):
        np.save(tmp_path / "p.npy", points)
        np.testing.assert_array_equal(read_scan(tmp_path / "p.npy").points, points)


def test_npz_with_rgb_gt_normals(tmp_path, rng):
    points = _grid(rng, 4, 3)
    gt_ids = np.zeros((4, 3), np.uint8)
    gt_ids[1, 2] = 253
    normals = np.tile(np.float32([0, 0, -1]), (4, 3, 1))
    rgb = rng.integers(0, 256, (4, 3, 3), dtype=np.uint8)
    np.savez(tmp_path / "s.npz", points=points, rgb=rgb, gt=gt_ids, normals=normals)
    scan = read_scan(tmp_path / "s.npz")
    np.testing.assert_array_equal(scan.points, points)
    np.testing.assert_array_equal(scan.rgb, rgb)
    np.testing.assert_array_equal(scan.gt, gt_ids > 0)
    np.testing.assert_array_equal(scan.normals, normals)


def _write_ply(path, points, fmt, extra_element=False):
    n = len(points)
    header = ["ply", f"format {fmt} 1.0", "comment test", "element vertex %d" % n,
              "property float x", "property float y", "property float z", "property uchar red"]
    if extra_element:
        header += ["element face 1", "property list uchar int vertex_indices"]
    header.append("end_header")
    head = ("\n".join(header) + "\n").encode()
    if fmt == "ascii":
        body = "".join(f"{x} {y} {z} 7\n" for x, y, z in points.tolist())
        body += "3 0 1 2\n" if extra_element else ""
        path.write_bytes(head + body.encode())
        return
    order = "<" if fmt == "binary_little_endian" else ">"
    record = np.zeros(n, dtype=[("x", order + "f4"), ("y", order + "f4"), ("z", order + "f4"), ("red", "u1")])
    record["x"], record["y"], record["z"], record["red"] = points[:, 0], points[:, 1], points[:, 2], 7
    tail = bytes([3]) + np.array([0, 1, 2], order + "i4").tobytes() if extra_element else b""
    path.write_bytes(head + record.tobytes() + tail)


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian", "binary_big_endian"])
def test_ply_formats(tmp_path, rng, fmt):
    points = _cloud(rng)
    _write_ply(tmp_path / "c.ply", points, fmt, extra_element=True)
    scan = read_scan(tmp_path / "c.ply")
    np.testing.assert_allclose(scan.points, points, rtol=1e-6)
    assert scan.normals is None and not scan.is_organized


def test_ply_written_by_open3d(tmp_path, rng):
    o3d = pytest.importorskip("open3d")
    points = _cloud(rng).astype(np.float64)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    cloud.normals = o3d.utility.Vector3dVector(np.tile([0.0, 0.6, 0.8], (len(points), 1)))
    for ascii_ in (True, False):
        o3d.io.write_point_cloud(str(tmp_path / "o.ply"), cloud, write_ascii=ascii_)
        scan = read_scan(tmp_path / "o.ply")
        np.testing.assert_allclose(scan.points, points, atol=1e-6)  # Open3D's ascii has 6 decimals
        np.testing.assert_allclose(scan.normals[:, 1:], np.tile([0.6, 0.8], (len(points), 1)), rtol=1e-6)


def _ascii_ply(properties: str, row: str) -> bytes:
    return (f"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\n"
            f"{properties}end_header\n1 2 3 {'0 ' * properties.count('property')}\n1 2 3 {row}\n").encode()


@pytest.mark.parametrize("declared, value, allowed", [
    ("uchar", "300", "0..255"), ("uchar", "-1", "0..255"), ("char", "128", "-128..127"),
    ("ushort", "70000", "0..65535"), ("int", "1.5", "whole numbers"), ("uint", "nan", "whole numbers"),
    ("int", "inf", "whole numbers"), ("float", "1e39", "within"),
])
def test_ascii_ply_value_outside_its_type(tmp_path, declared, value, allowed):
    # the cast used to wrap (uchar 300 read as 44) or turn into inf without a word
    (tmp_path / "v.ply").write_bytes(_ascii_ply(f"property {declared} red\n", value))
    _raises_naming(tmp_path / "v.ply", ValueError,
                   rf"element 'vertex' property 'red' \(\w+\) holds {value} on vertex line 2.*{allowed}")


def test_ascii_ply_values_at_the_limits_of_their_type(tmp_path):
    (tmp_path / "v.ply").write_bytes(_ascii_ply("property uchar a\nproperty char b\nproperty float c\n",
                                                "255 -128 3.4e38"))
    vertices = read_ply_vertices(tmp_path / "v.ply")
    assert vertices["a"][1] == 255 and vertices["b"][1] == -128 and vertices["c"].dtype == np.float32


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian"])
@pytest.mark.parametrize("twice", ["property float x", "property uchar red", "property list uchar int red"])
def test_ply_property_declared_twice(tmp_path, rng, fmt, twice):
    _write_ply(tmp_path / "ok.ply", _cloud(rng, 3), fmt)
    data = (tmp_path / "ok.ply").read_bytes()
    name = twice.split()[-1]
    (tmp_path / "twice.ply").write_bytes(data.replace(b"end_header", twice.encode() + b"\nend_header"))
    _raises_naming(tmp_path / "twice.ply", ValueError, f"element 'vertex' declares property '{name}' twice")


def _pcd_header(fields, sizes, types, counts, width, height, data):
    return ("# .PCD v0.7\nVERSION 0.7\n"
            f"FIELDS {' '.join(fields)}\nSIZE {' '.join(map(str, sizes))}\nTYPE {' '.join(types)}\n"
            f"COUNT {' '.join(map(str, counts))}\nWIDTH {width}\nHEIGHT {height}\n"
            f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {width * height}\nDATA {data}\n").encode()


def test_pcd_ascii_and_binary(tmp_path, rng):
    points = _cloud(rng, 20)
    head = _pcd_header(["x", "y", "z", "intensity"], [4, 4, 4, 2], ["F", "F", "F", "U"], [1, 1, 1, 1],
                       20, 1, "ascii")
    body = "".join(f"{x:.9g} {y:.9g} {z:.9g} 5\n" for x, y, z in points.tolist())
    (tmp_path / "a.pcd").write_bytes(head + body.encode())
    np.testing.assert_allclose(read_scan(tmp_path / "a.pcd").points, points, rtol=1e-7)

    record = np.zeros(20, dtype=[("x", "<f8"), ("y", "<f8"), ("z", "<f8"), ("hist", "<f4", (3,))])
    record["x"], record["y"], record["z"] = points.T
    head = _pcd_header(["x", "y", "z", "hist"], [8, 8, 8, 4], ["F", "F", "F", "F"], [1, 1, 1, 3], 20, 1, "binary")
    (tmp_path / "b.pcd").write_bytes(head + record.tobytes())
    np.testing.assert_allclose(read_scan(tmp_path / "b.pcd").points, points, rtol=1e-7)


def test_pcd_organized_nan_means_missing(tmp_path, rng):
    grid = _grid(rng, 3, 4, missing=0.0)
    grid[1, 2] = np.nan
    head = _pcd_header(["x", "y", "z"], [4, 4, 4], ["F", "F", "F"], [1, 1, 1], 4, 3, "binary")
    (tmp_path / "o.pcd").write_bytes(head + grid.astype("<f4").tobytes())
    scan = read_scan(tmp_path / "o.pcd")
    assert scan.points.shape == (3, 4, 3)
    assert not scan.valid_mask[1, 2] and scan.num_valid == 11
    np.testing.assert_array_equal(scan.points[0], grid[0])


def test_pcd_written_by_open3d_including_compressed(tmp_path, rng):
    o3d = pytest.importorskip("open3d")
    points = _cloud(rng, 200).astype(np.float64)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    for ascii_, compressed in ((True, False), (False, False), (False, True)):
        o3d.io.write_point_cloud(str(tmp_path / "o.pcd"), cloud, write_ascii=ascii_, compressed=compressed)
        np.testing.assert_allclose(read_scan(tmp_path / "o.pcd").points, points, atol=1e-6)


def test_score_map_round_trip(tmp_path, rng):
    score_map = rng.random((7, 9))
    path = write_score_map(tmp_path / "maps" / "a" / "000.tiff", score_map)
    back = read_score_map(path)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, score_map.astype(np.float32))
    assert tifffile.imread(path).dtype == np.float32


def test_xyz_tiff_and_mask_round_trip(tmp_path, rng):
    points = _grid(rng)
    path = write_xyz_tiff(tmp_path / "cat" / "xyz" / "000.tiff", points.astype(np.float64))
    np.testing.assert_array_equal(read_xyz_tiff(path), points)
    assert write_xyz_tiff(tmp_path / "again.tiff", points).read_bytes() == path.read_bytes()  # no time stamps
    mask = rng.random((6, 5)) < 0.4
    mask_path = write_mask_png(tmp_path / "cat" / "gt" / "000.png", mask)
    np.testing.assert_array_equal(read_mask_png(mask_path), mask)
    assert set(np.unique(np.asarray(Image.open(mask_path)))) <= {0, 255}


def test_prepare_output_folder(tmp_path):
    out = tmp_path / "out"
    assert prepare_output_folder(out, ["a"], overwrite=False).is_dir()
    (out / "a" / "x").mkdir(parents=True)
    (out / "keep").mkdir()
    with pytest.raises(FileExistsError, match="not empty; pass overwrite=True to replace a/x"):
        prepare_output_folder(out, ["a/x"], overwrite=False)
    prepare_output_folder(out, ["a/x"], overwrite=True)
    assert (out / "a").is_dir() and not (out / "a" / "x").exists() and (out / "keep").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="not a folder"):
        prepare_output_folder(tmp_path / "file", [], overwrite=True)

def test_scored_cloud_round_trip(tmp_path, rng):
    points, scores = _cloud(rng), rng.random(50).astype(np.float32)
    path = write_scored_cloud(tmp_path / "out" / "c.ply", points, scores)
    back_points, back_scores = read_scored_cloud(path)
    np.testing.assert_array_equal(back_points, points)
    np.testing.assert_array_equal(back_scores, scores)
    assert b"property float scalar_score" in path.read_bytes()[:300]
    np.testing.assert_array_equal(read_scan(path).points, points)


def test_scored_cloud_readable_by_open3d(tmp_path, rng):
    o3d = pytest.importorskip("open3d")
    points, scores = _cloud(rng), rng.random(50).astype(np.float32)
    path = write_scored_cloud(tmp_path / "c.ply", points, scores)
    cloud = o3d.t.io.read_point_cloud(str(path))
    np.testing.assert_array_equal(cloud.point.positions.numpy(), points)
    np.testing.assert_array_equal(cloud.point.scalar_score.numpy().ravel(), scores)


# ----------------------------------------------------------------------------- bad input

def _raises_naming(path, error, words, reader=read_scan):
    with pytest.raises(error, match=words) as info:
        reader(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("suffix", [".tiff", ".npy", ".npz", ".ply", ".pcd"])
def test_missing_file(tmp_path, suffix):
    _raises_naming(tmp_path / f"nothing{suffix}", FileNotFoundError, "no such file")


def test_unknown_suffix_and_folder(tmp_path):
    (tmp_path / "c.xyz").write_text("1 2 3\n")
    _raises_naming(tmp_path / "c.xyz", ValueError, "unknown scan file type")
    (tmp_path / "d.ply").mkdir()
    _raises_naming(tmp_path / "d.ply", FileNotFoundError, "not a file")


def test_truncated_and_corrupt_tiff(tmp_path, mvtec_tiny):
    data = (mvtec_tiny / "cable_gland" / "train" / "good" / "xyz" / "000.tiff").read_bytes()
    for name, content in (("half.tiff", data[: len(data) // 2]), ("head.tiff", data[:100]),
                          ("empty.tiff", b""), ("text.tiff", b"hello, not a tiff")):
        (tmp_path / name).write_bytes(content)
        _raises_naming(tmp_path / name, ValueError, "TIFF")
    garbled = bytearray(data)
    garbled[200:400] = b"\xff" * 200  # the tag table
    (tmp_path / "garbled.tiff").write_bytes(bytes(garbled))
    _raises_naming(tmp_path / "garbled.tiff", ValueError, "TIFF")


def test_tiff_wrong_shape_dtype_and_nan(tmp_path):
    tifffile.imwrite(tmp_path / "gray.tiff", np.ones((5, 5), np.float32))
    _raises_naming(tmp_path / "gray.tiff", ValueError, "shape")
    tifffile.imwrite(tmp_path / "int.tiff", np.ones((5, 5, 3), np.uint16), photometric="rgb")
    _raises_naming(tmp_path / "int.tiff", TypeError, "float")
    grid = np.ones((5, 5, 3), np.float32)
    grid[2, 2, 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tiff", grid, photometric="rgb")
    _raises_naming(tmp_path / "nan.tiff", ValueError, "NaN")
    tifffile.imwrite(tmp_path / "zero.tiff", np.zeros((5, 5, 3), np.float32), photometric="rgb")
    with pytest.raises(ValueError, match="no valid point") as info:
        read_scan(tmp_path / "zero.tiff")
    assert "zero.tiff" in str(info.value)


def test_bad_npy_and_npz(tmp_path, rng):
    np.save(tmp_path / "int.npy", np.ones((4, 3), np.int64))
    _raises_naming(tmp_path / "int.npy", TypeError, "float")
    np.save(tmp_path / "flat.npy", np.ones((4, 2), np.float32))
    _raises_naming(tmp_path / "flat.npy", ValueError, "shape")
    cloud = _cloud(rng)
    cloud[4, 2] = np.inf
    np.save(tmp_path / "inf.npy", cloud)
    _raises_naming(tmp_path / "inf.npy", ValueError, "NaN or infinite")
    np.save(tmp_path / "ok.npy", _cloud(rng, 1000))
    data = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:2000])
    _raises_naming(tmp_path / "cut.npy", ValueError, "cannot read NPY")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    _raises_naming(tmp_path / "obj.npy", ValueError, "cannot read NPY")

    np.savez(tmp_path / "nopoints.npz", xyz=_cloud(rng))
    _raises_naming(tmp_path / "nopoints.npz", ValueError, "no 'points'")
    np.savez(tmp_path / "ok.npz", points=_cloud(rng, 1000))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "ok.npz").read_bytes()[:3000])
    _raises_naming(tmp_path / "cut.npz", ValueError, "cannot read NPZ")
    np.savez(tmp_path / "badgt.npz", points=_grid(rng, 3, 3), gt=np.ones((3, 3), np.float32))
    _raises_naming(tmp_path / "badgt.npz", TypeError, "gt")
    np.savez(tmp_path / "badrgb.npz", points=_grid(rng, 3, 3), rgb=np.ones((3, 3, 3), np.float32))
    _raises_naming(tmp_path / "badrgb.npz", TypeError, "uint8")


def test_damaged_npy_header_and_npz_archive(tmp_path, rng):
    # errors numpy and zipfile raise for damaged files beyond ValueError/OSError
    np.save(tmp_path / "ok.npy", _cloud(rng))
    data = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "brace.npy").write_bytes(data.replace(b"}", b"(", 1))  # header literal never closes
    _raises_naming(tmp_path / "brace.npy", ValueError, "cannot read NPY")
    np.savez_compressed(tmp_path / "ok.npz", points=_cloud(rng, 1000))
    data = (tmp_path / "ok.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "ok.npz") as archive:
        local = archive.infolist()[0].header_offset
    # the deflate stream follows the local header: 30 bytes, then name and extra field of the lengths at +26, +28
    start = local + 30 + int.from_bytes(data[local + 26:local + 28], "little") + \
        int.from_bytes(data[local + 28:local + 30], "little")
    (tmp_path / "inflate.npz").write_bytes(data[:start] + b"\x00\xff" * 4 + data[start + 8:])
    _raises_naming(tmp_path / "inflate.npz", ValueError, "cannot read NPZ")
    directory = data.rfind(b"PK\x01\x02")  # central directory entry; its method field is at +10
    unknown = data[:directory + 10] + (99).to_bytes(2, "little") + data[directory + 12:]
    (tmp_path / "method.npz").write_bytes(unknown)
    _raises_naming(tmp_path / "method.npz", ValueError, "cannot read NPZ")


def test_npz_and_npy_with_each_others_suffix(tmp_path, rng):
    np.savez(tmp_path / "scan.npz", points=_cloud(rng), rgb=np.zeros((50, 3), np.uint8))
    (tmp_path / "scan.npz").rename(tmp_path / "archive.npy")
    _raises_naming(tmp_path / "archive.npy", ValueError, r"holds an NPZ archive \(arrays: points, rgb\).*\.npz")
    np.save(tmp_path / "cloud.npy", _cloud(rng))
    (tmp_path / "cloud.npy").rename(tmp_path / "array.npz")
    _raises_naming(tmp_path / "array.npz", ValueError, r"holds a single NPY array \(shape \(50, 3\), dtype float32\)"
                   r".*\.npy")


def test_bad_ply(tmp_path, rng):
    points = _cloud(rng)
    _write_ply(tmp_path / "ok.ply", points, "binary_little_endian")
    data = (tmp_path / "ok.ply").read_bytes()
    cases = {
        "cut.ply": (data[:-10], "truncated"),
        "noheaderend.ply": (data[:60], "end_header"),
        "notply.ply": (b"solid stl file\n" + data, "not a PLY"),
        "empty.ply": (b"", "not a PLY"),
        "badformat.ply": (data.replace(b"binary_little_endian", b"binary_middle_endian"), "format"),
        "badtype.ply": (data.replace(b"property uchar red", b"property quad red"), "header"),
        "novertex.ply": (b"ply\nformat ascii 1.0\nelement face 0\nend_header\n", "no 'vertex'"),
        "noz.ply": (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                    b"end_header\n1 2\n", "lacks z"),
        "nan.ply": (b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                    b"property float z\nend_header\n1 2 3\n1 nan 3\n", "NaN"),
        "words.ply": (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                      b"property float z\nend_header\n1 two 3\n", "not a number"),
        "short.ply": (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                      b"property float z\nend_header\n1 2 3\n", "truncated"),
        "ragged.ply": (b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                       b"property float z\nend_header\n1 2 3 4\n1 2\n", "malformed"),
        "listvertex.ply": (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\n"
                           b"property list uchar int idx\nend_header\n" + b"\0" * 20, "list properties"),
    }
    for name, (content, words) in cases.items():
        (tmp_path / name).write_bytes(content)
        _raises_naming(tmp_path / name, ValueError, words)


def test_bad_pcd(tmp_path, rng):
    points = _cloud(rng, 10)
    head = _pcd_header(["x", "y", "z"], [4, 4, 4], ["F", "F", "F"], [1, 1, 1], 10, 1, "binary")
    good = head + points.astype("<f4").tobytes()
    ascii_head = _pcd_header(["x", "y", "z"], [4, 4, 4], ["F", "F", "F"], [1, 1, 1], 2, 1, "ascii")
    cases = {
        "cut.pcd": (good[:-7], "truncated"),
        "noheader.pcd": (b"1 2 3\n4 5 6\n", "DATA"),
        "binary.pcd": (bytes(range(256)) * 4, "PCD"),
        "mismatch.pcd": (good.replace(b"POINTS 10", b"POINTS 11"), "POINTS"),
        "kind.pcd": (good.replace(b"DATA binary", b"DATA zipped"), "DATA kind"),
        "type.pcd": (good.replace(b"TYPE F F F", b"TYPE F F Q"), "field type"),
        "noxyz.pcd": (_pcd_header(["a", "b", "c"], [4, 4, 4], ["F", "F", "F"], [1, 1, 1], 10, 1, "binary")
                      + points.astype("<f4").tobytes(), "no x, y, z"),
        "partialnan.pcd": (ascii_head + b"1 2 3\n1 nan 3\n", "some but not all"),
        "inf.pcd": (ascii_head + b"1 2 3\n1 inf 3\n", "infinite"),
        "unorganizednan.pcd": (ascii_head + b"nan nan nan\nnan nan nan\n", "no valid point"),
        "shortascii.pcd": (ascii_head + b"1 2 3\n", "truncated"),
        "word.pcd": (ascii_head + b"1 2 3\n1 x 3\n", "not a number"),
    }
    for name, (content, words) in cases.items():
        (tmp_path / name).write_bytes(content)
        _raises_naming(tmp_path / name, ValueError, words)


def test_corrupt_compressed_pcd(tmp_path, rng):
    o3d = pytest.importorskip("open3d")
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(_cloud(rng, 500).astype(np.float64)))
    o3d.io.write_point_cloud(str(tmp_path / "c.pcd"), cloud, compressed=True)
    data = (tmp_path / "c.pcd").read_bytes()
    (tmp_path / "cut.pcd").write_bytes(data[: len(data) // 2])
    _raises_naming(tmp_path / "cut.pcd", ValueError, "could not be decoded")


def test_bad_images(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    for name in ("cut.png", "junk.png"):
        _raises_naming(tmp_path / name, ValueError, "cannot read image", reader=read_rgb_png)
        _raises_naming(tmp_path / name, ValueError, "cannot read image", reader=read_mask_png)
    _raises_naming(tmp_path / "none.png", FileNotFoundError, "no such file", reader=read_rgb_png)


def test_bad_writer_input(tmp_path, rng):
    with pytest.raises(ValueError, match="NaN") as info:
        write_score_map(tmp_path / "m.tiff", np.array([[0.1, np.nan]]))
    assert "m.tiff" in str(info.value)
    with pytest.raises(ValueError, match="2-D"):
        write_score_map(tmp_path / "m.tiff", np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="numeric"):
        write_score_map(tmp_path / "m.tiff", [[0.1, 0.2]])
    points = _cloud(rng)
    with pytest.raises(ValueError, match="shape"):
        write_scored_cloud(tmp_path / "c.ply", points, np.zeros(49))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        write_scored_cloud(tmp_path / "c.ply", points[:, :2], np.zeros(50))
    with pytest.raises(ValueError, match="infinite"):
        write_scored_cloud(tmp_path / "c.ply", points, np.full(50, np.inf))
    with pytest.raises(ValueError, match=".ply"):
        write_scored_cloud(tmp_path / "c.pcd", points, np.zeros(50))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        write_xyz_tiff(tmp_path / "x.tiff", points)
    with pytest.raises(TypeError, match="float"):
        write_xyz_tiff(tmp_path / "x.tiff", np.ones((2, 2, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="NaN"):
        write_xyz_tiff(tmp_path / "x.tiff", np.full((2, 2, 3), np.nan, dtype=np.float32))
    with pytest.raises(TypeError, match="bool"):
        write_mask_png(tmp_path / "m.png", np.ones((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        write_mask_png(tmp_path / "m.png", np.ones((2, 2, 1), dtype=bool))
    assert not list(Path(tmp_path).iterdir())  # nothing half-written
    _write_ply(tmp_path / "plain.ply", points, "ascii")
    _raises_naming(tmp_path / "plain.ply", ValueError, "scalar_score", reader=read_scored_cloud)
