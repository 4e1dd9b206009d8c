"""One self-contained HTML file per evaluation: metrics, curves, histograms, per-scan pictures, 3D views.

Fill an :class:`EvaluationReport` with one :class:`ScanRecord` per test scan and call :func:`write_report`.
The file holds everything it shows: pictures as base64 PNGs, charts as inline SVG, CSS inline and, for the
interactive 3D views, plotly.js once (from the ``plotly`` package; without it the report is written without
3D views and says so). See docs/report.md for what each part shows and how to read the selection map.
"""
from __future__ import annotations

import base64
import math
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np

from iaenet._files import output_file
from iaenet.charts import Series, histogram_chart, line_chart, thin_curve
from iaenet.metrics import MetricAccumulator, smooth_map
from iaenet.pictures import LEVELS, NO_POINT, gt_picture, grey_picture, map_picture, palette, png_bytes

# Score keys in display order; other keys (baselines) follow in the order of first appearance.
SCORE_KEYS = ("x1", "x2", "selector_output", "fused")
SELECTION_KEY = "selection"  # the signed map X2*S2 - X1*S1, drawn with the diverging colour map
KEY_TITLES = {"x1": "X1 (3D expert)", "x2": "X2 (2D expert)", "selection": "selection X2·S2 − X1·S1",
              "selector_output": "X1·S1 + X2·S2", "fused": "fused A"}
PRO_LIMIT = 0.3
SCALE_PERCENTILE = 99.9  # the top of each colour scale; the few higher scores saturate
HISTOGRAM_BINS = 50

_KEY_COLOURS = {"x1": "#1f5fbf", "x2": "#c8281e", "selector_output": "#8a3fb0", "fused": "#111111"}
_OTHER_COLOURS = ("#2a9d4b", "#e08a00", "#0097a7", "#7a5230", "#d6338a", "#5c6b73")
_NORMAL_COLOUR, _ANOMALOUS_COLOUR = "#3569c7", "#d62a1e"


@dataclass
class ScanRecord:
    """What the report shows of one test scan.

    name: unique scan name. category: part category. defect: defect type, "good" (or None) for a good scan.
    label: 0 good, 1 anomalous.
    image: (H, W) or (H, W, 3) float in [0, 1], the 2D expert's rendering (H = W = 224).
    gt: (H, W) bool ground truth, or None (a good scan: no defect pixels).
    maps: (H, W) float score maps by key: "x1", "x2", "fused", "selection" (X2*S2 - X1*S1, signed),
        "selector_output" (X1*S1 + X2*S2), baselines; any subset. 0 where no point: the pixels where every map
        is 0 are drawn as "no point".
    points: (N, 3) float valid points in metres. point_scores: (N,) float per key, as in ``maps``.
    point_labels: (N,) bool, True for points in the ground-truth defect, for the histograms of normal vs
        anomalous points; None for a good scan means all normal, for an anomalous scan that its points are
        left out of the histograms.
    object_scores: the scan's score by key ("x1", "x2", "fused", baselines such as "max", "add", "ocsvm").
    """

    name: str
    category: str
    defect: str | None
    label: int
    image: np.ndarray
    gt: np.ndarray | None = None
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    points: np.ndarray | None = None
    point_scores: dict[str, np.ndarray] = field(default_factory=dict)
    object_scores: dict[str, float] = field(default_factory=dict)
    point_labels: np.ndarray | None = None

    def __post_init__(self):
        where = f"scan {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ScanRecord.name: expected a non-empty str, got {self.name!r}")
        if not isinstance(self.category, str) or not self.category:
            raise ValueError(f"{where}: category must be a non-empty str, got {self.category!r}")
        if self.label not in (0, 1) or isinstance(self.label, float):
            raise ValueError(f"{where}: label must be 0 or 1, got {self.label!r}")
        self.label = int(self.label)
        self.defect = "good" if self.defect is None else str(self.defect)
        self.image = np.asarray(self.image)
        if self.image.ndim not in (2, 3) or (self.image.ndim == 3 and self.image.shape[2] != 3) \
                or self.image.size == 0 or (self.image.dtype.kind != "f" and self.image.dtype != np.uint8):
            raise ValueError(f"{where}: image must be (H, W) or (H, W, 3) float in [0, 1] (or uint8), "
                             f"got shape {self.image.shape} dtype {self.image.dtype}")
        if self.image.dtype.kind == "f" and not np.isfinite(self.image).all():
            raise ValueError(f"{where}: image holds NaN or infinite values")
        shape = self.image.shape[:2]
        if self.gt is not None:
            self.gt = _bool_array(self.gt, shape, f"{where}: gt")
            if self.label == 0 and self.gt.any():
                raise ValueError(f"{where}: label 0 (good) but the gt has {int(self.gt.sum())} defect pixels")
        self.maps = {key: _finite(value, f"{where}: maps[{key!r}]", shape) for key, value in self.maps.items()}
        if self.point_scores and self.points is None:
            raise ValueError(f"{where}: point_scores given without points")
        if self.points is not None:
            self.points = _finite(self.points, f"{where}: points", None)
            if self.points.ndim != 2 or self.points.shape[1] != 3:
                raise ValueError(f"{where}: points must have shape (N, 3), got {self.points.shape}")
            count = (len(self.points),)
            self.point_scores = {key: _finite(value, f"{where}: point_scores[{key!r}]", count)
                                 for key, value in self.point_scores.items()}
            if self.point_labels is not None:
                self.point_labels = _bool_array(self.point_labels, count, f"{where}: point_labels")
        self.object_scores = {key: _finite_number(value, f"{where}: object_scores[{key!r}]")
                              for key, value in self.object_scores.items()}

    @property
    def point_mask(self) -> np.ndarray:
        """(H, W) bool: the pixels that hold a point's score (some map is not 0)."""
        mask = np.zeros(self.image.shape[:2], dtype=bool)
        for value in self.maps.values():
            mask |= value != 0
        return mask


