"""IAENet, the detector: both experts, the shape-guided dual memory bank and Importance-Aware Fusion behind one
scikit-learn-like object.

    model = IAENet("fast").fit(open_dataset(root, "cable_gland", "train"))
    prediction = model.predict(scan_or_points)       # per-point fused scores, object score, expert scores, weights
    prediction.score_map()                           # (224, 224) map of the fused score
    model.save("cable_gland.iaenet"); model = IAENet.load("cable_gland.iaenet")
    metrics = model.evaluate(open_dataset(root, "cable_gland", "test"))

`fit` (DESIGN.md §1): SDF pre-training of the 3D expert and its bank M3D, the 2D expert's cell features and the bank
M2D, then the fusion: Cut-Paste pseudo-anomalies of the training scans (iaenet.data.cutpaste) and good training scans
scored leave-one-out (each against the banks without its own rows) give labelled expert scores, from which the
robust score scales and the IAF networks are fitted.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from iaenet import __version__
from iaenet.data.cutpaste import CutPasteConfig, CutPasteSynthesizer
from iaenet.data.scan import Scan
from iaenet.evaluation import Evaluation, ScanTruth, evaluate_predictions
from iaenet.experts import Expert3D, Expert3DConfig
from iaenet.experts.expert2d import Expert2D, Expert2DConfig
from iaenet.fusion import (FusionConfig, FusionSample, ImportanceAwareFusion, OCSVMFusion, ScoreScales, fuse_add,
                           fuse_max)
from iaenet.memory import DualMemoryBank, MemoryConfig, flat_pixel_index
from iaenet.object_scores import OBJECT_RULES, object_score
from iaenet.prepare import PreparedScan, prepare_clean, prepare_scan
from iaenet.tensor_files import load_tensors, save_tensors

MODEL_KIND = "iaenet.model"
GRID = 224


@dataclass(frozen=True)
class IAENetConfig:
    """Every setting of the detector. `preset` names where it came from ("fast", "paper" or "custom")."""

    expert3d: Expert3DConfig = field(default_factory=Expert3DConfig)
    expert2d: Expert2DConfig = field(default_factory=Expert2DConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    synthesis: CutPasteConfig = field(default_factory=CutPasteConfig)
    synthetic_scans: int = 800          # Cut-Paste pseudo-anomalies for the fusion (the paper's 800 per category)
    good_scans: int = 40                # good training scans scored leave-one-out (scales, fusion negatives)
    object_rules: tuple[str, str] = ("max", "max")  # iaenet.object_scores rules for s1 (3D) and s2 (2D)
    seed: int = 0
    preset: str = "custom"

    def __post_init__(self):
        for name in ("synthetic_scans", "good_scans"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"IAENetConfig.{name}: expected a positive int, got {value!r}")
        rules = tuple(self.object_rules)
        if len(rules) != 2 or any(r not in OBJECT_RULES for r in rules):
            raise ValueError(f"IAENetConfig.object_rules: expected two of {OBJECT_RULES} (3D, 2D), got {rules!r}")
        object.__setattr__(self, "object_rules", rules)
        if self.memory.image_size != self.expert2d.image_size or self.memory.cells != self.expert2d.cells:
            raise ValueError("IAENetConfig: memory.image_size/cells must equal expert2d.image_size/cells")

    def replace(self, **changes) -> "IAENetConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {"expert3d": json.loads(self.expert3d.to_json()),
                **{name: dataclasses.asdict(getattr(self, name)) for name in _PARTS},
                **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if f.name != "expert3d" and f.name not in _PARTS}}

    @classmethod
    def from_dict(cls, d: dict) -> "IAENetConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) != known:
            raise ValueError(f"IAENetConfig: fields {sorted(set(d) ^ known)} do not match this version")
        return cls(expert3d=Expert3DConfig.from_json(json.dumps(d["expert3d"])),
                   **{name: _dataclass_from(kind, d[name]) for name, kind in _PARTS.items()},
                   **{k: v for k, v in d.items() if k != "expert3d" and k not in _PARTS})


_PARTS = {"expert2d": Expert2DConfig, "memory": MemoryConfig, "fusion": FusionConfig, "synthesis": CutPasteConfig}


def _dataclass_from(cls, d: dict):
    known = {f.name for f in dataclasses.fields(cls)}
    if set(d) != known:
        raise ValueError(f"{cls.__name__}: fields {sorted(set(d) ^ known)} do not match this version")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _presets() -> dict[str, IAENetConfig]:
    """The presets; their choices are measured in docs/accuracy.md (benchmarks/study_accuracy.py)."""
    from iaenet.backbones import wide_resnet_available
    from iaenet.experts.expert3d_config import PRESETS as PRESETS3D

    # fast: EfficientNet-Lite1 (stride 4 + 8) with CPMF's 9 turned views; s1 = mean of the top 1 % of X1
    fast2d = Expert2DConfig(backbone="efficientnet_lite1", views=9)
    # paper: the paper's one frontal view through WRN-50-2 when its weight file is present, else Lite1
    paper2d = Expert2DConfig(backbone="wide_resnet50_2" if wide_resnet_available() else "efficientnet_lite1")
    return {
        "paper": IAENetConfig(expert3d=PRESETS3D["paper"], expert2d=paper2d, preset="paper"),
        "fast": IAENetConfig(expert3d=PRESETS3D["fast"], expert2d=fast2d, object_rules=("top1", "max"),
                             synthetic_scans=100, good_scans=24, fusion=FusionConfig(epochs=60), preset="fast"),
        "tiny": IAENetConfig(expert3d=PRESETS3D["tiny"], synthetic_scans=4, good_scans=2,
                             fusion=FusionConfig(epochs=3, hidden=16, points_per_scan=256), preset="tiny"),
    }


PRESETS: dict[str, IAENetConfig] = _presets()


@dataclass
class ExpertScores:
    """Both experts on one prepared scan: x1, x2 (N,) float32 raw point scores; s1, s2 object scores; the 2D
    expert's rendering (H, W) float32."""

    x1: np.ndarray
    x2: np.ndarray
    s1: float
    s2: float
    image: np.ndarray


