"""Small inline-SVG charts for the HTML report: line charts (ROC and PRO curves) and histograms.

Each function returns one ``<svg>`` element as a string: no scripts, no external files, a few kilobytes.
Curves with many points are thinned for drawing (``thin_curve``) to at most a few hundred vertices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

import numpy as np

WIDTH, HEIGHT = 380, 270
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 50, 12, 26, 40
_LEGEND_ROW = 15


@dataclass
class Series:
    """One line of a chart: (n,) x and y in data units, a CSS colour, a legend label."""

    label: str
    x: np.ndarray
    y: np.ndarray
    colour: str
    fill: bool = False  # shade the area under the line (histograms)


def line_chart(series: list[Series], *, title: str, x_label: str, y_label: str, x_range: tuple[float, float],
               y_range: tuple[float, float], legend: str = "lower right", diagonal: bool = False) -> str:
    """An SVG chart of the series as polylines inside the given axis ranges.

    legend: "lower right" or "upper right" (inside the plot area). diagonal: draw the chance line y = x.
    """
    frame = _Frame(x_range, y_range)
    parts = [frame.axes(title, x_label, y_label)]
    if diagonal:
        (x0, y0), (x1, y1) = frame.point(x_range[0], x_range[0]), frame.point(x_range[1], x_range[1])
        parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#999" '
                     'stroke-dasharray="4 3"/>')
    for item in series:
        xs, ys = frame.point(np.clip(item.x, *x_range), np.clip(item.y, *y_range))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
        if item.fill:
            _, base = frame.point(x_range[0], y_range[0])
            parts.append(f'<polygon points="{xs[0]:.1f},{base:.1f} {path} {xs[-1]:.1f},{base:.1f}" '
                         f'fill="{item.colour}" fill-opacity="0.18" stroke="none"/>')
        parts.append(f'<polyline points="{path}" fill="none" stroke="{item.colour}" stroke-width="1.6"/>')
    parts.append(frame.legend(series, legend))
    return _svg(parts)


def histogram_chart(edges: np.ndarray, series: list[Series], *, title: str, x_label: str,
                    y_label: str) -> str:
    """An SVG histogram: each series' ``y`` holds one value per bin between consecutive ``edges`` and is
    drawn as a shaded step outline (series overlap, so two classes stay readable)."""
    edges = np.asarray(edges, dtype=np.float64)
    top = max(float(np.max(item.y, initial=0.0)) for item in series) or 1.0
    steps = []
    for item in series:
        x = np.repeat(edges, 2)[1:-1]  # each bin's left and right edge
        steps.append(Series(item.label, x, np.repeat(item.y, 2), item.colour, fill=True))
    return line_chart(steps, title=title, x_label=x_label, y_label=y_label,
                      x_range=(float(edges[0]), float(edges[-1])), y_range=(0.0, top * 1.05), legend="upper right")


def thin_curve(x: np.ndarray, y: np.ndarray, steps: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """At most ~2 * steps vertices of a curve that is non-decreasing in x and y, spread evenly along it.

    Keeps the first point, the last, and the first point past every 1/steps of the curve's L1 length, so
    the drawn polyline stays within 1/steps of the full one (in units of the axis ranges)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    length = (x - x[0]) / max(x[-1] - x[0], 1e-300) + (y - y[0]) / max(y[-1] - y[0], 1e-300)
    keep = np.searchsorted(length, np.linspace(0.0, length[-1], 2 * steps + 1))
    keep = np.unique(np.concatenate(([0], np.minimum(keep, len(x) - 1), [len(x) - 1])))
    return x[keep], y[keep]


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) within [low, high]."""
    span = high - low
    if not span > 0:
        return np.array([low])
    raw = span / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = np.arange(first, high + step * 1e-9, step)
    return np.round(ticks / step) * step  # 0.30000000000000004 -> 0.3


class _Frame:
    """Data -> SVG coordinates for one plot area, and its axes."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]):
        self.x0, self.x1 = (float(v) for v in x_range)
        self.y0, self.y1 = (float(v) for v in y_range)
        if not (self.x1 > self.x0 and self.y1 > self.y0):
            raise ValueError(f"chart: empty axis range x {x_range}, y {y_range}")
        self.left, self.right = _MARGIN_LEFT, WIDTH - _MARGIN_RIGHT
        self.top, self.bottom = _MARGIN_TOP, HEIGHT - _MARGIN_BOTTOM

    def point(self, x, y):
        px = self.left + (np.asarray(x, dtype=np.float64) - self.x0) / (self.x1 - self.x0) * (self.right - self.left)
        py = self.bottom - (np.asarray(y, dtype=np.float64) - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)
        return px, py

    def axes(self, title: str, x_label: str, y_label: str) -> str:
        parts = [f'<rect x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
                 f'height="{self.bottom - self.top}" fill="#fff" stroke="#444"/>']
        for value in nice_ticks(self.x0, self.x1):
            px, _ = self.point(value, self.y0)
            parts.append(f'<line x1="{px:.1f}" y1="{self.top}" x2="{px:.1f}" y2="{self.bottom}" stroke="#e4e4e4"/>'
                         f'<text x="{px:.1f}" y="{self.bottom + 13}" text-anchor="middle">{_number(value)}</text>')
        for value in nice_ticks(self.y0, self.y1):
            _, py = self.point(self.x0, value)
            parts.append(f'<line x1="{self.left}" y1="{py:.1f}" x2="{self.right}" y2="{py:.1f}" stroke="#e4e4e4"/>'
                         f'<text x="{self.left - 4}" y="{py + 3.5:.1f}" text-anchor="end">{_number(value)}</text>')
        middle_x, middle_y = (self.left + self.right) / 2, (self.top + self.bottom) / 2
        parts.append(f'<text x="{middle_x:.1f}" y="{self.top - 9}" text-anchor="middle" font-weight="bold">'
                     f'{escape(title)}</text>'
                     f'<text x="{middle_x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>'
                     f'<text transform="translate(13 {middle_y:.1f}) rotate(-90)" text-anchor="middle">'
                     f'{escape(y_label)}</text>')
        return "".join(parts)

    def legend(self, series: list[Series], where: str) -> str:
        if where not in ("lower right", "upper right"):
            raise ValueError(f"legend: expected 'lower right' or 'upper right', got {where!r}")
        right = self.right - 6
        first = (self.bottom - 6 - _LEGEND_ROW * (len(series) - 1)) if where == "lower right" else self.top + 14
        rows = []
        for i, item in enumerate(series):
            y = first + i * _LEGEND_ROW
            rows.append(f'<line x1="{right - 18}" y1="{y - 4}" x2="{right}" y2="{y - 4}" stroke="{item.colour}" '
                        f'stroke-width="2.5"/><text x="{right - 22}" y="{y}" text-anchor="end" '
                        f'paint-order="stroke" stroke="#fff" stroke-width="3">{escape(item.label)}</text>')
        return "".join(rows)


def _svg(parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">' + "".join(parts) + "</svg>")


def _number(value: float) -> str:
    return f"{value:.4g}"