@dataclass
class EvaluationReport:
    """Everything one report shows.

    metrics: metrics[category or "category/defect"][score key][metric name] -> value, metric names such as
        "O-AUROC", "P-AUROC", "AUPRO@0.3", "AUPRO@0.01", "P-AUROC sigma4"; shown as given.
    model_description: free key -> text pairs (preset, backbone, fit time, ...). timings: name -> seconds.
    """

    title: str
    model_description: dict[str, str]
    metrics: dict[str, dict[str, dict[str, float]]]
    records: list[ScanRecord]
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if not all(isinstance(record, ScanRecord) for record in self.records):
            raise TypeError("EvaluationReport.records: expected a list of ScanRecord")
        repeated = sorted(name for name, count in Counter(r.name for r in self.records).items() if count > 1)
        if repeated:
            raise ValueError(f"EvaluationReport.records: scan names must be unique, repeated: {repeated[:5]}")
        for group, by_key in self.metrics.items():
            for key, values in by_key.items():
                for metric, value in values.items():
                    if not isinstance(value, (int, float, np.floating, np.integer)):
                        raise TypeError(f"metrics[{group!r}][{key!r}][{metric!r}]: expected a number, got {value!r}")


def write_report(path, report: EvaluationReport, *, max_scans_with_pictures: int = 40, max_3d_views: int = 6,
                 max_points_3d: int = 20000, sigma: float | None = 4.0, overwrite: bool = False) -> Path:
    """Writes ``report`` as one self-contained HTML file and returns its path.

    max_scans_with_pictures: scans shown with pictures, the hardest first (anomalous scans that score lowest
        against their category's good scans, good scans that score highest), taken in turn from each category;
        the others are listed by name.
    max_3d_views: interactive 3D views (plotly), for the hardest of those scans; each shows at most
        ``max_points_3d`` points (a seeded random subset), coloured by the fused point score.
    sigma: Gaussian smoothing (pixels) of the maps before the ROC and PRO curves, as in the evaluation;
        None or 0 for the raw maps.
    overwrite: replace an existing file (otherwise FileExistsError). The folder must exist.
    """
    for name, value in (("max_scans_with_pictures", max_scans_with_pictures), ("max_3d_views", max_3d_views),
                        ("max_points_3d", max_points_3d)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
    if sigma is not None and (isinstance(sigma, bool) or not isinstance(sigma, (int, float))
                              or not math.isfinite(sigma) or sigma < 0):
        raise ValueError(f"sigma: expected None or a finite number >= 0, got {sigma!r}")
    if not isinstance(report, EvaluationReport):
        raise TypeError(f"report: expected an EvaluationReport, got {type(report).__name__}")
    path = output_file(path, overwrite=overwrite)

    notes: list[str] = []
    selection = _pick_scans(report.records, max_scans_with_pictures)
    views = [r for r in selection.hardest_first if r.points is not None and len(r.points) and r.point_scores]
    views = views[:max_3d_views]
    plotly = _plotly() if views else None
    if views and plotly is None:
        notes.append("The Python package plotly is not installed, so this report has no interactive 3D views "
                     "(pip install plotly).")
        views = []
    scales = _colour_scales(selection.pictured)
    figures_3d = {r.name: _figure_3d(plotly, r, scales, max_points_3d) for r in views}
    body = [_header(report),
            _metrics_section(report.metrics),
            _curves_section(report.records, sigma, notes),
            _scans_section(selection, scales, figures_3d)]
    if notes:
        body.insert(1, '<section id="notes"><h2>Notes</h2><ul>'
                    + "".join(f"<li>{escape(note)}</li>" for note in notes) + "</ul></section>")
    scripts = f"<script>{plotly.offline.get_plotlyjs()}</script><script>{_PLOT_3D_SCRIPT}</script>" if views else ""
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(report.title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f'<body>{"".join(body)}{scripts}</body></html>\n')
    path.write_text(page, encoding="utf-8")
    return path


# ---- which scans get pictures ---------------------------------------------------------------------------------

@dataclass
class _Selection:
    """pictured: the scans with pictures, by category, hardest first; left_out: the others, the same way;
    hardest_first: the pictured scans in the order they were chosen; hardness: scan name -> [0, 1];
    key: the object-score key the ranking used (None: no common key, scans by name)."""

    pictured: list[ScanRecord]
    left_out: list[ScanRecord]
    hardest_first: list[ScanRecord]
    hardness: dict[str, float]
    key: str | None


def _pick_scans(records: list[ScanRecord], cap: int) -> _Selection:
    """Chooses up to ``cap`` scans for pictures.

    Hardness ranks a scan against the other class of its category by the object score of ``_ranking_key``:
    an anomalous scan's share of good scans that score at least as high (1 = missed at every threshold), a
    good scan's share of anomalous scans that score at most as high. Scans are taken from the categories in
    turn, each category's hardest first, so that every category shows its worst cases.
    """
    key = _ranking_key(records)
    by_category: dict[str, list[ScanRecord]] = {}
    for record in records:
        by_category.setdefault(record.category, []).append(record)
    hardness = {}
    for members in by_category.values():
        scores = {label: np.array([r.object_scores[key] for r in members if r.label == label]) if key else []
                  for label in (0, 1)}
        for record in members:
            other = scores[1 - record.label]
            if len(other) == 0:
                hardness[record.name] = 0.0
            elif record.label == 1:
                hardness[record.name] = float(np.mean(other >= record.object_scores[key]))
            else:
                hardness[record.name] = float(np.mean(other <= record.object_scores[key]))
        members.sort(key=lambda r: (-hardness[r.name], r.name))
    categories = list(by_category)  # in order of first appearance, as everywhere in the report
    queues = [list(by_category[name]) for name in categories]
    chosen: list[ScanRecord] = []
    while len(chosen) < cap and any(queues):
        for queue in queues:
            if queue and len(chosen) < cap:
                chosen.append(queue.pop(0))
    names = {r.name for r in chosen}
    ordered = [r for name in categories for r in by_category[name]]
    return _Selection([r for r in ordered if r.name in names], [r for r in ordered if r.name not in names],
                      chosen, hardness, key)


def _ranking_key(records: list[ScanRecord]) -> str | None:
    """The object-score key every scan has, preferring the fused score; None if there is none."""
    common = set.intersection(*(set(r.object_scores) for r in records)) if records else set()
    for key in ("fused", "selector_output", "x2", "x1"):
        if key in common:
            return key
    return min(common) if common else None


# ---- header and metrics ---------------------------------------------------------------------------------------

def _header(report: EvaluationReport) -> str:
    records = report.records
    categories = list(dict.fromkeys(r.category for r in records))
    anomalous = sum(r.label for r in records)
    parts = [f"<header><h1>{escape(report.title)}</h1>",
             f"<p>{len(records)} test scans ({anomalous} anomalous, {len(records) - anomalous} good) in "
             f"{len(categories)} categor{'y' if len(categories) == 1 else 'ies'}: "
             f"{escape(', '.join(categories))}.</p>",
             '<nav><a href="#metrics">Metrics</a> · <a href="#curves">Curves and histograms</a> · '
             '<a href="#scans">Scans</a></nav>']
    if report.model_description:
        parts.append(_key_value_table("Model", {k: str(v) for k, v in report.model_description.items()}))
    if report.timings:
        parts.append(_key_value_table("Timings", {k: f"{float(v):.3f} s" for k, v in report.timings.items()}))
    return "".join(parts) + "</header>"


def _key_value_table(caption: str, values: dict[str, str]) -> str:
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(v)}</td></tr>" for k, v in values.items())
    return f'<table class="kv"><caption>{escape(caption)}</caption>{rows}</table>'