@dataclass
class Prediction:
    """What `IAENet.predict` returns for one scan.

    points (N, 3) float32 and index (N,) int64: the scored (valid) points of the working grid and their flat index
    in it (grid_shape, None for an unorganized cloud). scores (N,) float32: the fused anomaly score A = p(anomaly).
    object_score: the fused object score. experts: {"x1": (N,), "x2": (N,)} raw expert scores; expert_objects:
    {"x1": s1, "x2": s2}. weights (N, 2): the selector's S (for x1, x2). image (H, W): the 2D expert's rendering.
    baselines / baseline_objects: the Max, Add and OCSVM fusions' point and object scores, when asked for.
    """

    name: str
    points: np.ndarray
    index: np.ndarray
    grid_shape: tuple[int, int] | None
    scores: np.ndarray
    object_score: float
    experts: dict[str, np.ndarray]
    expert_objects: dict[str, float]
    weights: np.ndarray
    image: np.ndarray
    baselines: dict[str, np.ndarray] = field(default_factory=dict)
    baseline_objects: dict[str, float] = field(default_factory=dict)

    def score_map(self, key: str = "fused") -> np.ndarray:
        """(H, W) float32 map of "fused", "x1", "x2", "selection" (X2*S2 - X1*S1, the paper's Fig. 12) or
        "selector_output" (X1*S1 + X2*S2); 0 where there is no point."""
        if self.grid_shape is None:
            raise ValueError(f"{self.name}: an unorganized cloud has no grid; use the per-point scores")
        values = self.point_values(key)
        grid = np.zeros(self.grid_shape[0] * self.grid_shape[1], np.float32)
        grid[self.index] = values
        return grid.reshape(self.grid_shape)

    def point_values(self, key: str = "fused") -> np.ndarray:
        if key == "fused":
            return self.scores
        if key in self.experts:
            return self.experts[key]
        if key in self.baselines:
            return self.baselines[key]
        x = np.stack([self.experts["x1"], self.experts["x2"]], 1) * self.weights
        if key == "selection":
            return (x[:, 1] - x[:, 0]).astype(np.float32)
        if key == "selector_output":
            return x.sum(axis=1).astype(np.float32)
        raise ValueError(f"key: expected fused, x1, x2, {', '.join(self.baselines)}, selection or selector_output, "
                         f"got {key!r}")


