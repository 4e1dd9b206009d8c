"""PLY reading and writing of per-vertex properties, in numpy (ascii and binary, either byte order).

Only the vertex element is returned; other elements (faces, ...) are skipped when they come after
it or have fixed-size records. Every error is a ValueError that names the file and the problem, among
them a property name declared twice in one element and an ASCII value outside its declared type.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

_MAX_HEADER_BYTES = 1 << 16  # a real header is a few hundred bytes; stop early on binary garbage

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
# the name written for each numpy type code (the first of the aliases above)
_PLY_NAMES = {code: name for name, code in reversed(_PLY_TYPES.items())}
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}


def read_ply_vertices(path: str | Path) -> dict[str, np.ndarray]:
    """Read the vertex element of a PLY file.

    Returns:
        property name -> (N,) array in the file's dtype (e.g. "x", "y", "z", "nx", "scalar_score").
    Raises:
        FileNotFoundError if the file is missing; ValueError for a bad header, an element with list
        properties before or in the vertex element, or a truncated/malformed body.
    """
    path = Path(path)
    data = path.read_bytes()
    fmt, elements, body_start = _parse_header(data, path)
    body = data[body_start:]
    if fmt == "ascii":
        return _read_ascii_vertices(body, elements, path)
    return _read_binary_vertices(body, elements, _FORMATS[fmt], path)


def write_ply_vertices(path: str | Path, columns: dict[str, np.ndarray]) -> None:
    """Write one vertex element as binary little-endian PLY.

    Args:
        columns: property name -> (N,) array, in file order (all the same length N); each column keeps its
            dtype (float32 -> "float", uint8 -> "uchar", ...; any type PLY has).
    """
    names = list(columns)
    count = len(next(iter(columns.values())))
    codes = [np.dtype(columns[name].dtype).str[1:] for name in names]  # "f4", "u1", ...
    unknown = [f"{name} ({columns[name].dtype})" for name, code in zip(names, codes) if code not in _PLY_NAMES]
    if unknown:
        raise ValueError(f"{path}: no PLY type for column(s) {', '.join(unknown)}")
    record = np.empty(count, dtype=[(name, "<" + code) for name, code in zip(names, codes)])
    for name in names:
        record[name] = columns[name]
    header = ["ply", "format binary_little_endian 1.0", "comment written by iaenet", f"element vertex {count}",
              *(f"property {_PLY_NAMES[code]} {name}" for name, code in zip(names, codes)), "end_header"]
    Path(path).write_bytes(("\n".join(header) + "\n").encode("ascii") + record.tobytes())


class _Element:
    def __init__(self, name: str, count: int):
        self.name = name
        self.count = count
        self.properties: list[tuple[str, str]] = []  # (name, numpy type code) for scalar properties
        self.names: list[str] = []  # every property's name, list properties included
        self.has_list = False

    def dtype(self, byte_order: str) -> np.dtype:
        return np.dtype([(name, byte_order + code) for name, code in self.properties])


def _parse_header(data: bytes, path: Path) -> tuple[str, list[_Element], int]:
    if not data.startswith(b"ply"):
        raise ValueError(f"{path}: not a PLY file (it does not start with 'ply')")
    end = data.find(b"end_header", 0, _MAX_HEADER_BYTES)
    if end < 0:
        raise ValueError(f"{path}: PLY header has no 'end_header' line (truncated or corrupt)")
    newline = data.find(b"\n", end)
    if newline < 0:
        raise ValueError(f"{path}: PLY file ends right after 'end_header' with no data")
    try:
        lines = data[:end].decode("ascii").splitlines()[1:]
    except UnicodeDecodeError:
        raise ValueError(f"{path}: PLY header is not ASCII text (corrupt file)") from None
    fmt = None
    elements: list[_Element] = []
    for line in lines:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        try:
            if words[0] == "format":
                fmt = words[1]
                if fmt not in _FORMATS:
                    raise ValueError(f"unknown PLY format {fmt!r}")
            elif words[0] == "element":
                elements.append(_Element(words[1], int(words[2])))
                if elements[-1].count < 0:
                    raise ValueError(f"negative element count in {line!r}")
            elif words[0] == "property":
                if not elements:
                    raise ValueError(f"property before any element: {line!r}")
                name = words[4] if words[1] == "list" else words[2]
                if name in elements[-1].names:  # readers would keep one of the two silently
                    raise ValueError(f"element {elements[-1].name!r} declares property {name!r} twice")
                elements[-1].names.append(name)
                if words[1] == "list":
                    elements[-1].has_list = True
                else:
                    elements[-1].properties.append((name, _PLY_TYPES[words[1]]))
            else:
                raise ValueError(f"unexpected header line {line!r}")
        except (IndexError, KeyError):
            raise ValueError(f"{path}: malformed PLY header line {line!r}") from None
        except ValueError as error:
            raise ValueError(f"{path}: bad PLY header: {error}") from None
    if fmt is None:
        raise ValueError(f"{path}: PLY header has no 'format' line")
    if not any(element.name == "vertex" for element in elements):
        raise ValueError(f"{path}: PLY file has no 'vertex' element")
    return fmt, elements, newline + 1


def _read_binary_vertices(body: bytes, elements: list[_Element], byte_order: str,
                          path: Path) -> dict[str, np.ndarray]:
    vertex_at = [element.name for element in elements].index("vertex")
    offset = 0
    for element in elements[:vertex_at + 1]:
        if element.has_list:
            where = "the vertex element has" if element is elements[vertex_at] else \
                f"element {element.name!r} before the vertex element has"
            raise ValueError(f"{path}: {where} list properties; only scalar vertex properties "
                             "are supported in binary PLY")
        offset += element.dtype(byte_order).itemsize * element.count
    vertex = elements[vertex_at]
    dtype = vertex.dtype(byte_order)
    offset -= dtype.itemsize * vertex.count
    available = len(body) - offset
    if available < dtype.itemsize * vertex.count:
        raise ValueError(f"{path}: PLY file is truncated: {vertex.count} vertices need "
                         f"{dtype.itemsize * vertex.count} bytes, only {max(available, 0)} follow")
    record = np.frombuffer(body, dtype=dtype, count=vertex.count, offset=offset)
    # native byte order so that callers can compute on the columns without surprises
    return {name: record[name].astype(record[name].dtype.newbyteorder("=")) for name in dtype.names}


def _read_ascii_vertices(body: bytes, elements: list[_Element], path: Path) -> dict[str, np.ndarray]:
    vertex_at = [element.name for element in elements].index("vertex")
    vertex = elements[vertex_at]
    if vertex.has_list:
        raise ValueError(f"{path}: the PLY vertex element has list properties; only scalar ones are supported")
    start = sum(element.count for element in elements[:vertex_at])  # ascii: one line per record
    block = body.decode("ascii", errors="replace").splitlines()[start:start + vertex.count]
    if len(block) < vertex.count:
        raise ValueError(f"{path}: PLY file is truncated: {vertex.count} vertices declared, "
                         f"{len(block)} vertex lines found")
    width = len(vertex.properties)
    rows = [line.split() for line in block]
    bad = next((i for i, row in enumerate(rows) if len(row) != width), None)
    if bad is not None:
        raise ValueError(f"{path}: malformed PLY vertex data: vertex line {bad + 1} holds "
                         f"{len(rows[bad])} values, expected {width}")
    try:
        table = np.array(rows, dtype=np.float64).reshape(vertex.count, width)
    except ValueError:
        raise ValueError(f"{path}: PLY vertex data holds a value that is not a number") from None
    for column, (name, code) in enumerate(vertex.properties):
        dtype = np.dtype(code)
        bad, allowed = _outside(table[:, column], dtype)
        if bad.any():  # the cast below would wrap (uchar 300 -> 44) or overflow to inf without a word
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{path}: PLY element 'vertex' property {name!r} ({dtype.name}) holds "
                             f"{rows[row][column]} on vertex line {row + 1}; the type holds {allowed}")
    return {name: table[:, column].astype(code) for column, (name, code) in enumerate(vertex.properties)}


def _outside(values: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, str]:
    """Which parsed float64 `values` do not fit `dtype`, and what the type holds, in words."""
    if dtype.kind == "f":
        limit = np.finfo(dtype).max
        return np.isfinite(values) & (np.abs(values) > limit), f"values within +-{limit:.6g}"
    info = np.iinfo(dtype)
    fits = (values >= info.min) & (values <= info.max) & (values == np.round(values))
    return ~fits, f"whole numbers {info.min}..{info.max}"