def _metrics_section(metrics: dict[str, dict[str, dict[str, float]]]) -> str:
    parts = ['<section id="metrics"><h2>Metrics</h2>']
    if not metrics:
        return "".join(parts) + "<p>No metrics were given.</p></section>"
    parts.append("<p>One table per category, one per defect type below it: a row per score, a column per metric. "
                 "The best value of each AU-ROC / AU-PRO column is in bold.</p>")
    groups: dict[str, list[str]] = {}  # category -> its "category/defect" entries
    for name in metrics:
        groups.setdefault(name.split("/", 1)[0], [])
        if "/" in name:
            groups[name.split("/", 1)[0]].append(name)
    for category, defects in groups.items():
        parts.append(f"<h3>{escape(category)}</h3>")
        if category in metrics:
            parts.append(_metrics_table(metrics[category]))
        if defects:
            parts.append(f"<details><summary>{len(defects)} defect type{'s' if len(defects) > 1 else ''}</summary>")
            for name in defects:
                parts.append(f"<h4>{escape(name)}</h4>{_metrics_table(metrics[name])}")
            parts.append("</details>")
    return "".join(parts) + "</section>"


def _metrics_table(by_key: dict[str, dict[str, float]]) -> str:
    columns = list(dict.fromkeys(metric for values in by_key.values() for metric in values))
    best = {}
    for column in columns:
        values = [float(v[column]) for v in by_key.values() if column in v and math.isfinite(float(v[column]))]
        if values and any(word in column.upper().replace("-", "") for word in ("AUROC", "AUPRO")):
            best[column] = max(values)
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    rows = []
    for key, values in by_key.items():
        cells = []
        for column in columns:
            value = float(values[column]) if column in values else math.nan
            text = f"{value:.3f}" if math.isfinite(value) else "–"
            cells.append(f'<td class="best">{text}</td>' if best.get(column) == value else f"<td>{text}</td>")
        rows.append(f"<tr><th>{escape(KEY_TITLES.get(key, key))}</th>{''.join(cells)}</tr>")
    return f'<table class="metrics"><tr><th>score</th>{head}</tr>{"".join(rows)}</table>'


