"""Shared by bench_end_to_end.py and gpu_end_to_end.py: a model with a preset's networks and banks, trained only as
far as needed to run (inference cost does not depend on how long the networks were trained), and the scans to time.

Scans: the real cable_gland dev scans (../shared/data) when present, else the synthetic generator's gland.
"""
from __future__ import annotations

from pathlib import Path

from iaenet.data.datasets import open_dataset
from iaenet.model import PRESETS, IAENet

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "mvtec3d_dev"
FIT_SCANS = 8


def scans(tmp: Path, small: bool = False):
    """(train scans, test scans): real cable_gland when present, else (or when `small`, for a quick correctness run)
    a synthetic gland written under tmp (96 x 96 when small)."""
    if (DEV / "cable_gland").exists() and not small:
        return (list(open_dataset(DEV, "cable_gland", "train"))[:FIT_SCANS],
                list(open_dataset(DEV, "cable_gland", "test")))
    from iaenet.data.synthetic import generate_dataset

    root = generate_dataset(tmp / "synthetic", categories=["gland"], resolution=96 if small else 256,
                            n_train=4 if small else FIT_SCANS, n_validation=0, n_test_good=2, n_test_per_defect=1)
    return list(open_dataset(root, "gland", "train")), list(open_dataset(root, "gland", "test"))


def inference_model(preset: str, train, device: str | None = None) -> IAENet:
    """The preset's architecture (networks, backbone, views, banks) fitted with one SDF epoch, 4 pseudo-anomalies
    and one fusion epoch."""
    config = PRESETS[preset]
    config = config.replace(expert3d=config.expert3d.replace(epochs=1, max_train_scans=2), synthetic_scans=4,
                            good_scans=2, fusion=config.fusion.replace(epochs=1))
    return IAENet(config, device=device).fit(train, progress=False)
