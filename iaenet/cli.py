"""The `iaenet` command: `iaenet --help` lists the subcommands."""
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


def _run_info(args) -> int:
    from iaenet.data.datasets import describe, format_description

    print(format_description(describe(args.data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