# ---- curves and histograms ------------------------------------------------------------------------------------

def _curves_section(records: list[ScanRecord], sigma: float | None, notes: list[str]) -> str:
    smoothing = f"smoothed with a Gaussian of σ = {sigma:g} px" if sigma else "not smoothed"
    parts = ['<section id="curves"><h2>Curves and histograms</h2>',
             f"<p>Per category and score: the pixel ROC curve and the PRO curve up to a false-positive rate of "
             f"{PRO_LIMIT:g} over all pixels of the 224×224 maps ({smoothing}; the legend gives the area, "
             f"AU-PRO divided by {PRO_LIMIT:g}), and the histograms of the point scores of normal and anomalous "
             f"points, each class scaled to 100 %.</p>"]
    without_gt = [r.name for r in records if r.label == 1 and r.gt is None]
    if without_gt:
        notes.append(f"{len(without_gt)} anomalous scan(s) have no ground truth and are left out of the pixel "
                     f"curves: {', '.join(without_gt[:10])}{' …' if len(without_gt) > 10 else ''}.")
    unlabelled = [r.name for r in records if r.label == 1 and r.points is not None and r.point_labels is None]
    if unlabelled:
        notes.append(f"{len(unlabelled)} anomalous scan(s) have no point labels and are left out of the "
                     f"histograms: {', '.join(unlabelled[:10])}{' …' if len(unlabelled) > 10 else ''}.")
    for category in dict.fromkeys(r.category for r in records):
        members = [r for r in records if r.category == category]
        charts = _curve_charts(category, members, sigma) + _histogram_charts(category, members)
        parts.append(f"<h3>{escape(category)}</h3>")
        parts.append(f'<div class="charts">{"".join(charts)}</div>' if charts else
                     "<p>No curves: these scans have no score maps with both normal and defect pixels.</p>")
    return "".join(parts) + "</section>"