class IAENet:
    """The IAENet detector. config: an IAENetConfig or a preset name ("fast", "paper", "tiny"). device: "cpu",
    "cuda" or None (CUDA when available)."""

    def __init__(self, config: IAENetConfig | str = "fast", device: str | torch.device | None = None):
        if isinstance(config, str):
            if config not in PRESETS:
                raise ValueError(f"config: unknown preset {config!r}; choose one of {sorted(PRESETS)}")
            config = PRESETS[config]
        if not isinstance(config, IAENetConfig):
            raise TypeError(f"config: expected an IAENetConfig or a preset name, got {type(config).__name__}")
        self.config = config
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.expert3d: Expert3D | None = None
        self.expert2d = Expert2D(config.expert2d, device=self.device)
        self.bank: DualMemoryBank | None = None
        self.scales: ScoreScales | None = None
        self.fusion: ImportanceAwareFusion | None = None
        self.ocsvm_points: OCSVMFusion | None = None   # the OCSVM baseline on good [x1, x2] and on good [s1, s2]
        self.ocsvm_objects: OCSVMFusion | None = None
        self.fit_info: dict = {}
        self._lock = threading.Lock()

    # ---- fitting -------------------------------------------------------------------------------------------

    def fit(self, scans: Iterable[Scan], *, progress: bool = True, work_dir: str | Path | None = None) -> "IAENet":
        """Fits everything on good scans (Scan or PreparedScan objects, e.g. a ScanDataset of train/good). work_dir: where the
        expert scores of the fusion's training scans are cached (a rerun after an interruption resumes there)."""
        cfg = self.config
        timings = {}
        start = time.perf_counter()
        prepared = [s if isinstance(s, PreparedScan) else prepare_scan(s)
                    for s in tqdm(list(scans), desc="preparing", disable=not progress, unit="scan")]
        if len(prepared) < 2:
            raise ValueError(f"fit: {len(prepared)} training scan(s); need at least 2 (the fusion scores each "
                             "training scan against the others)")
        timings["prepare_s"] = time.perf_counter() - start

        start = time.perf_counter()
        self.expert3d = Expert3D(cfg.expert3d, self.device)
        self.expert3d.fit([p.points for p in prepared], names=[p.name for p in prepared], progress=progress)
        timings["expert3d_s"] = time.perf_counter() - start

        start = time.perf_counter()
        self.bank = DualMemoryBank(cfg.memory, self.device)
        cells = self._cell_features(prepared, progress, "2D features")
        for i, (p, c) in enumerate(zip(prepared, cells)):
            latents = self.expert3d.bank[self.expert3d.bank_scan == i]
            self.bank.add_scan(latents, self.expert3d.patches(p.points), flat_pixel_index(c.view.pixels,
                               cfg.expert2d.image_size), c.features, name=p.name)
        timings["memory_s"] = time.perf_counter() - start

        start = time.perf_counter()
        samples = self.fusion_samples(prepared, progress=progress, work_dir=work_dir)
        timings["fusion_scores_s"] = time.perf_counter() - start

        start = time.perf_counter()
        self.fusion = ImportanceAwareFusion(cfg.fusion).fit(samples, progress=progress)
        good_samples = [s for s in samples if s.label == 0]
        self.ocsvm_points = OCSVMFusion(seed=cfg.seed).fit(np.concatenate([s.points for s in good_samples]))
        self.ocsvm_objects = OCSVMFusion(seed=cfg.seed).fit(np.stack([s.objects for s in good_samples]))
        timings["fusion_fit_s"] = time.perf_counter() - start
        self.fit_info = {"scans": len(prepared), "names": [p.name for p in prepared], "timings": timings,
                         "synthetic_scans": sum(x.label for x in samples),
                         "good_scans": sum(1 - x.label for x in samples), "iaenet": __version__}
        return self

    def fusion_samples(self, prepared: list[PreparedScan], *, progress: bool = True,
                       work_dir: str | Path | None = None) -> list[FusionSample]:
        """The fusion's training set from the fitted experts and banks (fit calls it; studies may too): good training
        scans scored leave-one-out and Cut-Paste pseudo-anomalies, their scores normalised by the robust scales,
        which this fits on the good ones (self.scales)."""
        good, synthetic = self._fusion_scores(prepared, progress, work_dir)
        self.scales = ScoreScales.fit([np.stack([g.x1, g.x2], 1) for g, _ in good],
                                      np.array([[g.s1, g.s2] for g, _ in good]))
        return [self.sample(scores, labels) for scores, labels in good + synthetic]

    def _fusion_scores(self, prepared: list[PreparedScan], progress: bool, work_dir) -> tuple[list, list]:
        """(good, synthetic): lists of (ExpertScores, point labels) for good training scans scored leave-one-out and
        for Cut-Paste anomalies of training scans scored without their target's bank rows."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        cache = _ScoreCache(work_dir, self._fingerprint(prepared)) if work_dir is not None else None
        chosen = sorted(rng.choice(len(prepared), min(cfg.good_scans, len(prepared)), replace=False).tolist())
        good = []
        for i in tqdm(chosen, desc="good scans (leave-one-out)", disable=not progress, unit="scan"):
            scores = cache.get(f"good{i}") if cache else None
            if scores is None:
                scores = self.score_experts(prepared[i], exclude_scan=i)
                if cache:
                    cache.put(f"good{i}", scores)
            good.append((scores, np.zeros(len(prepared[i].points), bool)))
        full = [Scan(points=p.full, name=p.name) for p in prepared]
        synthesizer = CutPasteSynthesizer(full, cfg.synthesis, seed=cfg.seed)
        targets = rng.integers(0, len(prepared), cfg.synthetic_scans)
        synthetic = []
        for k in tqdm(range(cfg.synthetic_scans), desc="pseudo-anomalies", disable=not progress, unit="scan"):
            target = int(targets[k])
            anomalous = prepare_clean(synthesizer.synthesize(full[target], k))
            labels = anomalous.point_gt()
            scores = cache.get(f"synthetic{k}") if cache else None
            if scores is None:
                scores = self.score_experts(anomalous, exclude_scan=target)
                if cache:
                    cache.put(f"synthetic{k}", scores)
            synthetic.append((scores, labels))
        return good, synthetic

    def sample(self, scores: ExpertScores, labels: np.ndarray) -> FusionSample:
        """A FusionSample of one scan's expert scores and point labels (normalised by self.scales)."""
        x = self.scales.normalise_points(np.stack([scores.x1, scores.x2], 1))
        s = self.scales.normalise_objects([scores.s1, scores.s2])[0]
        return FusionSample(x, labels.astype(bool), s, int(labels.any()))

    # ---- scoring -------------------------------------------------------------------------------------------

    def predict(self, scans, *, progress: bool = False, baselines: bool = False):
        """Scores one scan or several. A scan: an iaenet Scan, an organized (H, W, 3) grid or an unorganized
        (N, 3) cloud (float metres, zeros = missing; organized input gets its background removed), or a
        PreparedScan. A list/tuple/ScanDataset gives a list of Predictions; one scan gives one Prediction.
        baselines: also compute the Max/Add/OCSVM fusions (Prediction.baselines), as evaluate does."""
        self._require_fitted()
        single = isinstance(scans, (Scan, PreparedScan, np.ndarray, torch.Tensor))
        items = [scans] if single else list(scans)
        out = [self._predict_one(self._prepared(s, i), baselines=baselines)
               for i, s in enumerate(tqdm(items, desc="scoring", disable=not progress, unit="scan"))]
        return out[0] if single else out

    def predict_files(self, paths: Sequence[str | Path], *, prefetch: int = 2):
        """Scores scan files one after another, reading and preparing the next `prefetch` files in background
        threads while the current one is scored. Yields (path, Prediction) or (path, error) for a file that cannot
        be read or scored (ValueError/TypeError/OSError), so one bad file never stops the others."""
        from concurrent.futures import ThreadPoolExecutor

        from iaenet.data.io import read_scan

        self._require_fitted()
        paths = [Path(p) for p in paths]

        def load(path: Path) -> PreparedScan:
            return prepare_scan(read_scan(path))

        with ThreadPoolExecutor(max_workers=max(1, prefetch)) as pool:
            pending = [pool.submit(load, path) for path in paths[:prefetch + 1]]
            for i, path in enumerate(paths):
                if i + prefetch + 1 < len(paths):
                    pending.append(pool.submit(load, paths[i + prefetch + 1]))
                try:
                    yield path, self._predict_one(pending[i].result())
                except (ValueError, TypeError, OSError) as err:
                    yield path, err
                pending[i] = None  # the prepared scan is no longer needed

    def evaluate(self, scans: Iterable[Scan], *, category: str | None = None, sigma: float | None = 4.0,
                 num_thresholds: int | None = None, progress: bool = True) -> Evaluation:
        """Predicts every scan (with labels and ground truth, e.g. a ScanDataset of a test split) and computes
        O-AUROC, P-AUROC and AUPRO@0.3/@0.01, raw and smoothed by `sigma`, for the fused score, both experts and the
        Max/Add/OCSVM baselines, per category and per defect type (iaenet.evaluation). category: the name to report
        (default: the dataset's .category, else "all")."""
        self._require_fitted()
        category = category or getattr(scans, "category", None) or "all"
        predictions, truths = [], []
        start = time.perf_counter()
        for i, scan in enumerate(tqdm(list(scans), desc="evaluating", disable=not progress, unit="scan")):
            if scan.label is None:
                raise ValueError(f"{scan.name}: evaluation needs labelled scans (label 0 or 1)")
            prepared = prepare_scan(scan)
            predictions.append(self._predict_one(prepared, baselines=True))
            gt = prepared.scan.gt if prepared.scan.is_organized else prepared.point_gt()
            truths.append(ScanTruth(int(scan.label), scan.defect or ("good" if scan.label == 0 else "unknown"),
                                    category, gt))
        seconds = time.perf_counter() - start
        metrics = evaluate_predictions(predictions, truths, sigma=sigma, num_thresholds=num_thresholds)
        return Evaluation(metrics, predictions, truths, {"predict_s_per_scan": seconds / len(predictions)})

    def _predict_one(self, prepared: PreparedScan, timings: dict[str, float] | None = None,
                     baselines: bool = False) -> Prediction:
        """The Prediction of one prepared scan; with `baselines` also the Max/Add/OCSVM fusions (for evaluation)."""
        scores = self.score_experts(prepared, timings=timings)
        clock = _Clock(timings)
        x = self.scales.normalise_points(np.stack([scores.x1, scores.x2], 1))
        fused, weights = self.fusion.predict_points(x, return_weights=True)
        s = self.scales.normalise_objects([scores.s1, scores.s2])
        obj = self.fusion.predict_objects(s)
        baseline_points, baseline_objects = {}, {}
        if baselines:
            baseline_points = {"max": fuse_max(x), "add": fuse_add(x), "ocsvm": self.ocsvm_points.score(x)}
            baseline_objects = {"max": float(fuse_max(s)[0]), "add": float(fuse_add(s)[0]),
                                "ocsvm": float(self.ocsvm_objects.score(s)[0])}
        clock.lap("fusion")
        return Prediction(prepared.name, prepared.points, prepared.index, prepared.grid_shape,
                          np.asarray(fused, np.float32), float(obj[0]), {"x1": scores.x1, "x2": scores.x2},
                          {"x1": scores.s1, "x2": scores.s2}, np.asarray(weights, np.float32), scores.image,
                          baseline_points, baseline_objects)

    def score_experts(self, prepared: PreparedScan, exclude_scan: int | None = None,
                       timings: dict[str, float] | None = None) -> ExpertScores:
        """X1, X2 and the object scores of one prepared scan; `timings` (if given) accumulates seconds per stage."""
        cfg = self.config
        clock = _Clock(timings)
        r3 = self.expert3d.score(prepared.points, exclude_scan=exclude_scan)
        clock.lap("expert3d")
        cells = self.expert2d.features([prepared])[0]
        clock.lap("expert2d")
        pixels = flat_pixel_index(cells.view.pixels, cfg.expert2d.image_size)
        with self._lock:  # the bank builds its search structures on first use
            self.bank.warm_up()
        r2 = self.bank.score(None, r3.patch_idx, pixels, cells.features, neighbours=r3.neighbours)
        x1 = np.asarray(r3.point_scores, np.float32)
        x2 = np.asarray(r2.point_scores, np.float32)
        (rule1, rule2), index, points = cfg.object_rules, prepared.index, prepared.points
        scores = ExpertScores(x1, x2, object_score(x1, index, rule1, GRID, points),
                              object_score(x2, index, rule2, GRID, points), cells.view.image[..., 0])
        clock.lap("memory")
        return scores

    def _cell_features(self, prepared: list[PreparedScan], progress: bool, desc: str):
        batch = self.config.expert2d.batch_size
        out = []
        for start in tqdm(range(0, len(prepared), batch), desc=desc, disable=not progress, unit="batch"):
            out += self.expert2d.features(prepared[start:start + batch])
        return out

    def _prepared(self, scan, position: int) -> PreparedScan:
        if isinstance(scan, PreparedScan):
            return scan
        if isinstance(scan, torch.Tensor):
            scan = scan.detach().cpu().numpy()
        if isinstance(scan, np.ndarray):
            scan = Scan(points=scan, name=f"scan {position}")
        if not isinstance(scan, Scan):
            raise TypeError(f"scan {position}: expected a Scan, a PreparedScan or an (H, W, 3) / (N, 3) array, got "
                            f"{type(scan).__name__}")
        return prepare_scan(scan)

    def _require_fitted(self) -> None:
        if self.fusion is None or self.bank is None or self.expert3d is None or self.scales is None \
                or self.ocsvm_points is None:
            raise ValueError("IAENet: the model is not fitted; call fit() or IAENet.load()")

    def _fingerprint(self, prepared: list[PreparedScan]) -> str:
        import hashlib

        digest = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        for p in prepared:
            digest.update(p.name.encode())
            digest.update(np.ascontiguousarray(p.points).tobytes())
        return digest.hexdigest()[:16]

    # ---- files ---------------------------------------------------------------------------------------------

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """One safetensors file (tensors of every part) with a JSON header (format version, config, scales,
        fusion log, fit info). Refuses to replace an existing file unless overwrite=True."""
        self._require_fitted()
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
        tensors3, header3 = self.expert3d.state()
        tensors_bank, header_bank = self.bank.state()
        tensors_fusion, header_fusion = self.fusion.state()
        tensors = {**{f"expert3d.{k}": v for k, v in tensors3.items()},
                   **{f"memory.{k}": v for k, v in tensors_bank.items()},
                   **{f"fusion.{k}": v for k, v in tensors_fusion.items()}}
        header = {"config": self.config.to_dict(), "expert3d": header3, "memory": header_bank,
                  "fusion": header_fusion, "scales": dataclasses.asdict(self.scales),
                  "ocsvm_points": self.ocsvm_points.state(), "ocsvm_objects": self.ocsvm_objects.state(),
                  "fit_info": self.fit_info}
        save_tensors(path, tensors, MODEL_KIND, header)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> "IAENet":
        """Reads a file written by save (never unpickles); ValueError naming the file when it is damaged or from
        another version."""
        tensors, header = load_tensors(path, MODEL_KIND)
        try:
            model = cls(IAENetConfig.from_dict(header["config"]), device)
            parts = {name: {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
                     for name in ("expert3d", "memory", "fusion")}
            model.expert3d = Expert3D.from_state(parts["expert3d"], header["expert3d"], model.device)
            model.bank = DualMemoryBank.from_state(parts["memory"], header["memory"], model.device)
            model.fusion = ImportanceAwareFusion.from_state(parts["fusion"], header["fusion"])
            model.scales = ScoreScales(tuple(header["scales"]["point"]), tuple(header["scales"]["object"]))
            model.ocsvm_points = OCSVMFusion.from_state(header["ocsvm_points"])
            model.ocsvm_objects = OCSVMFusion.from_state(header["ocsvm_objects"])
            model.fit_info = dict(header.get("fit_info", {}))
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{path}: not a valid IAENet model file ({err})") from err
        return model


class _ScoreCache:
    """Expert scores of the fusion's training scans on disk, one .npz per scan, in a folder named by the data and
    configuration fingerprint (so a changed setup never reads stale scores)."""

    def __init__(self, root: str | Path, fingerprint: str):
        self.folder = Path(root) / f"scores-{fingerprint}"
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> ExpertScores | None:
        path = self.folder / f"{key}.npz"
        if not path.exists():
            return None
        with np.load(path) as z:
            return ExpertScores(z["x1"], z["x2"], float(z["s1"]), float(z["s2"]), z["image"])

    def put(self, key: str, scores: ExpertScores) -> None:
        tmp = self.folder / f"{key}.tmp.npz"
        np.savez(tmp, x1=scores.x1, x2=scores.x2, s1=scores.s1, s2=scores.s2, image=scores.image)
        tmp.replace(self.folder / f"{key}.npz")  # complete files only: an interrupted write is redone


class _Clock:
    """Adds the seconds since the last lap to timings[name] (nothing when timings is None)."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings, self.last = timings, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


@dataclass
class BenchmarkResult:
    """End-to-end throughput: scans timed, seconds per stage (summed), total seconds, peak resident memory."""

    scans: int
    seconds: float
    stages: dict[str, float]
    peak_rss_mb: float
    peak_gpu_mb: float | None
    device: str

    @property
    def scans_per_second(self) -> float:
        return self.scans / self.seconds

    def summary(self) -> str:
        stages = ", ".join(f"{k} {1000 * v / self.scans:.1f} ms" for k, v in self.stages.items())
        gpu = f", peak GPU memory {self.peak_gpu_mb:.0f} MB" if self.peak_gpu_mb is not None else ""
        return (f"{self.scans} scans on {self.device}: {self.scans_per_second:.2f} scans/s "
                f"({1000 * self.seconds / self.scans:.1f} ms per scan: {stages}); peak RSS {self.peak_rss_mb:.0f} MB"
                f"{gpu}")


def timed_prediction(model: IAENet, scan: Scan, stages: dict[str, float]) -> Prediction:
    """model.predict(scan) that adds the seconds of each stage (prepare, expert3d, expert2d, memory, fusion) to
    `stages`."""
    clock = _Clock(stages)
    prepared = prepare_scan(scan)
    clock.lap("prepare")
    return model._predict_one(prepared, stages)


def benchmark(model: IAENet, scans: Sequence[Scan], count: int = 20) -> BenchmarkResult:
    """Times `count` scans end to end (file already read: preparation, both experts, memory, fusion) after one
    warm-up scan; the scans are taken in turn from `scans`."""
    import resource

    if count < 1 or len(scans) == 0:
        raise ValueError(f"benchmark: need count >= 1 and at least one scan (count={count}, scans={len(scans)})")
    loaded = [scans[i] for i in range(min(count, len(scans)))]
    model.predict(loaded[0])  # warm-up: search structures, first-call allocations
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(model.device)
    stages: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(count):
        timed_prediction(model, loaded[i % len(loaded)], stages)
    seconds = time.perf_counter() - start
    peak_gpu = torch.cuda.max_memory_allocated(model.device) / 2 ** 20 if model.device.type == "cuda" else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    return BenchmarkResult(count, seconds, stages, rss, peak_gpu, str(model.device))
