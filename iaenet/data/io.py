"""Reading scans and images, writing score maps and scored clouds.

Every reader raises FileNotFoundError for a missing file and ValueError (or TypeError for a
wrong dtype) naming the file and the problem for a truncated, corrupt or ill-shaped one.
Nothing here modifies an input file.
"""
from __future__ import annotations

import shutil
import tokenize
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from iaenet._files import output_file
from iaenet.pictures import colour_map

from .pcd import read_pcd
from .ply import read_ply_vertices, write_ply_vertices
from .scan import Scan

SCAN_SUFFIXES = (".tif", ".tiff", ".npy", ".npz", ".ply", ".pcd")
SCORE_PROPERTY = "scalar_score"


def read_scan(path: str | Path) -> Scan:
    """Read one scan file, choosing the format by suffix.

    - .tif/.tiff: an (H, W, 3) float xyz grid in metres (MVTec 3D-AD), zeros = missing.
    - .npy: (H, W, 3) or (N, 3) float points.
    - .npz: key "points" as for .npy; optional "rgb" (H, W, 3) uint8, "gt" (bool or ids > 0),
      "normals" (same layout as points).
    - .ply: vertex x, y, z (+ nx, ny, nz), ascii or binary; an unorganized cloud.
    - .pcd: x, y, z (+ normal_x/y/z), ascii/binary/binary_compressed; organized if HEIGHT > 1.

    The returned Scan has `name` = the path, no label and no defect type.
    """
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return Scan(points=read_xyz_tiff(path), name=str(path))
    if suffix == ".npy":
        return Scan(points=_as_points(_load_npy(path), path, "array"), name=str(path))
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".ply":
        vertices = read_ply_vertices(path)
        return Scan(points=_ply_columns(vertices, ("x", "y", "z"), path, required=True),
                    normals=_ply_columns(vertices, ("nx", "ny", "nz"), path, required=False),
                    name=str(path))
    if suffix == ".pcd":
        points, normals = read_pcd(path)
        return Scan(points=points, normals=normals, name=str(path))
    raise ValueError(f"{path}: unknown scan file type {path.suffix!r}; expected one of {', '.join(SCAN_SUFFIXES)}")


def read_xyz_tiff(path: str | Path) -> np.ndarray:
    """Read an (H, W, 3) xyz TIFF (metres, zeros = missing) as float32; NaN/inf coordinates are an error."""
    path = _existing_file(path)
    try:
        array = tifffile.imread(path)
    except Exception as error:  # tifffile raises many types for corrupt files; all mean "unreadable"
        raise ValueError(f"{path}: cannot read TIFF ({error})") from None
    return _as_points(array, path, "TIFF image", organized_only=True)


def read_rgb_png(path: str | Path) -> np.ndarray:
    """Read a colour image as (H, W, 3) uint8 (grey or palette images are expanded to RGB)."""
    image = _open_image(path)
    if image.mode not in ("RGB", "RGBA", "L", "P", "LA"):
        raise ValueError(f"{path}: expected an 8-bit colour image, got PIL mode {image.mode!r}")
    return np.asarray(image.convert("RGB"))


def read_mask_png(path: str | Path) -> np.ndarray:
    """Read a ground-truth mask as (H, W) bool: any non-zero value (defect id) is anomalous."""
    image = _open_image(path)
    array = np.asarray(image)
    if array.ndim == 3:  # masks saved as RGB(A): anomalous where any channel is non-zero
        array = array.any(axis=2)
    return array > 0


def read_gray16_png(path: str | Path) -> np.ndarray:
    """Read a single-channel 16-bit image (e.g. a depth map) as (H, W) uint16."""
    image = _open_image(path)
    array = np.asarray(image)
    # PIL gives 16-bit PNGs as mode "I;16" (uint16) or "I" (int32)
    if array.ndim != 2 or array.dtype not in (np.uint16, np.int32):
        raise ValueError(f"{path}: expected a single-channel 16-bit image, got mode {image.mode!r}")
    if array.max(initial=0) > np.iinfo(np.uint16).max or array.min(initial=0) < 0:
        raise ValueError(f"{path}: 16-bit image holds values outside 0..65535")
    return array.astype(np.uint16)