def _curve_charts(category: str, records: list[ScanRecord], sigma: float | None) -> list[str]:
    roc, pro = [], []
    keys = _ordered_keys(k for r in records for k in r.maps if k != SELECTION_KEY)
    colours = _key_colours(keys)
    for key in keys:
        accumulator = MetricAccumulator()
        for record in records:
            if key in record.maps and (record.gt is not None or record.label == 0):
                score_map = smooth_map(record.maps[key], sigma) if sigma else record.maps[key]
                gt = record.gt if record.gt is not None else np.zeros(score_map.shape, dtype=bool)
                accumulator.add(score_map, gt, object_score=0.0, label=record.label)
        try:
            fpr, tpr = accumulator.pixel_roc_curve()
            auroc = accumulator.pixel_auroc()
            pro_fpr, pro_values = accumulator.pro_curve(PRO_LIMIT)
            aupro = accumulator.au_pro((PRO_LIMIT,))[PRO_LIMIT]
        except ValueError:  # no scans with this key, or only one class of pixels
            continue
        title = KEY_TITLES.get(key, key)
        roc.append(Series(f"{title}  {auroc:.3f}", *thin_curve(fpr, tpr), colours[key]))
        pro.append(Series(f"{title}  {aupro:.3f}", *thin_curve(pro_fpr, pro_values), colours[key]))
    if not roc:
        return []
    smoothed = f", σ={sigma:g}" if sigma else ""
    return [line_chart(roc, title=f"{category}: pixel ROC{smoothed}", x_label="false-positive rate",
                       y_label="true-positive rate", x_range=(0, 1), y_range=(0, 1), diagonal=True),
            line_chart(pro, title=f"{category}: PRO to FPR {PRO_LIMIT:g}{smoothed}", x_label="false-positive rate",
                       y_label="per-region overlap", x_range=(0, PRO_LIMIT), y_range=(0, 1))]


def _histogram_charts(category: str, records: list[ScanRecord]) -> list[str]:
    charts = []
    for key in _ordered_keys(k for r in records for k in r.point_scores if k != SELECTION_KEY):
        normal, anomalous = [], []
        for record in records:
            if key not in record.point_scores:
                continue
            scores = record.point_scores[key]
            if record.label == 0:
                normal.append(scores)
            elif record.point_labels is not None:
                normal.append(scores[~record.point_labels])
                anomalous.append(scores[record.point_labels])
        classes = [(name, np.concatenate(values), colour) for name, values, colour in
                   (("normal", normal, _NORMAL_COLOUR), ("anomalous", anomalous, _ANOMALOUS_COLOUR)) if values]
        classes = [(name, values, colour) for name, values, colour in classes if len(values)]
        if not classes:
            continue
        low = min(float(values.min()) for _, values, _ in classes)
        high = max(float(values.max()) for _, values, _ in classes)
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1) if high > low else np.array([low - 0.5, low + 0.5])
        series = [Series(f"{name} ({len(values):,} points)", edges, 100 * np.histogram(values, edges)[0] / len(values),
                         colour) for name, values, colour in classes]
        charts.append(histogram_chart(edges, series, title=f"{category}: {KEY_TITLES.get(key, key)}",
                                      x_label="point score", y_label="share of the class's points (%)"))
    return charts


