"""`iaenet demo`: the whole job on the embedded synthetic data, for a first look.

Writes under OUT: data/ (a synthetic category in the MVTec 3D-AD layout, iaenet.data.synthetic), model.iaenet
(the `fast` preset fitted on its good training scans), metrics.json and report.html (the evaluation of its test
split), and prints the metrics table.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

DEMO_SCANS = {"n_train": 20, "n_validation": 0, "n_test_good": 8, "n_test_per_defect": 4}


@dataclass
class DemoResult:
    out: Path
    table: str
    seconds: dict[str, float]

    def summary(self) -> str:
        steps = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
        return (f"{self.table}\n\nwrote {self.out / 'report.html'}, {self.out / 'metrics.json'} and "
                f"{self.out / 'model.iaenet'} ({steps})")


def run_demo(out: str | Path = "iaenet-demo", category: str = "gland", *, preset: str = "fast",
             overwrite: bool = False, progress: bool = True) -> DemoResult:
    """Generate, fit, evaluate, report; returns the metrics table and the seconds of each step."""
    from iaenet._files import output_file
    from iaenet.data.datasets import open_dataset
    from iaenet.data.synthetic import generate_dataset
    from iaenet.evaluation import report_of
    from iaenet.model import IAENet
    from iaenet.report import write_report

    out = Path(out)
    for name in ("model.iaenet", "metrics.json", "report.html"):
        output_file(out / name, overwrite=overwrite, make_parents=True)
    seconds = {}
    start = time.perf_counter()
    data = generate_dataset(out / "data", categories=[category], overwrite=overwrite, **DEMO_SCANS)
    seconds["data"] = time.perf_counter() - start

    start = time.perf_counter()
    model = IAENet(preset).fit(open_dataset(data, category, "train"), progress=progress)
    model.fit_info["category"] = category
    model.save(out / "model.iaenet", overwrite=overwrite)
    seconds["fit"] = time.perf_counter() - start

    start = time.perf_counter()
    evaluation = model.evaluate(open_dataset(data, category, "test"), category=category, progress=progress)
    (out / "metrics.json").write_text(json.dumps({"category": category, "preset": preset,
                                                  "metrics": evaluation.metrics}, indent=1))
    description = {"data": f"synthetic {category} ({DEMO_SCANS['n_train']} good training scans)",
                   "preset": preset, "fit": f"{seconds['fit']:.0f} s"}
    write_report(out / "report.html", report_of(evaluation, f"iaenet demo - synthetic {category}", description),
                 overwrite=overwrite)
    seconds["evaluate"] = time.perf_counter() - start
    return DemoResult(out, evaluation.table(), seconds)
