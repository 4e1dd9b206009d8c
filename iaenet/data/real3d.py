"""Real3D-AD layout (unorganized 360-degree clouds, no colour).

    <category>/train/*.pcd                    good training clouds ("*_template.pcd" / "*_prototype.pcd")
    <category>/test/<n>_<defect>.pcd          test clouds; names containing "good" are normal,
                                              names containing "temp" are skipped (as the reference)
    <category>/gt/<n>_<defect>.txt            per point "x y z label" (label 1 = anomalous); for an
                                              anomalous sample these points replace the PCD's

Coordinates are returned as stored (the reference centres each cloud on its mean; that is a
modelling step, not reading). The folder may also be called GT (as in Anomaly-ShapeNet).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .catalog import SampleRef
from .pcd import read_pcd
from .scan import LABEL_ANOMALOUS, LABEL_GOOD, Scan


class Real3DLayout:
    name = "real3d"
    splits = ("train", "test")
    aliases: dict[str, str] = {}

    def is_category(self, folder: Path) -> bool:
        return any(_pcd_files(folder / split) for split in self.splits)

    def available_splits(self, folder: Path) -> list[str]:
        return [split for split in self.splits if (folder / split).is_dir()]

    def list_samples(self, folder: Path, split: str) -> list[SampleRef]:
        samples = []
        gt_folder = next((folder / name for name in ("gt", "GT") if (folder / name).is_dir()), folder / "gt")
        for pcd in _pcd_files(folder / split):
            if split == "test" and "temp" in pcd.stem:
                continue
            if split == "train" or "good" in pcd.stem:
                samples.append(SampleRef(f"{split}/{pcd.stem}", LABEL_GOOD, "good", {"pcd": pcd}))
            else:
                defect = pcd.stem.split("_", 1)[1] if "_" in pcd.stem else "anomalous"
                samples.append(SampleRef(f"{split}/{pcd.stem}", LABEL_ANOMALOUS, defect,
                                         {"pcd": pcd, "gt": gt_folder / f"{pcd.stem}.txt"}))
        return samples

    def load(self, sample: SampleRef) -> Scan:
        if sample.label == LABEL_GOOD:
            points, normals = read_pcd(sample.files["pcd"])
            gt = np.zeros(points.shape[:-1], dtype=bool)
            return Scan(points=points, gt=gt, label=LABEL_GOOD, defect="good", normals=normals,
                        name=str(sample.files["pcd"]))
        points, gt = read_point_labels(sample.files["gt"])
        return Scan(points=points, gt=gt, label=LABEL_ANOMALOUS, defect=sample.defect, name=str(sample.files["gt"]))


def read_point_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Real3D-AD gt table: rows "x y z label" (spaces or commas).

    Returns:
        points (N, 3) float32, gt (N,) bool (label != 0).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (the ground truth of an anomalous Real3D-AD sample)")
    rows = [line.replace(",", " ").split() for line in path.read_text(errors="replace").splitlines()]
    rows = [row for row in rows if row]
    if not rows:
        raise ValueError(f"{path}: ground-truth table is empty")
    widths = {len(row) for row in rows}
    if len(widths) != 1 or widths.pop() < 4:
        raise ValueError(f"{path}: every row must hold x y z label (4 values); found rows of "
                         f"{sorted({len(row) for row in rows})} values")
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}: ground-truth table holds a value that is not a number") from None
    if not np.isfinite(table[:, :4]).all():
        raise ValueError(f"{path}: ground-truth table holds NaN or infinite values")
    return table[:, :3].astype(np.float32), table[:, 3] != 0


def _pcd_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pcd")) if folder.is_dir() else []