# ---- scans: pictures and 3D views -----------------------------------------------------------------------------

@dataclass
class _Scale:
    """The colour scale of one map key over the pictured scans."""

    low: float
    high: float
    kind: str  # "score" or "signed"


def _colour_scales(records: list[ScanRecord]) -> dict[str, _Scale]:
    """Per map key: [min, 99.9th percentile] of the pictured scans' point pixels ("signed" for the selection
    map: ±99.9th percentile of |value|, zero in the middle)."""
    scales = {}
    for key in _ordered_keys(k for r in records for k in r.maps):
        values = np.concatenate([r.maps[key][r.point_mask] for r in records if key in r.maps])
        if key == SELECTION_KEY:
            limit = float(np.percentile(np.abs(values), SCALE_PERCENTILE)) if len(values) else 0.0
            scales[key] = _Scale(-limit, limit, "signed")
        else:
            low = float(values.min()) if len(values) else 0.0
            high = float(np.percentile(values, SCALE_PERCENTILE)) if len(values) else 0.0
            scales[key] = _Scale(low, max(low, high), "score")
    return scales


def _scans_section(selection: _Selection, scales: dict[str, _Scale], figures_3d: dict[str, str]) -> str:
    total = len(selection.pictured) + len(selection.left_out)
    ranking = (f"ranked by the object score “{KEY_TITLES.get(selection.key, selection.key)}”"
               if selection.key else "in name order (the scans share no object score)")
    parts = ['<section id="scans"><h2>Scans</h2>',
             f"<p>{len(selection.pictured)} of {total} scans with pictures, {ranking}: per category the "
             "anomalous scans that score lowest against the good ones and the good scans that score highest "
             f"come first. Interactive 3D views (drag to turn, scroll to zoom): {len(figures_3d)}.</p>"]
    if scales:
        parts.append('<div class="scales"><p>Colour scales, shared by all scans (grey: no point; values beyond a '
                     'scale saturate):</p>' + "".join(_scale_legend(key, scale) for key, scale in scales.items())
                     + "</div>")
    if SELECTION_KEY in scales:
        parts.append('<p class="legend">Selection map X2·S2 − X1·S1: <b class="red">red</b> where the 2D expert '
                     "contributes more to the fused score, <b class=\"blue\">blue</b> where the 3D expert does, "
                     "white where they weigh the same (the paper's Fig. 12).</p>")
    category = None
    for index, record in enumerate(selection.pictured):
        if record.category != category:
            category = record.category
            parts.append(f"<h3>{escape(category)}</h3>")
        parts.append(_scan_card(index, record, selection, scales, figures_3d.get(record.name)))
    if selection.left_out:
        items = "".join(f"<li>{escape(r.name)} — {escape(r.category)}/{escape(r.defect)}"
                        f"{_object_score_text(r, selection.key)}</li>" for r in selection.left_out)
        parts.append(f"<details><summary>{len(selection.left_out)} scans without pictures</summary>"
                     f"<ul>{items}</ul></details>")
    return "".join(parts) + "</section>"


def _scan_card(index: int, record: ScanRecord, selection: _Selection, scales: dict[str, _Scale],
               figure_3d: str | None) -> str:
    state = "anomalous" if record.label else "good"
    meta = [f"{escape(record.defect)} (anomalous)" if record.label else "good"]
    hardness = selection.hardness[record.name]
    if selection.key is not None:
        other = "good scans score at least as high" if record.label else "anomalous scans score at most as high"
        meta.append(f"{hardness:.0%} of the {escape(record.category)} {other}")
    if record.object_scores:
        meta.append("object scores: " + ", ".join(f"{escape(k)} {v:.4g}" for k, v in record.object_scores.items()))
    pictures = [_figure(grey_picture(record.image), "rendering", record.name)]
    if record.gt is not None:
        pictures.append(_figure(gt_picture(record.image, record.gt), "ground truth", record.name))
    mask = record.point_mask
    for key in _ordered_keys(record.maps):
        scale = scales[key]
        picture = map_picture(record.maps[key], scale.low, scale.high, kind=scale.kind, mask=mask)
        pictures.append(_figure(picture, KEY_TITLES.get(key, key), record.name))
    parts = [f'<article class="scan {state}" id="scan-{index}"><h4>{escape(record.name)}</h4>',
             f'<p class="meta">{" · ".join(meta)}</p><div class="pictures">{"".join(pictures)}</div>']
    if figure_3d is not None:
        parts.append(f'<div class="view3d" id="view3d-{index}" data-figure="figure3d-{index}"></div>'
                     f'<script type="application/json" id="figure3d-{index}">{figure_3d}</script>')
    return "".join(parts) + "</article>"