def write_xyz_tiff(path: str | Path, points: np.ndarray) -> Path:
    """Write an (H, W, 3) xyz grid (metres, zeros = missing) as a float32 TIFF that `read_xyz_tiff` and the
    MVTec 3D-AD tools read (parent folders are created). The bytes depend only on the array.

    Raises TypeError for a non-float array, ValueError for a wrong shape or NaN/inf coordinates.
    """
    path = Path(path)
    if not isinstance(points, np.ndarray) or not np.issubdtype(points.dtype, np.floating):
        raise TypeError(f"{path}: points must be a float numpy array in metres, got "
                        f"{getattr(points, 'dtype', type(points).__name__)}")
    points = _as_points(points, path, "xyz grid", organized_only=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # no metadata or software tag, so the same array always gives the same file
    tifffile.imwrite(path, points, photometric="rgb", metadata=None, software=False)
    return path


def write_mask_png(path: str | Path, mask: np.ndarray) -> Path:
    """Write an (H, W) bool ground-truth mask as an 8-bit PNG, 0 normal and 255 anomalous (parent folders are
    created); `read_mask_png` reads it back. Raises TypeError for a non-bool array, ValueError for a wrong shape."""
    path = Path(path)
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise TypeError(f"{path}: a mask must be a bool numpy array, got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"{path}: a mask must be 2-D (H, W) and non-empty, got shape {mask.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path)
    return path


def prepare_output_folder(out: str | Path, replaced: Iterable[str | Path], overwrite: bool) -> Path:
    """Make `out` ready for writing generated files and return it as a Path.

    `out` must be absent or an empty folder unless `overwrite`; then only the sub-folders `replaced`
    (paths relative to `out`, e.g. category names) are deleted, so nothing else in `out` is ever touched.
    Raises FileExistsError if `out` is a file, or a non-empty folder without `overwrite`.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output path {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"output folder {out} is not empty; pass overwrite=True to replace "
                                  f"{', '.join(str(name) for name in replaced)} in it")
        for name in replaced:
            if (out / name).is_dir():
                shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_score_map(path: str | Path, score_map: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write an (H, W) anomaly-score map as a float32 TIFF (parent folders are created).

    Raises TypeError for a non-numeric array, ValueError for a wrong shape or NaN/inf scores,
    FileExistsError for an existing file unless ``overwrite`` is True.
    """
    path = Path(path)
    score_map = _finite_float32(score_map, "score map", path)
    if score_map.ndim != 2:
        raise ValueError(f"{path}: a score map must be 2-D (H, W), got shape {score_map.shape}")
    tifffile.imwrite(output_file(path, overwrite=overwrite, make_parents=True), score_map)
    return path


def read_score_map(path: str | Path) -> np.ndarray:
    """Read an (H, W) float score map written by `write_score_map` as float32."""
    path = _existing_file(path)
    try:
        array = tifffile.imread(path)
    except Exception as error:  # see read_xyz_tiff
        raise ValueError(f"{path}: cannot read TIFF ({error})") from None
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{path}: expected a 2-D float score map, got shape {array.shape} dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def write_scored_cloud(path: str | Path, points: np.ndarray, scores: np.ndarray, *, vmin: float | None = None,
                       vmax: float | None = None, overwrite: bool = False) -> Path:
    """Write points with one score each as a binary PLY: float vertex property `scalar_score` and the
    score's colour as uchar `red`, `green`, `blue` (iaenet.pictures "score" colour map), so MeshLab,
    CloudCompare and Open3D show the cloud coloured by score.

    Args:
        points: (N, 3) float metres. scores: (N,) float.
        vmin, vmax: the colour scale (default: the lowest and highest score); scores outside are clipped.
        overwrite: replace an existing file (otherwise FileExistsError); parent folders are created.
    `read_scored_cloud` reads points and scores back.
    """
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise ValueError(f"{path}: a scored cloud is written as PLY; use a .ply file name")
    points = _finite_float32(points, "points", path)
    scores = _finite_float32(scores, "scores", path)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{path}: points must have shape (N, 3), got {points.shape}")
    if scores.shape != (len(points),):
        raise ValueError(f"{path}: scores must have shape ({len(points)},) to match the points, got {scores.shape}")
    if len(scores) == 0:  # an empty cloud has no colours; any scale will do
        low = high = 0.0
    else:
        low = float(scores.min()) if vmin is None else vmin
        high = float(scores.max()) if vmax is None else vmax
    colours = colour_map(scores, low, high)
    write_ply_vertices(output_file(path, overwrite=overwrite, make_parents=True),
                       {"x": points[:, 0], "y": points[:, 1], "z": points[:, 2], SCORE_PROPERTY: scores,
                        "red": colours[:, 0], "green": colours[:, 1], "blue": colours[:, 2]})
    return path


def read_scored_cloud(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a PLY with a `scalar_score` vertex property: (N, 3) float32 points, (N,) float32 scores."""
    path = _existing_file(path)
    vertices = read_ply_vertices(path)
    if SCORE_PROPERTY not in vertices:
        raise ValueError(f"{path}: PLY has no {SCORE_PROPERTY!r} vertex property "
                         f"(properties: {', '.join(vertices)})")
    points = _ply_columns(vertices, ("x", "y", "z"), path, required=True)
    return points, vertices[SCORE_PROPERTY].astype(np.float32)


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    return path


def _as_points(array: np.ndarray, path: Path, what: str, organized_only: bool = False) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{path}: {what} must hold float coordinates in metres, got dtype {array.dtype}")
    shapes = "(H, W, 3)" if organized_only else "(H, W, 3) or (N, 3)"
    if array.shape[-1:] != (3,) or array.ndim not in ((3,) if organized_only else (2, 3)) or array.size == 0:
        raise ValueError(f"{path}: {what} must have shape {shapes}, got {array.shape}")
    array = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(array).all(axis=-1)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} point(s) have NaN or infinite coordinates")
    return array


def _load_npy(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    # numpy parses the header as Python literals: a corrupt one raises a tokenizer or syntax error
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as error:
        raise ValueError(f"{path}: cannot read NPY array ({error})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):  # np.load goes by the content, not the suffix
        with loaded:
            names = ", ".join(loaded.files) or "none"
        raise ValueError(f"{path}: holds an NPZ archive (arrays: {names}), not a single NPY array; "
                         "give it the suffix .npz")
    return loaded


def _read_npz(path: Path) -> Scan:
    try:
        loaded = np.load(path, allow_pickle=False)
        arrays = None
        if isinstance(loaded, np.lib.npyio.NpzFile):  # np.load goes by the content, not the suffix
            with loaded as archive:
                arrays = {key: archive[key] for key in archive.files}
    # besides the NPY errors: a damaged zip directory claims an unknown compression method or zip
    # version (NotImplementedError), damaged compressed data fails to inflate (zlib.error)
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile, KeyError,
            NotImplementedError, zlib.error) as error:
        raise ValueError(f"{path}: cannot read NPZ archive ({error})") from None
    if arrays is None:
        raise ValueError(f"{path}: holds a single NPY array (shape {loaded.shape}, dtype {loaded.dtype}), "
                         "not an NPZ archive; give it the suffix .npy")
    if "points" not in arrays:
        raise ValueError(f"{path}: NPZ archive has no 'points' array (keys: {', '.join(arrays) or 'none'})")
    points = _as_points(arrays["points"], path, "'points'")
    gt = arrays.get("gt")
    if gt is not None and gt.dtype != np.bool_:
        if not np.issubdtype(gt.dtype, np.integer):
            raise TypeError(f"{path}: 'gt' must be bool or integer ids (> 0 = anomalous), got dtype {gt.dtype}")
        gt = gt > 0
    normals = arrays.get("normals")
    if normals is not None:
        normals = _as_points(normals, path, "'normals'")
    return Scan(points=points, rgb=arrays.get("rgb"), gt=gt, normals=normals, name=str(path))


def _ply_columns(vertices: dict[str, np.ndarray], names: tuple[str, str, str], path: Path,
                 required: bool) -> np.ndarray | None:
    present = [name in vertices for name in names]
    if not all(present):
        if required or any(present):
            lacking = [name for name, there in zip(names, present) if not there]
            raise ValueError(f"{path}: PLY vertex element lacks {', '.join(lacking)}")
        return None
    return _as_points(np.stack([vertices[name] for name in names], axis=1).astype(np.float32), path,
                      "PLY vertices")


def _open_image(path: str | Path) -> Image.Image:
    path = _existing_file(path)
    try:
        with Image.open(path) as image:
            image.load()  # decode now so that a truncated file fails here, with its name
            return image
    except (OSError, ValueError, SyntaxError) as error:  # PIL: UnidentifiedImageError is an OSError
        raise ValueError(f"{path}: cannot read image ({error})") from None


def _finite_float32(array: object, what: str, path: Path) -> np.ndarray:
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.floating)
                                                 or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{path}: {what} must be a numeric numpy array, got "
                        f"{getattr(array, 'dtype', type(array).__name__)}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: {what} hold {int((~np.isfinite(array)).sum())} NaN or infinite value(s)")
    return array
