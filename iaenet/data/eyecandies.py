"""Eyecandies layout, as downloaded (raw, not converted to MVTec style).

    <category>/{train,val,test_public,test_private}/data/<id>_depth.png        16-bit depth
                                                         <id>_info_depth.yaml  normalization: {min, max}
                                                         <id>_normals.png      RGB-coded normals
                                                         <id>_image_4.png      RGB (the references' view)
                                                         <id>_mask.png         gt, > 0 anomalous
                                                         <id>_{bumps,dents,colors,normals}_mask.png

Depth in metres = png / 65535 * (max - min) + min. Each pixel is back-projected with the dataset's
pinhole camera (focal 711.11 px, principal point at the image centre) into the *camera* frame,
vectorised over the grid: x = (u + 0.5 - W/2) * d / f, y = (v + 0.5 - H/2) * d / f, z = d. The
camera frame (z = depth along the optical axis) is MVTec 3D-AD's frame too, so both datasets look
the same to the rest of iaenet; see docs/data.md for why the world pose is not applied.
Normals: png / 127.5 - 1, normalised, Y and Z flipped into the camera frame (dataset docs).
Labels: a sample is anomalous iff its mask has a non-zero pixel (as in the references); its defect
type lists the non-empty per-type masks, e.g. "bumps+colors".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from .catalog import SampleRef
from .io import read_gray16_png, read_mask_png, read_rgb_png
from .scan import LABEL_ANOMALOUS, LABEL_GOOD, Scan

FOCAL_LENGTH = 711.11  # px, the one camera of the dataset
RGB_VIEW = "image_4"   # the references' choice among image_0..image_5
DEFECT_MASKS = ("bumps", "dents", "colors", "normals")
_SPLIT_FOLDERS = {"train": "train", "validation": "val", "test": "test_public", "test_private": "test_private"}


class EyecandiesLayout:
    name = "eyecandies"
    splits = tuple(_SPLIT_FOLDERS)
    aliases = {"val": "validation", "test_public": "test"}

    def is_category(self, folder: Path) -> bool:
        return any(_depth_files(folder, split) for split in self.splits)

    def available_splits(self, folder: Path) -> list[str]:
        return [split for split in self.splits if (folder / _SPLIT_FOLDERS[split] / "data").is_dir()]

    def list_samples(self, folder: Path, split: str) -> list[SampleRef]:
        samples = []
        for depth in _depth_files(folder, split):
            stem = depth.name[: -len("_depth.png")]
            data = depth.parent
            files = {"depth": depth, "info": data / f"{stem}_info_depth.yaml",
                     "normals": data / f"{stem}_normals.png", "rgb": data / f"{stem}_{RGB_VIEW}.png",
                     "mask": data / f"{stem}_mask.png",
                     **{f"{kind}_mask": data / f"{stem}_{kind}_mask.png" for kind in DEFECT_MASKS}}
            label, defect = _label_and_defect(files, split)
            samples.append(SampleRef(f"{split}/{stem}", label, defect, files))
        return samples

    def load(self, sample: SampleRef) -> Scan:
        files = sample.files
        depth = depth_in_metres(files["depth"], files["info"])
        points = back_project(depth, name=str(files["depth"]))
        valid = depth > 0
        normals = read_normals(files["normals"], valid) if files["normals"].is_file() else None
        rgb = read_rgb_png(files["rgb"]) if files["rgb"].is_file() else None
        gt = read_mask_png(files["mask"]) if files["mask"].is_file() else None
        if gt is None and sample.label == LABEL_GOOD:
            gt = np.zeros(depth.shape, dtype=bool)
        for role, array in (("normals", normals), ("rgb", rgb), ("mask", gt)):
            if array is not None and array.shape[:2] != depth.shape:
                raise ValueError(f"{files[role]}: image is {array.shape[1]}x{array.shape[0]} but the depth map "
                                 f"{files['depth']} is {depth.shape[1]}x{depth.shape[0]}")
        return Scan(points=points, rgb=rgb, gt=gt, label=sample.label, defect=sample.defect,
                    name=str(files["depth"]), normals=normals)


def depth_in_metres(depth_png: Path, info_yaml: Path) -> np.ndarray:
    """(H, W) float64 depth in metres from the 16-bit PNG and its normalisation bounds."""
    raw = read_gray16_png(depth_png)
    low, high = _normalization(info_yaml)
    return raw.astype(np.float64) / 65535.0 * (high - low) + low


def back_project(depth: np.ndarray, focal: float = FOCAL_LENGTH, name: str = "depth") -> np.ndarray:
    """(H, W, 3) float32 camera-frame points from an (H, W) depth map in metres; depth <= 0 -> zeros.

    Pixel (v, u) has its centre at (u + 0.5, v + 0.5); the principal point is the image centre.
    """
    height, width = depth.shape
    if height % 2 or width % 2:
        # with an odd size a pixel centre lies on the optical axis, giving x or y exactly 0,
        # which iaenet reads as "missing"
        raise ValueError(f"{name}: Eyecandies depth maps have even sizes, got {width}x{height}")
    u = (np.arange(width) + 0.5 - width / 2) / focal
    v = (np.arange(height) + 0.5 - height / 2) / focal
    points = np.empty((height, width, 3))
    points[..., 0] = u[None, :] * depth
    points[..., 1] = v[:, None] * depth
    points[..., 2] = depth
    points[depth <= 0] = 0.0
    return points.astype(np.float32)


def read_normals(path: Path, valid: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 unit normals in the camera frame; zeros where not `valid` or undefined."""
    coded = read_rgb_png(path).astype(np.float64) / 127.5 - 1.0
    length = np.linalg.norm(coded, axis=2, keepdims=True)
    usable = valid[..., None] & (length > 1e-6)
    normals = np.where(usable, coded / np.where(usable, length, 1.0), 0.0)
    normals[..., 1:] *= -1.0  # the PNG's frame has Y and Z flipped with respect to the camera
    return normals.astype(np.float32)


def _normalization(info_yaml: Path) -> tuple[float, float]:
    if not info_yaml.is_file():
        raise FileNotFoundError(f"{info_yaml}: no such file (the depth normalisation of an Eyecandies sample)")
    try:
        info = yaml.safe_load(info_yaml.read_text())
        low, high = float(info["normalization"]["min"]), float(info["normalization"]["max"])
    except yaml.YAMLError as error:
        raise ValueError(f"{info_yaml}: not valid YAML ({error})") from None
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{info_yaml}: expected numbers at normalization.min and normalization.max") from None
    if not (np.isfinite(low) and np.isfinite(high) and high >= low):
        raise ValueError(f"{info_yaml}: bad depth range min={low} max={high}")
    return low, high


def _label_and_defect(files: dict[str, Path], split: str) -> tuple[int | None, str]:
    if split in ("train", "validation"):
        return LABEL_GOOD, "good"  # Eyecandies has no anomalies in its train and val sets
    if not files["mask"].is_file():
        return None, ""  # test_private: no annotation
    if not read_mask_png(files["mask"]).any():
        return LABEL_GOOD, "good"
    kinds = [kind for kind in DEFECT_MASKS
             if files[f"{kind}_mask"].is_file() and read_mask_png(files[f"{kind}_mask"]).any()]
    return LABEL_ANOMALOUS, "+".join(kinds) or "anomalous"


def _depth_files(folder: Path, split: str) -> list[Path]:
    data = folder / _SPLIT_FOLDERS[split] / "data"
    return sorted(data.glob("*_depth.png")) if data.is_dir() else []
