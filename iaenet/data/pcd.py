"""PCD (Point Cloud Library) reading in numpy: DATA ascii and binary; binary_compressed via Open3D.

PCL marks a missing point of an organized cloud (HEIGHT > 1) by NaN in all of x, y, z; such
points become zeros, iaenet's "missing" marker. A point with only some coordinates NaN, or an
infinite coordinate, is an error. Every error is a ValueError that names the file and the problem.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

_MAX_HEADER_LINES = 64  # a PCD header has 10-11 lines; stop early on garbage
_TYPE_CODES = {"F": "f", "I": "i", "U": "u"}


def read_pcd(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read the points (and normals when present) of a PCD file.

    Returns:
        points: (H, W, 3) float32 for an organized cloud (HEIGHT > 1), else (N, 3) float32,
            zeros where PCL stored a NaN point.
        normals: the same layout from the fields normal_x/y/z, or None if absent.
    """
    path = Path(path)
    data = path.read_bytes()
    header, body_start = _parse_header(data, path)
    fields = _read_fields(data[body_start:], header, path)
    points = _stack(fields, ("x", "y", "z"), path)
    if points is None:
        raise ValueError(f"{path}: PCD file has no x, y, z fields (fields: {', '.join(header['FIELDS'])})")
    normals = _stack(fields, ("normal_x", "normal_y", "normal_z"), path)
    points, normals = _missing_to_zero(points, normals, path)
    width, height = header["WIDTH"], header["HEIGHT"]
    if height > 1:
        points = points.reshape(height, width, 3)
        normals = None if normals is None else normals.reshape(height, width, 3)
    return points, normals


def _parse_header(data: bytes, path: Path) -> tuple[dict, int]:
    header: dict = {}
    offset = 0
    for _ in range(_MAX_HEADER_LINES):
        newline = data.find(b"\n", offset)
        if newline < 0:
            raise ValueError(f"{path}: PCD header ends before its DATA line (truncated or not a PCD file)")
        try:
            line = data[offset:newline].decode("ascii").strip()
        except UnicodeDecodeError:
            raise ValueError(f"{path}: PCD header is not ASCII text (not a PCD file or corrupt)") from None
        offset = newline + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        header[key] = values
        if key == "DATA":
            return _typed_header(header, path), offset
    raise ValueError(f"{path}: no DATA line in the first {_MAX_HEADER_LINES} lines (not a PCD file)")


def _typed_header(raw: dict, path: Path) -> dict:
    missing = [key for key in ("FIELDS", "SIZE", "TYPE", "WIDTH", "HEIGHT", "DATA") if key not in raw]
    if missing:
        raise ValueError(f"{path}: PCD header lacks {', '.join(missing)}")
    fields = raw["FIELDS"]
    try:
        header = {
            "FIELDS": fields,
            "SIZE": [int(v) for v in raw["SIZE"]],
            "TYPE": raw["TYPE"],
            "COUNT": [int(v) for v in raw.get("COUNT", ["1"] * len(fields))],
            "WIDTH": int(raw["WIDTH"][0]),
            "HEIGHT": int(raw["HEIGHT"][0]),
            "DATA": raw["DATA"][0],
        }
        header["POINTS"] = int(raw["POINTS"][0]) if "POINTS" in raw else header["WIDTH"] * header["HEIGHT"]
    except (ValueError, IndexError):
        raise ValueError(f"{path}: malformed PCD header (a number is missing or not an integer)") from None
    lengths = {len(header[key]) for key in ("FIELDS", "SIZE", "TYPE", "COUNT")}
    if len(lengths) != 1:
        raise ValueError(f"{path}: PCD header FIELDS, SIZE, TYPE and COUNT have different lengths")
    for size, kind in zip(header["SIZE"], header["TYPE"]):
        if kind not in _TYPE_CODES or size not in (1, 2, 4, 8) or (kind == "F" and size not in (4, 8)):
            raise ValueError(f"{path}: unsupported PCD field type {kind}{size}")
    if header["WIDTH"] * header["HEIGHT"] != header["POINTS"] or header["POINTS"] < 0:
        raise ValueError(f"{path}: PCD header says WIDTH*HEIGHT = {header['WIDTH'] * header['HEIGHT']} "
                         f"but POINTS = {header['POINTS']}")
    if header["DATA"] not in ("ascii", "binary", "binary_compressed"):
        raise ValueError(f"{path}: unknown PCD DATA kind {header['DATA']!r}")
    return header


