"""The `iaenet` command: `iaenet --help` lists the subcommands.

    iaenet demo                                               # synthetic data -> fit -> evaluate -> report
    iaenet fit DATA --category C --preset fast --out model.iaenet
    iaenet eval model.iaenet DATA --json metrics.json --report report.html
    iaenet predict model.iaenet scans/ --out maps/            # TIFF maps, PNG heatmaps, PLY clouds, scores.jsonl
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iaenet import __version__


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    # the user's mistakes: bad arguments or files (ValueError, TypeError for a wrong dtype in a file)
    # and the file system's refusals (missing, unreadable, unwritable: OSError); anything else is a bug
    except (ValueError, TypeError, OSError) as err:
        print(f"iaenet {args.command}: error: {_message(err)}", file=sys.stderr)
        return 1


def _message(err: Exception) -> str:
    """One line for an error: `path: reason` for the OS's own errors, else the error's text."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror[0].lower()}{err.strerror[1:]}"
    return " ".join(str(err).split())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iaenet", description="Unsupervised anomaly detection on 3D scans (IAENet).")
    parser.add_argument("--version", action="version", version=f"iaenet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    synth = sub.add_parser("synth", help="write a synthetic dataset in the MVTec 3D-AD layout")
    synth.add_argument("out", type=Path, help="output folder")
    synth.add_argument("--categories", nargs="+", default=None, help="part categories (default: all)")
    synth.add_argument("--resolution", type=int, default=256, help="grid side in pixels (default 256)")
    synth.add_argument("--train", type=int, default=20, help="good training scans per category")
    synth.add_argument("--validation", type=int, default=4, help="good validation scans per category")
    synth.add_argument("--test-good", type=int, default=4, help="good test scans per category")
    synth.add_argument("--test-per-defect", type=int, default=3, help="test scans per defect type and category")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output folder")
    synth.set_defaults(run=_run_synth)

    anomalies = sub.add_parser("synth-anomalies", help="write Cut-Paste anomalies of a category's good training scans")
    anomalies.add_argument("data", type=Path, help="dataset root (only read)")
    anomalies.add_argument("--category", required=True, help="category whose train/good scans are used")
    anomalies.add_argument("--count", type=int, required=True, help="number of anomalous scans")
    anomalies.add_argument("--out", type=Path, required=True, help="output root (MVTec 3D-AD layout)")
    anomalies.add_argument("--seed", type=int, default=0)
    anomalies.add_argument("--overwrite", action="store_true", help="replace <out>/<category>/test/cutpaste")
    anomalies.set_defaults(run=_run_synth_anomalies)

    fit = sub.add_parser("fit", help="fit a model on a category's good training scans",
                         description="Fits IAENet on DATA/CATEGORY/train (good scans only): the 3D expert, the "
                                     "dual memory bank, then the fusion on Cut-Paste pseudo-anomalies. Writes one "
                                     "model file.",
                         epilog="example: iaenet fit mvtec3d --category cable_gland --preset fast --out cg.iaenet")
    fit.add_argument("data", type=Path, help="dataset root (MVTec 3D-AD, Eyecandies or Real3D-AD layout)")
    fit.add_argument("--category", required=True, help="the category to fit")
    fit.add_argument("--preset", default="fast", choices=["fast", "paper", "tiny"],
                     help="fast: minutes on two CPU cores; paper: the paper's sizes; tiny: seconds, for smoke "
                          "tests only (default fast)")
    fit.add_argument("--out", type=Path, required=True, help="model file to write (e.g. cable_gland.iaenet)")
    fit.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    fit.add_argument("--work-dir", type=Path, default=None,
                     help="cache of the fusion's training scores; a rerun after an interruption resumes there")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    fit.set_defaults(run=_run_fit)

    evaluate = sub.add_parser("eval", help="evaluate a model on a labelled split; metrics, JSON, HTML report",
                              description="Scores DATA/CATEGORY/SPLIT and prints O-AUROC, P-AUROC and AUPRO@0.3/"
                                          "@0.01 (raw and Gaussian-smoothed) of the fused score, both experts and "
                                          "the Max/Add/OCSVM fusions, per category and defect type.")
    evaluate.add_argument("model", type=Path, help="model file written by iaenet fit")
    evaluate.add_argument("data", type=Path, help="dataset root")
    evaluate.add_argument("--category", default=None, help="default: the category the model was fitted on")
    evaluate.add_argument("--split", default="test", help="split to evaluate (default test)")
    evaluate.add_argument("--json", type=Path, default=None, help="write the metrics to this JSON file")
    evaluate.add_argument("--report", type=Path, default=None, help="write a self-contained HTML report here")
    evaluate.add_argument("--sigma", type=float, default=4.0, help="Gaussian smoothing in pixels (0 = none)")
    evaluate.add_argument("--num-thresholds", type=int, default=None,
                          help="AUPRO on this many thresholds like the reference code (default: exact)")
    evaluate.add_argument("--device", default=None)
    evaluate.add_argument("--overwrite", action="store_true", help="replace existing --json/--report files")
    evaluate.set_defaults(run=_run_eval)

    predict = sub.add_parser("predict", help="score scan files; write maps, heatmaps and scored clouds",
                             description="Scores every scan file given (or found under a folder: .tiff, .npy, "
                                         ".npz, .ply, .pcd) and writes <out>/<name>.tiff (fused score map), .png "
                                         "(heatmap on the rendering), .ply (points coloured by score) and "
                                         "scores.jsonl (object scores). A file that cannot be read is reported "
                                         "on one line and skipped; the exit status is then 1.")
    predict.add_argument("model", type=Path, help="model file written by iaenet fit")
    predict.add_argument("inputs", type=Path, nargs="+", help="scan files or folders")
    predict.add_argument("--out", type=Path, required=True, help="output folder")
    predict.add_argument("--formats", nargs="+", default=["tiff", "png", "ply"], choices=["tiff", "png", "ply"])
    predict.add_argument("--device", default=None)
    predict.add_argument("--overwrite", action="store_true", help="replace existing output files")
    predict.set_defaults(run=_run_predict)

    demo = sub.add_parser("demo", help="the whole job on the embedded synthetic data: generate, fit, evaluate, "
                                       "report (a few minutes on two CPU cores)")
    demo.add_argument("--out", type=Path, default=Path("iaenet-demo"), help="output folder (default iaenet-demo)")
    demo.add_argument("--category", default="gland", help="synthetic part to use (default gland)")
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    demo.set_defaults(run=_run_demo)

    bench = sub.add_parser("bench", help="end-to-end throughput of a model: scans/s, per-stage seconds, peak memory")
    bench.add_argument("model", type=Path)
    bench.add_argument("data", type=Path, help="dataset root")
    bench.add_argument("--category", default=None)
    bench.add_argument("--split", default="test")
    bench.add_argument("--scans", type=int, default=20, help="scans to time (after one warm-up scan)")
    bench.add_argument("--device", default=None)
    bench.set_defaults(run=_run_bench)

    info = sub.add_parser("info", help="describe a dataset folder: layout, categories, splits, counts")
    info.add_argument("data", type=Path, help="dataset root (MVTec 3D-AD, Eyecandies or Real3D-AD layout)")
    info.set_defaults(run=_run_info)
    return parser


def _run_synth(args) -> int:
    from iaenet.data.synthetic import generate_dataset

    root = generate_dataset(
        args.out,
        categories=args.categories,
        resolution=args.resolution,
        n_train=args.train,
        n_validation=args.validation,
        n_test_good=args.test_good,
        n_test_per_defect=args.test_per_defect,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(f"wrote {root}")
    return 0


def _run_synth_anomalies(args) -> int:
    from iaenet.data.cutpaste import write_synthetic_anomalies

    folder = write_synthetic_anomalies(args.data, args.category, args.out, args.count, seed=args.seed,
                                       overwrite=args.overwrite)
    print(f"wrote {folder}")
    return 0


def _run_fit(args) -> int:
    from iaenet._files import output_file
    from iaenet.data.datasets import open_dataset
    from iaenet.model import IAENet

    output_file(args.out, overwrite=args.overwrite)  # fail before minutes of fitting, not after
    train = open_dataset(args.data, args.category, "train")
    print(f"fitting {args.preset} on {len(train)} good scans of {args.category}")
    model = IAENet(args.preset, device=args.device).fit(train, work_dir=args.work_dir)
    model.fit_info["category"] = args.category
    model.save(args.out, overwrite=args.overwrite)
    timings = ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in model.fit_info["timings"].items())
    print(f"wrote {args.out} ({timings})")
    return 0


def _run_eval(args) -> int:
    import json

    from iaenet._files import output_file
    from iaenet.data.datasets import open_dataset
    from iaenet.evaluation import report_of
    from iaenet.model import IAENet

    for path in (args.json, args.report):
        if path is not None:
            output_file(path, overwrite=args.overwrite, make_parents=True)
    model = IAENet.load(args.model, device=args.device)
    category = args.category or model.fit_info.get("category")
    if not category:
        raise ValueError(f"{args.model}: the model does not record its category; pass --category")
    evaluation = model.evaluate(open_dataset(args.data, category, args.split), category=category,
                                sigma=args.sigma or None, num_thresholds=args.num_thresholds)
    print(evaluation.table())
    if args.json is not None:
        args.json.write_text(json.dumps({"model": str(args.model), "data": str(args.data), "category": category,
                                         "split": args.split, "metrics": evaluation.metrics,
                                         "timings": evaluation.timings}, indent=1))
        print(f"wrote {args.json}")
    if args.report is not None:
        from iaenet.report import write_report

        description = {"model": str(args.model), "preset": model.config.preset, "category": category,
                       "fitted on": f"{model.fit_info.get('scans', '?')} scans"}
        write_report(args.report, report_of(evaluation, f"IAENet - {category}", description),
                     sigma=args.sigma or None, overwrite=args.overwrite)
        print(f"wrote {args.report}")
    return 0


def _run_predict(args) -> int:
    from tqdm.auto import tqdm

    from iaenet.data.io import SCAN_SUFFIXES
    from iaenet.model import IAENet
    from iaenet.outputs import summary_line, write_prediction

    files = _scan_files(args.inputs, SCAN_SUFFIXES)
    if not files:
        raise ValueError(f"no scan files ({', '.join(SCAN_SUFFIXES)}) in {', '.join(map(str, args.inputs))}")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = args.out / "scores.jsonl"
    model = IAENet.load(args.model, device=args.device)
    failed = 0
    lines = []
    for (path, stem), (_, result) in zip(files, tqdm(model.predict_files([f for f, _ in files]), total=len(files),
                                                     desc="scoring", unit="scan")):
        if isinstance(result, Exception):
            failed += 1
            tqdm.write(f"iaenet predict: skipped {path}: {_message(result)}", file=sys.stderr)
            continue
        try:
            write_prediction(result, args.out, stem, formats=args.formats, overwrite=args.overwrite)
        except (ValueError, OSError) as err:
            failed += 1
            tqdm.write(f"iaenet predict: could not write {stem}: {_message(err)}", file=sys.stderr)
            continue
        lines.append(summary_line(path, result))
    with open(summary, "a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    print(f"scored {len(lines)} of {len(files)} files into {args.out} (object scores: {summary})")
    return 1 if failed else 0


def _scan_files(inputs: list[Path], suffixes) -> list[tuple[Path, str]]:
    """(file, output stem) pairs: files as given (stem = file name), folders searched recursively (stem = the path
    under the folder, so test/hole/xyz/000.tiff and test/good/xyz/000.tiff do not collide)."""
    out = []
    for item in inputs:
        if item.is_dir():
            out += [(f, str(f.relative_to(item).with_suffix(""))) for f in sorted(item.rglob("*"))
                    if f.suffix.lower() in suffixes and f.is_file()]
        elif item.exists():
            out.append((item, item.stem))
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return out


def _run_demo(args) -> int:
    from iaenet.demo import run_demo

    result = run_demo(args.out, category=args.category, overwrite=args.overwrite)
    print(result.summary())
    return 0


def _run_bench(args) -> int:
    from iaenet.data.datasets import open_dataset
    from iaenet.model import IAENet, benchmark

    model = IAENet.load(args.model, device=args.device)
    category = args.category or model.fit_info.get("category")
    if not category:
        raise ValueError(f"{args.model}: the model does not record its category; pass --category")
    print(benchmark(model, open_dataset(args.data, category, args.split), args.scans).summary())
    return 0


def _run_info(args) -> int:
    from iaenet.data.datasets import describe, format_description

    print(format_description(describe(args.data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