def _figure(picture, caption: str, scan: str) -> str:
    data = base64.b64encode(png_bytes(picture)).decode("ascii")
    width, height = picture.size
    return (f'<figure><img src="data:image/png;base64,{data}" width="{width}" height="{height}" '
            f'alt="{escape(caption)} of {escape(scan)}"><figcaption>{escape(caption)}</figcaption></figure>')


def _scale_legend(key: str, scale: _Scale) -> str:
    colours = palette(scale.kind)[np.linspace(0, LEVELS - 1, 11).astype(int)]
    stops = "".join(f'<stop offset="{i / 10:.1f}" stop-color="rgb({r},{g},{b})"/>'
                    for i, (r, g, b) in enumerate(colours))
    no_point = "rgb({},{},{})".format(*NO_POINT)
    return (f'<span class="scale"><span class="name">{escape(KEY_TITLES.get(key, key))}</span>'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="260" height="30" font-family="sans-serif" '
            f'font-size="11"><defs><linearGradient id="scale-{escape(key)}">{stops}</linearGradient></defs>'
            f'<rect x="30" y="2" width="200" height="12" fill="url(#scale-{escape(key)})" stroke="#444"/>'
            f'<rect x="2" y="2" width="20" height="12" fill="{no_point}" stroke="#444"/>'
            f'<text x="30" y="27">{scale.low:.4g}</text><text x="230" y="27" text-anchor="end">{scale.high:.4g}'
            f"</text></svg></span>")


def _object_score_text(record: ScanRecord, key: str | None) -> str:
    return f", {escape(key)} {record.object_scores[key]:.4g}" if key else ""


def _plotly():
    """The plotly package with its graph_objects and offline (plotly.js) modules, or None if not installed."""
    try:
        import plotly
        import plotly.graph_objects  # noqa: F401  (loads the submodules used through `plotly.`)
        import plotly.offline  # noqa: F401
    except ImportError:
        return None
    return plotly


def _figure_3d(plotly, record: ScanRecord, scales: dict[str, _Scale], max_points: int) -> str:
    """The plotly figure (JSON) of one scan's points coloured by its fused point score (or the first score)."""
    key = "fused" if "fused" in record.point_scores else _ordered_keys(record.point_scores)[0]
    points, scores = record.points, record.point_scores[key]
    if len(points) > max_points:  # a seeded subset keeps the file small and the page responsive
        keep = np.sort(np.random.default_rng(0).choice(len(points), max_points, replace=False))
        points, scores = points[keep], scores[keep]
    centred = ((points - points.mean(axis=0)) * 1000).astype(np.float32)  # mm around the centre
    scale = scales.get(key) or _Scale(float(scores.min()), float(scores.max()), "score")  # a key without maps
    colours = palette(scale.kind)[np.linspace(0, LEVELS - 1, 11).astype(int)]
    go = plotly.graph_objects
    trace = go.Scatter3d(
        x=centred[:, 0], y=centred[:, 1], z=centred[:, 2], mode="markers",
        marker=dict(size=2, color=scores.astype(np.float32), cmin=scale.low, cmax=max(scale.high, scale.low + 1e-12),
                    colorscale=[[i / 10, "rgb({},{},{})".format(*c)] for i, c in enumerate(colours)],
                    colorbar=dict(title=dict(text=KEY_TITLES.get(key, key)), thickness=12)),
        hovertemplate=f"{escape(key)} %{{marker.color:.4g}}<extra></extra>")
    axis = dict(showbackground=False, gridcolor="#ddd", zerolinecolor="#bbb")
    layout = go.Layout(
        template="none", height=440, margin=dict(l=0, r=0, t=30, b=0),
        title=dict(text=f"{record.name}: points coloured by {KEY_TITLES.get(key, key)}", font=dict(size=13)),
        scene=dict(aspectmode="data", xaxis=dict(title=dict(text="x (mm)"), **axis),
                   yaxis=dict(title=dict(text="y (mm)"), **axis), zaxis=dict(title=dict(text="z (mm)"), **axis),
                   camera=dict(eye=dict(x=0, y=0, z=-2.2), up=dict(x=0, y=-1, z=0))))
    # "<" escaped so that no text in the JSON can end the <script> element that holds it
    return go.Figure(data=[trace], layout=layout).to_json().replace("<", "\\u003c")