def _read_fields(body: bytes, header: dict, path: Path) -> dict[str, np.ndarray]:
    """Field name -> (POINTS,) float64 column (first component for COUNT > 1 fields)."""
    count = header["POINTS"]
    if header["DATA"] == "binary_compressed":
        return _read_compressed_with_open3d(path, header)
    # unique names: PCL pads records with fields all called "_"
    names = [f"{name}#{i}" for i, name in enumerate(header["FIELDS"])]
    if header["DATA"] == "binary":
        dtype = np.dtype([(name, "<" + _TYPE_CODES[kind] + str(size), (n,) if n > 1 else ())
                          for name, size, kind, n in zip(names, header["SIZE"], header["TYPE"], header["COUNT"])])
        if len(body) < dtype.itemsize * count:
            raise ValueError(f"{path}: PCD file is truncated: {count} points need {dtype.itemsize * count} "
                             f"bytes, only {len(body)} follow the header")
        record = np.frombuffer(body, dtype=dtype, count=count)
        columns = [record[name].reshape(count, -1)[:, 0] for name in names]
    else:
        columns = _ascii_columns(body, header, path)
    return {field: column.astype(np.float64) for field, column in zip(header["FIELDS"], columns)}


def _ascii_columns(body: bytes, header: dict, path: Path) -> list[np.ndarray]:
    count, width = header["POINTS"], sum(header["COUNT"])
    lines = body.decode("ascii", errors="replace").splitlines()[:count]
    if len(lines) < count:
        raise ValueError(f"{path}: PCD file is truncated: {count} points declared, {len(lines)} lines found")
    rows = [line.split() for line in lines]
    bad = next((i for i, row in enumerate(rows) if len(row) != width), None)
    if bad is not None:
        raise ValueError(f"{path}: malformed PCD ascii data: point line {bad + 1} holds {len(rows[bad])} "
                         f"values, expected {width}")
    try:
        table = np.array(rows, dtype=np.float64).reshape(count, width)
    except ValueError:
        raise ValueError(f"{path}: PCD ascii data holds a value that is not a number") from None
    starts = np.cumsum([0, *header["COUNT"][:-1]])
    return [table[:, start] for start in starts]


def _read_compressed_with_open3d(path: Path, header: dict) -> dict[str, np.ndarray]:
    # binary_compressed is LZF, column-major; Open3D's C++ reader decodes it far faster than Python could
    import open3d as o3d

    cloud = o3d.io.read_point_cloud(str(path), format="pcd", remove_nan_points=False,
                                    remove_infinite_points=False)
    points = np.asarray(cloud.points)
    if len(points) != header["POINTS"]:
        raise ValueError(f"{path}: PCD binary_compressed data could not be decoded: {header['POINTS']} points "
                         f"declared, {len(points)} read (truncated or corrupt)")
    fields = {"x": points[:, 0], "y": points[:, 1], "z": points[:, 2]}
    if cloud.has_normals():
        normals = np.asarray(cloud.normals)
        fields.update(normal_x=normals[:, 0], normal_y=normals[:, 1], normal_z=normals[:, 2])
    return fields


def _stack(fields: dict[str, np.ndarray], names: tuple[str, str, str], path: Path) -> np.ndarray | None:
    present = [name in fields for name in names]
    if not any(present):
        return None
    if not all(present):
        raise ValueError(f"{path}: PCD file has only some of the fields {', '.join(names)}")
    return np.stack([fields[name] for name in names], axis=1)


def _missing_to_zero(points: np.ndarray, normals: np.ndarray | None,
                     path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    nan = np.isnan(points)
    missing = nan.all(axis=1)
    if (nan.any(axis=1) & ~missing).any():
        raise ValueError(f"{path}: PCD file holds {int((nan.any(axis=1) & ~missing).sum())} point(s) with "
                         "some but not all coordinates NaN")
    if np.isinf(points).any():
        raise ValueError(f"{path}: PCD file holds {int(np.isinf(points).any(axis=1).sum())} point(s) with "
                         "infinite coordinates")
    points = np.where(missing[:, None], 0.0, points).astype(np.float32)
    if normals is not None:
        normals = np.where(missing[:, None] | ~np.isfinite(normals), 0.0, normals).astype(np.float32)
    return points, normals
