"""MVTec 3D-AD layout (also what `iaenet synth` writes).

    <category>/{train,validation}/good/{xyz,rgb}/<id>.{tiff,png}
    <category>/test/<defect or good>/{xyz,rgb,gt}/<id>.{tiff,png}

xyz: (H, W, 3) float32 TIFF in metres, zeros = missing. gt: 8-bit PNG, 0 = normal, a defect id > 0
= anomalous. Train/validation samples have no gt folder: their ground truth is all False, as is
that of a good test sample whose gt file is missing. A missing rgb file gives rgb = None.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .catalog import SampleRef
from .io import read_mask_png, read_rgb_png, read_xyz_tiff
from .scan import LABEL_ANOMALOUS, LABEL_GOOD, Scan

GOOD = "good"
_XYZ_SUFFIXES = (".tiff", ".tif")


class MVTecLayout:
    name = "mvtec3d"
    splits = ("train", "validation", "test")
    aliases = {"val": "validation"}

    def is_category(self, folder: Path) -> bool:
        # _subfolders gives paths that already start with `folder`: joining them to it again breaks
        # relative roots ("data/x" / "data/x/train/good" is "data/x/data/x/train/good")
        return any(_xyz_files(defect_folder)
                   for split in self.splits if (folder / split).is_dir()
                   for defect_folder in _subfolders(folder / split))

    def available_splits(self, folder: Path) -> list[str]:
        return [split for split in self.splits if (folder / split).is_dir()]

    def list_samples(self, folder: Path, split: str) -> list[SampleRef]:
        samples = []
        for defect_folder in _subfolders(folder / split):
            defect = defect_folder.name
            label = LABEL_GOOD if defect == GOOD else LABEL_ANOMALOUS
            for xyz in _xyz_files(defect_folder):
                files = {"xyz": xyz, "rgb": defect_folder / "rgb" / f"{xyz.stem}.png",
                         "gt": defect_folder / "gt" / f"{xyz.stem}.png"}
                samples.append(SampleRef(f"{split}/{defect}/{xyz.stem}", label, defect, files))
        return samples

    def load(self, sample: SampleRef) -> Scan:
        xyz_path = sample.files["xyz"]
        points = read_xyz_tiff(xyz_path)
        rgb = read_rgb_png(sample.files["rgb"]) if sample.files["rgb"].is_file() else None
        if sample.files["gt"].is_file():
            gt = read_mask_png(sample.files["gt"])
        elif sample.label == LABEL_GOOD:
            gt = np.zeros(points.shape[:2], dtype=bool)
        else:
            gt = None
        for role, array in (("rgb", rgb), ("gt", gt)):
            if array is not None and array.shape[:2] != points.shape[:2]:
                raise ValueError(f"{sample.files[role]}: {role} image is {array.shape[1]}x{array.shape[0]} "
                                 f"but its xyz grid {xyz_path} is {points.shape[1]}x{points.shape[0]}")
        return Scan(points=points, rgb=rgb, gt=gt, label=sample.label, defect=sample.defect, name=str(xyz_path))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(child for child in folder.iterdir() if child.is_dir()) if folder.is_dir() else []


def _xyz_files(defect_folder: Path) -> list[Path]:
    xyz = defect_folder / "xyz"
    if not xyz.is_dir():
        return []
    return sorted(path for path in xyz.iterdir() if path.suffix.lower() in _XYZ_SUFFIXES and path.is_file())
