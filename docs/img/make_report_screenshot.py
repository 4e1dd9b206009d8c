"""Writes docs/img/report.png: the top of the scans part of an iaenet report on synthetic data, as headless
Chromium shows it.

The scans are iaenet's synthetic ones (iaenet.data.synthetic) drawn by the 2D expert's renderer; the score
maps are made up (tests/_report_inputs.py), not a model's output. Run from the repository root:

    PYTHONPATH=$PWD python docs/img/make_report_screenshot.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from _browser import HeadlessPage, find_chromium  # noqa: E402
from _report_inputs import metrics_of, synthetic_records  # noqa: E402

from iaenet.report import EvaluationReport, write_report  # noqa: E402

OUT = REPO / "docs" / "img" / "report.png"
WIDTH = 1240  # CSS pixels of the browser window and the picture


def main() -> None:
    chromium = find_chromium()
    if chromium is None:
        sys.exit("Chromium is not installed (apt-get install chromium)")
    records = synthetic_records(categories=("gland", "plate"), n_good=3, defects=("bump", "contamination"),
                                faint_defect=False, false_alarm=False)
    report = EvaluationReport("Synthetic data, made-up scores", {"preset": "fast"}, metrics_of(records), records)
    with tempfile.TemporaryDirectory() as folder:
        path = write_report(Path(folder) / "report.html", report, max_3d_views=1)
        with HeadlessPage(chromium, window=(WIDTH, 900)) as page:
            page.open(path)
            page.wait_until("!!document.querySelector('div.view3d .plot-container canvas')")
            top = page.evaluate("document.querySelector('#scans').getBoundingClientRect().top + scrollY")
            bottom = page.evaluate("document.querySelector('#scan-1').getBoundingClientRect().bottom + scrollY")
            if page.errors:
                sys.exit(f"the page reported errors: {page.errors}")
            page.screenshot(OUT, clip=(0, top, WIDTH, bottom - top + 8))
    # 256 colours keep the picture small; the report's own colours are few
    Image.open(OUT).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(OUT, optimize=True)
    print(f"{OUT}: {OUT.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
