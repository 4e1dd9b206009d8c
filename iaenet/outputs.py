"""Files `iaenet predict` writes for one scored scan: the fused score map (float TIFF, the official MVTec 3D-AD
evaluation's input), a heatmap PNG over the rendering, and the scored point cloud (PLY with a score and a colour
per point); plus one JSON line of object scores."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from iaenet._files import output_file
from iaenet.data.io import write_score_map, write_scored_cloud
from iaenet.pictures import write_heatmap_png

FORMATS = ("tiff", "png", "ply")


def write_prediction(prediction, out: Path, stem: str, *, formats=FORMATS, vmax: float = 1.0,
                     overwrite: bool = False) -> list[Path]:
    """Writes `prediction` (iaenet.model.Prediction) as out/<stem>.<format> for each format; returns the paths.
    The fused score is p(anomaly), so its colour scale is [0, vmax]. An unorganized cloud has no map: only its
    PLY is written. Existing files are kept unless overwrite (FileExistsError naming the file)."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"formats: unknown {sorted(unknown)}; choose from {FORMATS}")
    organized = prediction.grid_shape is not None
    targets = {fmt: out / f"{stem}.{fmt}" for fmt in formats if organized or fmt == "ply"}
    for path in targets.values():  # check every target first: nothing is half written
        output_file(path, overwrite=overwrite, make_parents=True)
    if "tiff" in targets:
        write_score_map(targets["tiff"], prediction.score_map(), overwrite=overwrite)
    if "png" in targets:
        write_heatmap_png(targets["png"], prediction.score_map(), 0.0, vmax, background=prediction.image,
                          mask=_point_mask(prediction), overwrite=overwrite)
    if "ply" in targets:
        write_scored_cloud(targets["ply"], prediction.points, prediction.scores, vmin=0.0, vmax=vmax,
                           overwrite=overwrite)
    return list(targets.values())


def summary_line(path: Path, prediction) -> str:
    """One JSON line: the file, its fused object score and the experts' object scores."""
    return json.dumps({"file": str(path), "object_score": prediction.object_score,
                       **{f"object_{k}": v for k, v in prediction.expert_objects.items()},
                       "points": int(len(prediction.points))})


def _point_mask(prediction) -> np.ndarray:
    h, w = prediction.grid_shape
    mask = np.zeros(h * w, bool)
    mask[prediction.index] = True
    return mask.reshape(h, w)