# ---- helpers ----------------------------------------------------------------------------------------------------

_DISPLAY_ORDER = ("x1", "x2", SELECTION_KEY, "selector_output", "fused")


def _ordered_keys(keys) -> list[str]:
    """Unique keys: the known ones in display order, then the others in order of first appearance."""
    unique = list(dict.fromkeys(keys))
    return [k for k in _DISPLAY_ORDER if k in unique] + [k for k in unique if k not in _DISPLAY_ORDER]


def _key_colours(keys: list[str]) -> dict[str, str]:
    """A line colour per key: fixed ones for IAENet's scores, the others in turn (baselines)."""
    others = iter(_OTHER_COLOURS * (1 + len(keys) // len(_OTHER_COLOURS)))
    return {key: _KEY_COLOURS[key] if key in _KEY_COLOURS else next(others) for key in keys}


def _finite(value, what: str, shape: tuple[int, ...] | None) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{what}: expected a numeric array, got dtype {array.dtype}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{what}: expected shape {shape}, got {array.shape}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: holds {int((~np.isfinite(array)).sum())} NaN or infinite value(s)")
    return array


def _finite_number(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return number


def _bool_array(value, shape: tuple[int, ...], what: str) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{what}: expected shape {shape}, got {array.shape}")
    if array.dtype == np.bool_:
        return array
    if array.dtype.kind in "iu" or (array.dtype.kind == "f" and np.isin(array, (0, 1)).all()):
        return array > 0
    raise TypeError(f"{what}: expected bool (or 0/1), got dtype {array.dtype}")


_PLOT_3D_SCRIPT = """
document.querySelectorAll("div.view3d").forEach(function (div) {
  var figure = JSON.parse(document.getElementById(div.dataset.figure).textContent);
  Plotly.newPlot(div, figure.data, figure.layout, {responsive: true, displaylogo: false});
});
"""

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.2em 2em;color:#222;font-size:14px}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{margin:1.2em 0 .4em}h4{margin:.6em 0 .3em}nav{margin:.6em 0 1em}a{color:#1f5fbf}
table{border-collapse:collapse;margin:.3em 1.5em .8em 0;display:inline-table;vertical-align:top}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
table.kv th,table.kv td{text-align:left}caption{font-weight:bold;text-align:left;padding:2px 0}
td.best{font-weight:bold;background:#e3f2e6}
.charts{display:flex;flex-wrap:wrap;gap:10px}.charts svg{border:1px solid #e6e6e6}
.scales{margin:.5em 0}.scale{display:inline-flex;align-items:center;margin-right:1.5em}
.scale .name{margin-right:.4em;font-weight:bold}
.legend b.red{color:#b2182b}.legend b.blue{color:#2166ac}
article.scan{border:1px solid #ddd;border-left:5px solid #999;padding:.4em .8em;margin:.8em 0}
article.scan.anomalous{border-left-color:#d62a1e}article.scan.good{border-left-color:#3569c7}
p.meta{margin:.2em 0 .5em;color:#555}
.pictures{display:flex;flex-wrap:wrap;gap:6px}
figure{margin:0;text-align:center}figure img{width:144px;height:144px;image-rendering:pixelated;border:1px solid #ccc}
figcaption{font-size:12px;color:#444}
.view3d{width:100%;max-width:760px;height:440px;margin-top:.5em;border:1px solid #eee}
details{margin:.5em 0}summary{cursor:pointer}
"""
