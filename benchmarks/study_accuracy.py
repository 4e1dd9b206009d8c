"""Accuracy study of the two experts on real data (docs/accuracy.md): one protocol, one table, one row per change.

    PYTHONPATH=$PWD python benchmarks/study_accuracy.py --data ../shared/data/mvtec3d_dev --category cable_gland \
        --cache /tmp/iaenet_accuracy --rows base fullres lite1 ... [--markdown] [--json FILE]

Protocol (reused by the fusion study, benchmarks/study_fusion.py):
- A seeded part of train/good is held out (`holdout_count`: 40 of 223, a quarter of a smaller set); the experts
  are fitted on the rest. O-AUROC ranks the defective test scans against every good scan the fit never saw: the
  held-out training scans, validation/good and test/good (17 good scans instead of 5 on the dev subset), with a
  95 % bootstrap interval (scans resampled within each class).
- Pixel metrics (P-AUROC, AUPRO@0.3, AUPRO@0.01, exact) over the test scans, as published, on the 224 grid, raw and
  after the sigma-4 float Gaussian.
- Every row is computed on the same data with the same seeds; expensive stages are cached under --cache, keyed by
  the configuration that produced them (the 3D expert's fit, per-scan X1 outputs, per-scan 2D features), with the
  time they took, so per-scan and fit times are reported beside each row (2 CPU cores; the load is printed).

Rows (`ROWS`): a name -> changes to the baseline (3D expert preset, 2D expert config, object rule). X1 and X2 are
reported per row; X2 is scored through the shape-guided dual memory bank (and, for reference, the nearest of all
training cells).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from iaenet.data.datasets import open_dataset
from iaenet.experts import PRESETS, Expert3D, point_scores_to_grid
from iaenet.experts.expert2d import Expert2D, Expert2DConfig
from iaenet.memory import DualMemoryBank, MemoryConfig, flat_pixel_index
from iaenet.metrics import au_pro, object_auroc, pixel_auroc, smooth_map
from iaenet.object_scores import OBJECT_RULES, object_score
from iaenet.prepare import PreparedScan, prepare_scan

GRID = 224
BOOTSTRAP_ROUNDS = 2000


# ---- protocol ---------------------------------------------------------------------------------------------------

def holdout_count(n_train: int) -> int:
    """Good training scans held out for evaluation: 40 of the 223 of an MVTec 3D-AD category, a quarter of fewer."""
    return min(40, max(1, round(n_train / 4)))


@dataclass
class Protocol:
    """The fixed split of one category: `fit` scans for the experts, `evaluation` scans with their labels."""

    fit: list[PreparedScan]
    evaluation: list[PreparedScan]   # held-out train/good, validation/good, then test/*
    labels: list[int]
    defects: list[str]
    is_test: list[bool]              # pixel metrics are taken over the test scans
    holdout_names: list[str]

    @classmethod
    def load(cls, data: str | Path, category: str, seed: int = 0, fit_limit: int | None = None) -> "Protocol":
        train = open_dataset(data, category, "train")
        order = np.random.default_rng(seed).permutation(len(train))
        held = set(order[:holdout_count(len(train))].tolist())
        fit_ids = [i for i in range(len(train)) if i not in held]
        if fit_limit is not None:
            fit_ids = fit_ids[:fit_limit]
        fit = [prepare_scan(train[i]) for i in fit_ids]
        evaluation, labels, defects, is_test = [], [], [], []
        held_scans = [train[i] for i in sorted(held)]
        validation = list(open_dataset(data, category, "validation")) if _has_split(data, category, "validation") else []
        test = list(open_dataset(data, category, "test"))
        for scan, test_split in [(s, False) for s in held_scans + validation] + [(s, True) for s in test]:
            evaluation.append(prepare_scan(scan))
            labels.append(int(scan.label))
            defects.append(scan.defect or "good")
            is_test.append(test_split)
        return cls(fit, evaluation, labels, defects, is_test, [s.name for s in held_scans])


def _has_split(data, category, split) -> bool:
    try:
        open_dataset(data, category, split)
    except ValueError:
        return False
    return True


# ---- metrics ----------------------------------------------------------------------------------------------------

def evaluate_scores(protocol: Protocol, point_scores: list[np.ndarray], objects: dict[str, list[float]],
                    rng_seed: int = 0) -> dict:
    """P-AUROC, AUPRO@0.3/@0.01 raw and sigma 4 over the test scans; for each object rule (objects[rule] = one score
    per evaluation scan) O-AUROC over all evaluation scans with a 95 % bootstrap interval, and over the test scans."""
    maps, gts = [], []
    for prepared, scores, test in zip(protocol.evaluation, point_scores, protocol.is_test):
        if test:
            maps.append(point_scores_to_grid(np.asarray(scores, np.float32), prepared.index, (GRID, GRID)))
            gts.append(prepared.scan.gt)
    out = {}
    for suffix, ms in (("", maps), (" s4", [smooth_map(m, 4.0) for m in maps])):
        pro = au_pro(ms, gts, (0.3, 0.01))
        out[f"P-AUROC{suffix}"] = pixel_auroc(ms, gts)
        out[f"AUPRO@0.3{suffix}"] = pro[0.3]
        out[f"AUPRO@0.01{suffix}"] = pro[0.01]
    test_idx = [i for i, t in enumerate(protocol.is_test) if t]
    for rule, values in objects.items():
        auroc, interval = object_auroc_interval(values, protocol.labels, rng_seed)
        out[f"O-AUROC {rule}"] = auroc
        out[f"O-AUROC {rule} 95%"] = interval
        out[f"O-AUROC {rule} test only"] = object_auroc([values[i] for i in test_idx],
                                                        [protocol.labels[i] for i in test_idx])
    return out


def object_auroc_interval(scores, labels, seed: int = 0, rounds: int = BOOTSTRAP_ROUNDS) -> tuple[float, list[float]]:
    """O-AUROC and its 95 % percentile bootstrap interval (good and defective scans resampled separately)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    good, bad = scores[labels == 0], scores[labels == 1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        g = rng.choice(good, len(good))
        b = rng.choice(bad, len(bad))
        values.append(((b[:, None] > g[None]).mean() + 0.5 * (b[:, None] == g[None]).mean()))
    return object_auroc(scores, labels), [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


# ---- cached stages ----------------------------------------------------------------------------------------------

def _key(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class Cache:
    root: Path

    def path(self, *names: str) -> Path:
        p = self.root.joinpath(*names)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def fitted_expert3d(protocol: Protocol, config, cache: Cache, tag: str) -> tuple[Expert3D, dict]:
    """The 3D expert fitted on the protocol's fit scans (cached), and {"fit_s", "losses"}."""
    key = _key(config.to_json(), [p.name for p in protocol.fit])
    model_file, info_file = cache.path(f"expert3d-{key}.safetensors"), cache.path(f"expert3d-{key}.json")
    if model_file.exists() and info_file.exists():
        return Expert3D.load(model_file), json.loads(info_file.read_text())
    expert = Expert3D(config)
    start = time.perf_counter()
    expert.fit([p.points for p in protocol.fit], names=[p.name for p in protocol.fit], progress=True,
               log_path=cache.path(f"expert3d-{key}.loss.txt"))
    info = {"fit_s": time.perf_counter() - start, "losses": expert.losses, "tag": tag, "load": os.getloadavg()[0]}
    expert.save(model_file)
    info_file.write_text(json.dumps(info))
    return expert, info


def expert3d_outputs(expert: Expert3D, scans: list[PreparedScan], cache: Cache, key: str) -> list[dict]:
    """Per scan: X1 point scores, latent score, patch_idx, neighbours, seconds (cached)."""
    def compute(prepared):
        r = expert.score(prepared.points)
        return {"x1": r.point_scores, "latent": np.float64(r.latent_score), "patch_idx": r.patch_idx,
                "neighbours": r.neighbours}

    return [_cached(cache.path(f"x1-{key}", _safe(p.name) + ".npz"), compute, p) for p in scans]


def expert2d_outputs(expert: Expert2D, scans: list[PreparedScan], cache: Cache, key: str) -> list[dict]:
    """Per scan: f2 cell features, counts, the points' pixels, the rendering, seconds (cached)."""
    def compute(prepared):
        cells = expert.features([prepared])[0]
        return {"features": cells.features, "counts": cells.counts, "pixels": cells.view.pixels,
                "image": cells.view.image[..., 0]}

    return [_cached(cache.path(f"f2-{key}", _safe(p.name) + ".npz"), compute, p) for p in scans]


def _cached(path: Path, compute, prepared: PreparedScan) -> dict:
    """The arrays `compute(prepared)` gives, with its "seconds", from `path` if it was stored there before."""
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    start = time.perf_counter()
    record = dict(compute(prepared), seconds=np.float64(time.perf_counter() - start))
    np.savez(path, **record)
    return record


def _safe(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:16]


# ---- rows -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One configuration of the study: the 3D expert preset and changes, the 2D expert config changes, the memory
    config changes, and optionally fewer fit scans. Every object rule is evaluated on every row."""

    preset3d: str = "fast"
    changes3d: dict = field(default_factory=dict)
    changes2d: dict = field(default_factory=dict)
    changes_memory: dict = field(default_factory=dict)
    fit_limit: int | None = None
    bank_scans: int | None = None      # the bank from the first this-many fit scans only (the network from all)
    coreset: float | None = None       # the bank from this share of all fit patches, greedy k-center on M3D


ROWS: dict[str, Row] = {
    "base": Row(),
    # 2D view: drawn from the cleaned full-resolution grid (CPMF) instead of the 224 grid
    "full_r0": Row(changes2d={"render_source": "full", "radius": 0}),
    "full_r1": Row(changes2d={"render_source": "full", "radius": 1}),
    "full448_r1": Row(changes2d={"render_source": "full", "radius": 1, "image_size": 448}),
    # backbones (stride 4 + 8 stage ends unless named)
    "lite1": Row(changes2d={"backbone": "efficientnet_lite1"}),
    "lite2": Row(changes2d={"backbone": "efficientnet_lite2"}),
    "lite0_s8s16": Row(changes2d={"stages": (4, 7)}),
    "lite1_s8s16": Row(changes2d={"backbone": "efficientnet_lite1", "stages": (6, 10)}),
    "lite2_s8s16": Row(changes2d={"backbone": "efficientnet_lite2", "stages": (6, 10)}),
    "lite2_s4s8s16": Row(changes2d={"backbone": "efficientnet_lite2", "stages": (3, 6, 10)}),
    # CPMF's rotated views, features averaged per point
    "views3": Row(changes2d={"views": 3}),
    "views9": Row(changes2d={"views": 9}),
    # combinations of the helpful 2D changes
    "lite1_s4s8s16": Row(changes2d={"backbone": "efficientnet_lite1", "stages": (3, 6, 10)}),
    "lite1_views3": Row(changes2d={"backbone": "efficientnet_lite1", "views": 3}),
    "lite1_views9": Row(changes2d={"backbone": "efficientnet_lite1", "views": 9}),
    "lite1_full_r1": Row(changes2d={"backbone": "efficientnet_lite1", "render_source": "full", "radius": 1}),
    "lite1_full_r1_views9": Row(changes2d={"backbone": "efficientnet_lite1", "render_source": "full", "radius": 1,
                                           "views": 9}),
    # memory bank: a quarter of the patches, by scans or by a coreset (about equal retrieval time)
    "lite1_views9_bank6": Row(changes2d={"backbone": "efficientnet_lite1", "views": 9}, bank_scans=6),
    "lite1_views9_coreset25": Row(changes2d={"backbone": "efficientnet_lite1", "views": 9}, coreset=0.25),
    # 3D expert: all fit scans for the SDF training, longer training, the paper's networks on fewer patches
    "x1_all_scans": Row(changes3d={"max_train_scans": None}),
    "x1_long": Row(changes3d={"max_train_scans": None, "epochs": 120}),
    "x1_paper_fewer_patches": Row(preset3d="paper", changes3d={"group_mul_train": 1, "epochs": 20,
                                                                "max_train_scans": None}),
}


def run_row(name: str, row: Row, protocol: Protocol, cache: Cache) -> dict:
    config3d = PRESETS[row.preset3d].replace(**row.changes3d)
    fit_protocol = protocol if row.fit_limit is None else dataclasses.replace(protocol, fit=protocol.fit[:row.fit_limit])
    expert3d, info3d = fitted_expert3d(fit_protocol, config3d, cache, name)
    key3d = _key(config3d.to_json(), [p.name for p in fit_protocol.fit])
    config2d = Expert2DConfig(**row.changes2d)
    key2d = _key(dataclasses.asdict(config2d))
    expert2d = Expert2D(config2d)
    x1_fit = expert3d_outputs(expert3d, fit_protocol.fit, cache, key3d)
    reduce_s = 0.0
    if row.bank_scans is not None or row.coreset is not None:
        start = time.perf_counter()
        keep = (expert3d.bank_scan < row.bank_scans) if row.bank_scans is not None else \
            kcenter_mask(expert3d.bank, row.coreset)
        reduce_s = time.perf_counter() - start
        expert3d = reduced_expert(expert3d, keep)
        key3d = _key(key3d, row.bank_scans, row.coreset)
        x1_fit = [dict(x, patch_idx=x["patch_idx"][keep[expert3d.source_scan == i].numpy()])
                  for i, x in enumerate(x1_fit)]
    x1_eval = expert3d_outputs(expert3d, protocol.evaluation, cache, key3d)
    f2_fit = expert2d_outputs(expert2d, fit_protocol.fit, cache, key2d)
    f2_eval = expert2d_outputs(expert2d, protocol.evaluation, cache, key2d)

    start = time.perf_counter()
    bank = DualMemoryBank(MemoryConfig(image_size=config2d.image_size, cells=config2d.cells, **row.changes_memory))
    for i, (prepared, x1, f2) in enumerate(zip(fit_protocol.fit, x1_fit, f2_fit)):
        if len(x1["patch_idx"]):
            bank.add_scan(expert3d.bank[expert3d.bank_scan == i], x1["patch_idx"],
                          flat_pixel_index(f2["pixels"], config2d.image_size), f2["features"], name=prepared.name)
    bank_s = time.perf_counter() - start + reduce_s
    x2_scores, x2_seconds = [], []
    for x1, f2 in zip(x1_eval, f2_eval):
        start = time.perf_counter()
        r = bank.score(None, x1["patch_idx"], flat_pixel_index(f2["pixels"], config2d.image_size), f2["features"],
                       neighbours=x1["neighbours"])
        x2_seconds.append(time.perf_counter() - start)
        x2_scores.append(r.point_scores)
    x1_scores = [x["x1"] for x in x1_eval]
    result = {"row": name, "fit_scans": len(fit_protocol.fit), "load": os.getloadavg()[0],
              "fit3d_s": info3d["fit_s"], "final_loss": info3d["losses"][-1] if info3d["losses"] else None,
              "bank_s": bank_s, "x1_s_per_scan": float(np.median([x["seconds"] for x in x1_eval])),
              "f2_s_per_scan": float(np.median([f["seconds"] for f in f2_eval])),
              "x2_s_per_scan": float(np.median(x2_seconds)), "bank": bank.summary()}
    for expert, scores in (("X1", x1_scores), ("X2", x2_scores)):
        objects = {rule: [object_score(s, p.index, rule, GRID, p.points) for s, p in zip(scores, protocol.evaluation)]
                   for rule in OBJECT_RULES}
        if expert == "X1":
            objects["latent"] = [float(x["latent"]) for x in x1_eval]
        result[expert] = evaluate_scores(protocol, scores, objects)
    result["X1*X2"] = evaluate_scores(protocol, [a * b for a, b in zip(x1_scores, x2_scores)], {
        "product of max": [float(a.max() * b.max()) for a, b in zip(x1_scores, x2_scores)]})
    return result


def kcenter_mask(latents: torch.Tensor, share: float) -> torch.Tensor:
    """(M,) bool: a greedy k-center coreset (PatchCore) of round(share * M) rows, starting from row 0."""
    x = latents.double()
    count = max(1, round(share * len(x)))
    keep = torch.zeros(len(x), dtype=torch.bool)
    dist = torch.full((len(x),), torch.inf, dtype=torch.float64)
    pick = 0
    for _ in range(count):
        keep[pick] = True
        dist = torch.minimum(dist, ((x - x[pick]) ** 2).sum(1))
        pick = int(dist.argmax())
    return keep


def reduced_expert(expert: Expert3D, keep: torch.Tensor) -> Expert3D:
    """A copy of the 3D expert whose bank holds only the rows `keep`; `source_scan` remembers every original row's
    scan (to cut the fit scans' patch lists the same way)."""
    reduced = copy.copy(expert)
    reduced.source_scan = expert.bank_scan
    reduced.bank, reduced.bank_scan, reduced.bank_patch = (t[keep] for t in (expert.bank, expert.bank_scan,
                                                                               expert.bank_patch))
    return reduced


# ---- output -----------------------------------------------------------------------------------------------------

PIXEL_COLUMNS = ("P-AUROC", "AUPRO@0.3", "AUPRO@0.01", "P-AUROC s4", "AUPRO@0.3 s4", "AUPRO@0.01 s4")


def markdown(results: list[dict], rule: str = "max") -> str:
    """The study table (O-AUROC with the object rule `rule`) and the object-rule table."""
    lines = [f"| row | expert | O-AUROC ({rule}) [95%] | " + " | ".join(PIXEL_COLUMNS)
             + " | fit 3D s | s/scan X1 + f2 + X2 |", "|" + "---|" * 11]
    for r in results:
        for expert in ("X1", "X2"):
            m = r[expert]
            lo, hi = m[f"O-AUROC {rule} 95%"]
            lines.append(f"| {r['row']} | {expert} | {m[f'O-AUROC {rule}']:.3f} [{lo:.2f}, {hi:.2f}] | "
                         + " | ".join(f"{m[c]:.3f}" for c in PIXEL_COLUMNS)
                         + f" | {r['fit3d_s']:.0f} | {r['x1_s_per_scan']:.3f} + {r['f2_s_per_scan']:.3f} + "
                           f"{r['x2_s_per_scan']:.3f} |")
    rules = list(OBJECT_RULES) + ["latent"]
    lines += ["", "| row | expert | " + " | ".join(rules) + " |", "|" + "---|" * (len(rules) + 2)]
    for r in results:
        for expert in ("X1", "X2"):
            m = r[expert]
            lines.append(f"| {r['row']} | {expert} | " + " | ".join(
                f"{m[f'O-AUROC {x}']:.3f}" if f"O-AUROC {x}" in m else "–" for x in rules) + " |")
        lines.append(f"| {r['row']} | s1 x s2 | {r['X1*X2']['O-AUROC product of max']:.3f} |" + " |" * len(rules))
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--category", default="cable_gland")
    parser.add_argument("--cache", required=True, help="folder for cached fits and per-scan outputs")
    parser.add_argument("--rows", nargs="+", default=["base"], choices=sorted(ROWS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    protocol = Protocol.load(args.data, args.category, args.seed)
    print(f"fit {len(protocol.fit)} scans; evaluation {len(protocol.evaluation)} scans "
          f"({sum(protocol.labels)} defective, {len(protocol.labels) - sum(protocol.labels)} good)", flush=True)
    cache = Cache(Path(args.cache))
    results = []
    for name in args.rows:
        result = run_row(name, ROWS[name], protocol, cache)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")
    if args.markdown:
        print(markdown(results))
    return results


if __name__ == "__main__":
    main()
