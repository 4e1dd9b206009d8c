"""Per-op timings of the CUDA kernels against the CPU kernels, and whether their outputs agree, on a machine with
a CUDA device (run by .ci/gpu-check on a lent GPU machine; nothing here runs without one).

    PYTHONPATH=$PWD python3 benchmarks/gpu_timings.py --out timings.json

Inputs are seeded synthetic arrays of the sizes the pipeline uses (a 200k-point cloud, a 400 x 400 organized scan,
the synthetic retrieval scene of bench_retrieval.py, the paper's IAF networks on 200k points). Each op: one warm-up,
then the median of --repeats timed calls (CUDA: synchronised before and after each call). `same` says whether the CUDA output equals the CPU output
bit for bit (integer outputs, and float outputs where the kernels share their arithmetic).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from iaenet.ops import (estimate_normals, farthest_point_sample, fpfh, iaf_forward, knn, omp_residuals,
                        render_organized, restricted_knn)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("gpu_timings: no CUDA device visible")
    rng = np.random.default_rng(0)
    results = {"device": torch.cuda.get_device_name(0)}
    for name, function, inputs in _cases(rng):
        cpu_out, cpu_s = _timed(function, inputs, args.repeats, cuda=False)
        gpu_inputs = [torch.from_numpy(x).cuda() if isinstance(x, np.ndarray) else x for x in inputs]
        gpu_out, gpu_s = _timed(function, gpu_inputs, args.repeats, cuda=True)
        results[name] = {"cpu_ms": cpu_s * 1e3, "cuda_ms": gpu_s * 1e3, "speedup": cpu_s / gpu_s,
                         "same": _same(cpu_out, gpu_out)}
        print(f"{name:28s} cpu {cpu_s * 1e3:9.2f} ms  cuda {gpu_s * 1e3:8.3f} ms  x{cpu_s / gpu_s:7.1f}  "
              f"same={results[name]['same']}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return results


def _cases(rng):
    cloud = rng.standard_normal((200_000, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:400, 0:400].astype(np.float32) / 400 - 0.5
    surface = np.stack([xx * 0.1, yy * 0.1, 0.5 - 0.05 * np.exp(-(xx ** 2 + yy ** 2) / 0.05)], -1).reshape(-1, 3)
    grid = np.arange(len(surface), dtype=np.int64)
    normals = estimate_normals(surface, k=20)
    bank = rng.standard_normal((17_280, 153)).astype(np.float32)
    counts = rng.integers(40, 90, 12_000)
    rows = np.concatenate([rng.choice(len(bank), c, replace=False) for c in counts]).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    patches = rng.integers(0, len(counts), 4_000).astype(np.int64)
    queries = rng.standard_normal((576, 153)).astype(np.float32)
    atoms = rng.integers(0, len(bank), (576, 5)).astype(np.int64)
    scores = np.abs(rng.normal(0, 0.5, (200_000, 2))).astype(np.float32)
    iaf_layers = _iaf_layers(rng) + _iaf_layers(rng)  # the selector's, then the predictor's
    half = len(iaf_layers) // 2
    return [
        ("fps 200k -> 1024", lambda p: farthest_point_sample(p, 1024, start=0), [cloud]),
        ("knn 200k k=30", lambda p: knn(p, 30), [cloud]),
        ("normals 200k k=30", lambda p: estimate_normals(p, k=30), [cloud]),
        ("fpfh 160k k=100", lambda p: fpfh(p, k=100), [surface]),
        ("render 400x400 -> 224", lambda p, n, g: render_organized(p, n, g, (400, 400)), [surface, normals, grid]),
        ("retrieval 576 x 17k x 153", lambda b, i, r, s, q: restricted_knn(b, i, r, s, q, 5),
         [bank, indptr, rows, patches, queries]),
        ("omp 576 x 5 atoms x 153", lambda b, q, a: omp_residuals(b, q, a, 3), [bank, queries, atoms]),
        ("iaf 200k 2-64-64-64-2", lambda x, *p: iaf_forward(x, _pairs(p[:half]), _pairs(p[half:]), return_weights=True),
         [scores, *iaf_layers]),
    ]


def _iaf_layers(rng, widths=(2, 64, 64, 64, 2)) -> list:
    """One IAF network as a flat list weight, bias, weight, bias, ... (flat, so that each array goes to CUDA)."""
    layers = []
    for fan_in, out in zip(widths[:-1], widths[1:]):
        bound = 1 / np.sqrt(fan_in)
        layers += [rng.uniform(-bound, bound, (out, fan_in)).astype(np.float32),
                   rng.uniform(-bound, bound, out).astype(np.float32)]
    return layers


def _pairs(flat) -> list:
    """(weight, bias) pairs from a flat weight, bias, weight, bias, ... sequence."""
    return list(zip(flat[0::2], flat[1::2]))


def _timed(function, inputs, repeats: int, cuda: bool):
    out = function(*inputs)
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = function(*inputs)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def _same(a, b) -> bool:
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return all(np.array_equal(np.asarray(x), y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y))
               for x, y in zip(a, b))


if __name__ == "__main__":
    main()
