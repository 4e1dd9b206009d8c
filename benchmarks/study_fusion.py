"""Fusion study (docs/fusion.md): IAF against each expert, the Max/Add/OCSVM fusions and its own ablations, on the
accuracy study's protocol (benchmarks/study_accuracy.py: held-out good training scans for O-AUROC, pixel metrics over
the test scans, raw and sigma 4).

    PYTHONPATH=$PWD python benchmarks/study_fusion.py --data ../shared/data/mvtec3d_dev --category cable_gland \
        --cache /tmp/iaenet_fusion [--preset fast] [--markdown] [--json FILE]

1. IAENet (the preset) is fitted on the protocol's fit scans (cached under --cache: model file and the fusion's
   training scores), exactly as `iaenet fit` does.
2. Both experts score every evaluation scan once (cached).
3. Scores compared on the same normalised expert scores: x1, x2, Max, Add, OCSVM, IAF ablations (the paper's Table 7:
   predictor only, + selector, + L_s without the entropy, full) trained on the same Cut-Paste samples.
4. Transfer check: IAF trained, for this measurement only, on real defective scans (2 folds over the defective test
   scans, stratified by defect type, with the same good training samples), against the Cut-Paste IAF on the same
   held-out fold.
5. Per defect type: which score wins (O-AUROC of the type's scans against all good evaluation scans, AUPRO@0.3 s4).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from iaenet.fusion import FusionSample, ImportanceAwareFusion, fuse_add, fuse_max
from iaenet.model import PRESETS, ExpertScores, IAENet
from iaenet.object_scores import OBJECT_RULES, object_score
from study_accuracy import GRID, Cache, Protocol, _cached, _key, evaluate_scores

FUSION_VARIANTS = ("predictor", "selector", "gate", "full")


def fitted_model(protocol: Protocol, preset: str, cache: Path, synthetic: int | None,
                 offsets: tuple[float, float] | None = None) -> IAENet:
    config = PRESETS[preset] if synthetic is None else PRESETS[preset].replace(synthetic_scans=synthetic)
    if offsets is not None:
        config = config.replace(synthesis=config.synthesis.__class__(min_offset=offsets[0], max_offset=offsets[1]))
    key = _key(config.to_dict(), [p.name for p in protocol.fit])
    path = cache / f"model-{key}.iaenet"
    if path.exists():
        return IAENet.load(path, device="cpu")
    model = IAENet(config, device="cpu").fit(protocol.fit, work_dir=cache)
    model.save(path)
    return model


def expert_scores(model: IAENet, protocol: Protocol, cache: Path) -> list[ExpertScores]:
    key = _key(str(model.fit_info.get("names")), model.config.to_dict())

    def compute(prepared):
        s = model.score_experts(prepared)
        return {"x1": s.x1, "x2": s.x2, "s1": s.s1, "s2": s.s2, "image": s.image}

    records = [_cached(Cache(cache).path(f"eval-{key}", _key(p.name) + ".npz"), compute, p)
               for p in protocol.evaluation]
    return [ExpertScores(r["x1"], r["x2"], float(r["s1"]), float(r["s2"]), r["image"]) for r in records]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--category", default="cable_gland")
    parser.add_argument("--cache", required=True, type=Path)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--synthetic", type=int, default=None, help="pseudo-anomalies (default: the preset's)")
    parser.add_argument("--offsets", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="Cut-Paste z offsets in metres (default: the preset's, G2SF's 0.2-2 mm)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    protocol = Protocol.load(args.data, args.category)
    start = time.perf_counter()
    model = fitted_model(protocol, args.preset, args.cache, args.synthetic, args.offsets)
    fit_s = time.perf_counter() - start
    samples = model.fusion_samples(protocol.fit, progress=False, work_dir=args.cache)
    scores = expert_scores(model, protocol, args.cache)
    x = [model.scales.normalise_points(np.stack([s.x1, s.x2], 1)) for s in scores]
    o = [model.scales.normalise_objects([s.s1, s.s2])[0] for s in scores]

    results: dict[str, dict] = {}
    point_scores = {"x1": [s.x1 for s in scores], "x2": [s.x2 for s in scores],
                    "max": [fuse_max(v) for v in x], "add": [fuse_add(v) for v in x],
                    "ocsvm": [model.ocsvm_points.score(v) for v in x]}
    object_scores = {"x1": [s.s1 for s in scores], "x2": [s.s2 for s in scores],
                     "max": [float(fuse_max(v[None])[0]) for v in o], "add": [float(fuse_add(v[None])[0]) for v in o],
                     "ocsvm": [float(model.ocsvm_objects.score(v[None])[0]) for v in o]}
    train_s = {}
    for variant in FUSION_VARIANTS:
        start = time.perf_counter()
        iaf = model.fusion if variant == model.config.fusion.variant else \
            ImportanceAwareFusion(model.config.fusion.replace(variant=variant)).fit(samples, progress=False)
        train_s[variant] = time.perf_counter() - start
        name = f"IAF {variant}"
        point_scores[name] = [iaf.predict_points(v) for v in x]
        object_scores[name] = [float(iaf.predict_objects(v[None])[0]) for v in o]
    for name in point_scores:
        results[name] = evaluate_scores(protocol, point_scores[name], {"o": object_scores[name]})
    # the object score of the full IAF taken from its fused point map instead of IAF on [s1, s2]
    for rule in OBJECT_RULES:
        objects = [object_score(a, p.index, rule, GRID, p.points)
                   for a, p in zip(point_scores["IAF full"], protocol.evaluation)]
        results[f"IAF full, object = {rule} of A"] = evaluate_scores(protocol, point_scores["IAF full"], {"o": objects})

    transfer = transfer_check(model, protocol, samples, x, o)
    per_defect = defect_table(protocol, point_scores, object_scores)
    summary = {"category": args.category, "preset": args.preset, "offsets": args.offsets,
               "fit_scans": len(protocol.fit),
               "fit_s": model.fit_info.get("timings", {}), "this_run_fit_or_load_s": fit_s,
               "fusion_train_s": train_s, "synthetic": int(sum(s.label for s in samples)),
               "good_samples": int(sum(1 - s.label for s in samples)), "load": os.getloadavg()[0],
               "scales": dataclasses.asdict(model.scales), "baseline_b": model.fusion.baseline,
               "expert_ce": model.fusion.expert_ce, "results": results, "transfer": transfer,
               "per_defect": per_defect}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    if args.markdown:
        print(markdown(summary))
    return summary


def transfer_check(model: IAENet, protocol: Protocol, samples: list[FusionSample], x, o) -> dict:
    """IAF trained on real defective scans (2 folds) vs the Cut-Paste IAF, both scored on the held-out fold's defects
    and every good evaluation scan. Returns per training source the fold-averaged metrics."""
    labels = np.array(protocol.labels)
    defective = np.flatnonzero(labels == 1)
    fold = np.zeros(len(labels), int)
    for defect in sorted(set(protocol.defects[i] for i in defective)):
        members = [i for i in defective if protocol.defects[i] == defect]
        for rank, i in enumerate(members):
            fold[i] = rank % 2
    good_samples = [s for s in samples if s.label == 0]
    out = {"cut-paste": [], "real": []}
    for held in (0, 1):
        train_idx = [i for i in defective if fold[i] != held]
        real = [FusionSample(x[i], protocol.evaluation[i].point_gt(), o[i], 1) for i in train_idx]
        iaf_real = ImportanceAwareFusion(model.config.fusion).fit(good_samples + real, progress=False)
        keep = [i for i in range(len(labels)) if labels[i] == 0 or fold[i] == held]
        sub = dataclasses.replace(protocol, evaluation=[protocol.evaluation[i] for i in keep],
                                  labels=[protocol.labels[i] for i in keep],
                                  defects=[protocol.defects[i] for i in keep],
                                  is_test=[protocol.is_test[i] for i in keep])
        for name, iaf in (("cut-paste", model.fusion), ("real", iaf_real)):
            out[name].append(evaluate_scores(sub, [iaf.predict_points(x[i]) for i in keep],
                                             {"o": [float(iaf.predict_objects(o[i][None])[0]) for i in keep]}))
    return {name: {k: float(np.mean([r[k] for r in runs])) for k in runs[0] if not isinstance(runs[0][k], list)}
            for name, runs in out.items()}


def defect_table(protocol: Protocol, point_scores: dict, object_scores: dict) -> dict:
    """Per defect type and score: O-AUROC (its scans vs every good evaluation scan) and AUPRO@0.3 s4 (its test
    scans with the good test scans)."""
    out = {}
    for defect in sorted(set(d for d, l in zip(protocol.defects, protocol.labels) if l == 1)):
        keep = [i for i, (d, l) in enumerate(zip(protocol.defects, protocol.labels)) if l == 0 or d == defect]
        sub = dataclasses.replace(protocol, evaluation=[protocol.evaluation[i] for i in keep],
                                  labels=[protocol.labels[i] for i in keep],
                                  defects=[protocol.defects[i] for i in keep],
                                  is_test=[protocol.is_test[i] for i in keep])
        out[defect] = {}
        for name in point_scores:
            m = evaluate_scores(sub, [point_scores[name][i] for i in keep],
                                {"o": [object_scores[name][i] for i in keep]})
            out[defect][name] = {"O-AUROC": m["O-AUROC o"], "AUPRO@0.3 s4": m["AUPRO@0.3 s4"],
                                 "P-AUROC s4": m["P-AUROC s4"]}
    return out


COLUMNS = ("P-AUROC", "AUPRO@0.3", "AUPRO@0.01", "P-AUROC s4", "AUPRO@0.3 s4", "AUPRO@0.01 s4")


def markdown(summary: dict) -> str:
    lines = ["| score | O-AUROC [95%] | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 2)]
    for name, m in summary["results"].items():
        lo, hi = m["O-AUROC o 95%"]
        lines.append(f"| {name} | {m['O-AUROC o']:.3f} [{lo:.2f}, {hi:.2f}] | "
                     + " | ".join(f"{m[c]:.3f}" for c in COLUMNS) + " |")
    lines += ["", "| IAF trained on | O-AUROC | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 2)]
    for name, m in summary["transfer"].items():
        lines.append(f"| {name} | {m['O-AUROC o']:.3f} | " + " | ".join(f"{m[c]:.3f}" for c in COLUMNS) + " |")
    names = list(next(iter(summary["per_defect"].values())))
    lines += ["", "| defect | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for defect, by_score in summary["per_defect"].items():
        for metric in ("O-AUROC", "AUPRO@0.3 s4"):
            best = max(by_score[n][metric] for n in names)
            lines.append(f"| {defect} {metric} | " + " | ".join(
                (f"**{by_score[n][metric]:.3f}**" if by_score[n][metric] == best else f"{by_score[n][metric]:.3f}")
                for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
