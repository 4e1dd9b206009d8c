"""The HTML evaluation report, the colour maps and picture writers, the coloured score PLY."""
from __future__ import annotations

import base64
import io
import re
import sys

import numpy as np
import pytest
from PIL import Image

from _browser import HeadlessPage, find_chromium
from _report_inputs import metrics_of, synthetic_records
from iaenet.data.io import read_scored_cloud, write_scored_cloud
from iaenet.pictures import (LEVELS, NO_POINT, blend_picture, colour_levels, colour_map, gt_picture, map_picture,
                             palette, write_heatmap_png)
from iaenet.report import EvaluationReport, ScanRecord, write_report

IMG = re.compile(r'<img src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)" alt="([^"]*)"')


@pytest.fixture(scope="module")
def records():
    return synthetic_records(categories=("gland", "ring"), n_good=2, defects=("bump", "contamination"))


@pytest.fixture(scope="module")
def report(records):
    return EvaluationReport(title="Synthetic <check> evaluation", model_description={"preset": "fast"},
                            metrics=metrics_of(records), records=records, timings={"fit": 1.5})


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(path, report, max_3d_views=2, max_points_3d=3000)


def _pictures(html: str) -> dict[str, Image.Image]:
    """alt text -> decoded picture, checking each has the size its tag says."""
    pictures = {}
    for data, width, height, alt in IMG.findall(html):
        picture = Image.open(io.BytesIO(base64.b64decode(data)))
        picture.load()
        assert picture.size == (int(width), int(height)), alt
        pictures[alt] = picture
    return pictures


def _luminance(rgb: np.ndarray) -> np.ndarray:
    linear = (rgb / 255.0) ** 2.2
    return linear @ np.array([0.2126, 0.7152, 0.0722])


# ---- colour maps and pictures ------------------------------------------------------------------------------

def test_score_colour_map_rises_in_lightness_and_signed_map_follows_the_sign():
    score = palette("score").astype(np.float64)
    assert score.shape == (LEVELS, 3)
    assert (np.diff(_luminance(score)) > 0).all()
    signed = palette("signed").astype(np.int64)
    middle = LEVELS // 2
    redness = signed[:, 0] - signed[:, 2]
    assert (redness[:middle] < 0).all() and redness[middle] == 0 and (redness[middle + 1:] > 0).all()  # blue, red
    lightness = _luminance(signed.astype(np.float64))
    assert lightness.argmax() == middle and (signed[middle] > 240).all()  # white at zero
    assert (np.diff(lightness[:middle + 1]) > 0).all() and (np.diff(lightness[middle:]) < 0).all()
    assert tuple(NO_POINT) not in {tuple(c) for c in np.vstack([score, signed]).astype(int)}


def test_colour_levels_clip_and_handle_a_flat_scale():
    np.testing.assert_array_equal(colour_levels([-1.0, 0.0, 0.5, 1.0, 2.0], 0.0, 1.0), [0, 0, 127, 254, 254])
    np.testing.assert_array_equal(colour_levels([0.9, 1.0, 1.1], 1.0, 1.0), [0, 127, 254])
    np.testing.assert_array_equal(colour_map([0.0, 1.0], 0.0, 1.0), palette()[[0, LEVELS - 1]])
    with pytest.raises(ValueError, match="vmin <= vmax"):
        colour_levels([0.0], 1.0, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        colour_levels([np.nan], 0.0, 1.0)
    with pytest.raises(ValueError, match="kind"):
        palette("rainbow")


def test_signed_map_picture_is_red_for_2d_blue_for_3d_grey_without_points():
    selection = np.array([[0.5, -0.5], [0.0, 0.0]], dtype=np.float32)  # X2*S2 - X1*S1
    mask = np.array([[True, True], [True, False]])
    rgb = np.asarray(map_picture(selection, -0.5, 0.5, kind="signed", mask=mask).convert("RGB")).astype(int)
    assert rgb[0, 0, 0] > rgb[0, 0, 2] + 50  # 2D expert favoured: red
    assert rgb[0, 1, 2] > rgb[0, 1, 0] + 50  # 3D expert favoured: blue
    assert (rgb[1, 0] > 240).all()  # equal weight: white
    assert tuple(rgb[1, 1]) == NO_POINT


def test_gt_and_blend_pictures():
    image = np.full((8, 8), 0.5, dtype=np.float32)
    gt = np.zeros((8, 8), bool)
    gt[2:6, 2:6] = True
    marked = np.asarray(gt_picture(image, gt)).astype(int)
    assert tuple(marked[2, 2]) == (220, 20, 20) and marked[3, 3, 0] > marked[3, 3, 1]  # outline, tinted inside
    assert tuple(marked[0, 0]) == (128,) * 3
    scores = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    blended = np.asarray(blend_picture(image, scores, 0, 1, mask=gt, alpha=1.0))
    np.testing.assert_array_equal(blended[gt], colour_map(scores[gt], 0, 1))
    assert (blended[~gt] == 128).all()
    with pytest.raises(ValueError, match="background"):
        blend_picture(np.zeros((4, 4)), scores, 0, 1)


def test_write_heatmap_png_refuses_to_overwrite_and_names_bad_folders(tmp_path):
    scores = np.linspace(0, 2, 224 * 200, dtype=np.float32).reshape(224, 200)
    path = write_heatmap_png(tmp_path / "heat.png", scores, 0.0, 2.0)
    with Image.open(path) as picture:
        assert picture.size == (200, 224)
        np.testing.assert_array_equal(np.asarray(picture.convert("RGB")), colour_map(scores, 0.0, 2.0))
    with pytest.raises(FileExistsError, match="heat.png"):
        write_heatmap_png(path, scores, 0.0, 2.0)
    render = np.full((224, 200), 0.8, dtype=np.float32)
    write_heatmap_png(path, scores, 0.0, 2.0, background=render, overwrite=True)
    with Image.open(path) as picture:
        assert picture.mode == "RGB" and picture.size == (200, 224)
    with pytest.raises(FileNotFoundError, match="missing"):
        write_heatmap_png(tmp_path / "missing" / "heat.png", scores, 0.0, 2.0)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="file"):
        write_heatmap_png(tmp_path / "file" / "heat.png", scores, 0.0, 2.0)


def test_scored_cloud_ply_carries_colours_open3d_reads(tmp_path, rng):
    o3d = pytest.importorskip("open3d")
    points = rng.random((300, 3)).astype(np.float32)
    scores = rng.random(300).astype(np.float32) * 3
    path = write_scored_cloud(tmp_path / "scored.ply", points, scores, vmin=0.5, vmax=2.5)
    cloud = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(cloud.points), points, atol=1e-6)
    np.testing.assert_allclose(np.asarray(cloud.colors) * 255, colour_map(scores, 0.5, 2.5), atol=1e-3)
    assert b"property uchar red" in path.read_bytes()[:400]
    back_points, back_scores = read_scored_cloud(path)
    np.testing.assert_array_equal(back_scores, scores)
    with pytest.raises(FileExistsError, match="scored.ply"):
        write_scored_cloud(path, points, scores)
    write_scored_cloud(path, points, scores, overwrite=True)  # default scale: the lowest to the highest score
    colours = np.asarray(o3d.io.read_point_cloud(str(path)).colors) * 255
    np.testing.assert_allclose(colours[scores.argmax()], palette()[-1], atol=1e-3)
    np.testing.assert_allclose(colours[scores.argmin()], palette()[0], atol=1e-3)


# ---- the report --------------------------------------------------------------------------------------------

def test_report_holds_every_scan_metric_and_picture(written, report, records):
    html = written.read_text(encoding="utf-8")
    assert "Synthetic &lt;check&gt; evaluation" in html and "<check>" not in html
    for record in records:
        assert record.name in html
    for group, by_key in report.metrics.items():
        assert f"<h4>{group}</h4>" in html or f"<h3>{group}</h3>" in html
        for values in by_key.values():
            for value in values.values():
                assert f"{value:.3f}" in html
    best = max(v["O-AUROC"] for v in report.metrics["gland"].values())
    gland_table = html.split("<h3>gland</h3>", 1)[1].split("</table>", 1)[0]
    assert f'<td class="best">{best:.3f}</td>' in gland_table

    pictures = _pictures(html)
    expected = sum(1 + (r.gt is not None) + len(r.maps) for r in records)  # every scan fits the default cap
    assert len(pictures) == expected
    assert all(p.size == (224, 224) for p in pictures.values())
    # the contamination (a colour defect) raises X2 more: its selection map is red at the defect
    scan = next(r for r in records if r.defect == "contamination")
    selection = np.asarray(pictures[f"selection X2·S2 − X1·S1 of {scan.name}"].convert("RGB")).astype(int)
    rows, cols = np.nonzero(scan.gt)
    centre = selection[int(rows.mean()), int(cols.mean())]
    assert centre[0] > centre[2] + 50
    bump = next(r for r in records if r.defect == "bump" and r.category == "ring")  # geometry: the 3D expert's
    selection = np.asarray(pictures[f"selection X2·S2 − X1·S1 of {bump.name}"].convert("RGB")).astype(int)
    rows, cols = np.nonzero(bump.gt)
    centre = selection[int(rows.mean()), int(cols.mean())]
    assert centre[2] > centre[0] + 10

    from plotly.offline import get_plotlyjs

    assert html.count(get_plotlyjs()[:300]) == 1
    assert html.count('<div class="view3d"') == 2
    assert "σ = 4 px" in html and len(re.findall(r"<svg[^>]*>", html)) >= 2 * (2 + 5)  # curves + histograms


def test_report_curves_carry_the_metrics_areas(written, report):
    html = written.read_text(encoding="utf-8")
    charts = html.split('<section id="curves">', 1)[1].split("</section>", 1)[0]
    for category in ("gland", "ring"):
        block = charts.split(f"<h3>{category}</h3>", 1)[1]
        for key, title in (("x1", "X1 (3D expert)"), ("fused", "fused A")):
            for metric in ("P-AUROC", "AUPRO@0.3"):
                assert f"{title}  {report.metrics[category][key][metric]:.3f}</text>" in block


def test_report_puts_the_hardest_scans_first_and_lists_the_rest(report, records, tmp_path):
    path = write_report(tmp_path / "few.html", report, max_scans_with_pictures=3, max_3d_views=0)
    html = path.read_text(encoding="utf-8")
    shown = re.findall(r'<article class="scan \w+" id="scan-\d+"><h4>([^<]+)</h4>', html)
    assert len(shown) == 3 and "plotly" not in html.lower()
    left = html.split("scans without pictures</summary>", 1)[1]
    assert all(r.name in left for r in records if r.name not in shown)
    assert "5 scans without pictures" in html
    # each category's hardest scan comes first: the faint (missed) defect or the good scan with a false alarm
    for category in ("gland", "ring"):
        members = [r for r in records if r.category == category]
        hardest = max(_hardness(r, members) for r in members)
        assert hardest > 0 and max(_hardness(r, members) for r in members if r.name in shown) == hardest


def _hardness(record: ScanRecord, members: list[ScanRecord]) -> float:
    other = np.array([r.object_scores["fused"] for r in members if r.label != record.label])
    score = record.object_scores["fused"]
    return float(np.mean(other >= score) if record.label else np.mean(other <= score))


def test_report_without_plotly_says_so(report, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)  # `import plotly` raises ImportError
    html = write_report(tmp_path / "r.html", report, max_scans_with_pictures=2).read_text(encoding="utf-8")
    assert "plotly is not installed" in html and 'class="view3d"' not in html
    assert len(IMG.findall(html)) > 0


def test_report_refuses_to_overwrite_and_checks_its_arguments(report, written, tmp_path):
    with pytest.raises(FileExistsError, match="report.html"):
        write_report(written, report)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        write_report(tmp_path / "nowhere" / "r.html", report)
    with pytest.raises(FileExistsError, match="folder"):
        write_report(tmp_path, report)
    with pytest.raises(ValueError, match="max_3d_views"):
        write_report(tmp_path / "r.html", report, max_3d_views=-1)
    with pytest.raises(ValueError, match="sigma"):
        write_report(tmp_path / "r.html", report, sigma=float("nan"))
    with pytest.raises(TypeError, match="EvaluationReport"):
        write_report(tmp_path / "r.html", {"records": []})
    assert not (tmp_path / "r.html").exists()


def test_scan_record_names_what_is_wrong(records):
    good = records[0]
    image = good.image
    with pytest.raises(ValueError, match=r"scan 'a': maps\['x1'\]: expected shape"):
        ScanRecord("a", "c", None, 0, image, maps={"x1": np.zeros((5, 5))})
    with pytest.raises(ValueError, match="scan 'a': .*NaN"):
        ScanRecord("a", "c", None, 0, image, maps={"x1": np.full(image.shape[:2], np.nan)})
    with pytest.raises(ValueError, match="label 0 .* defect pixels"):
        ScanRecord("a", "c", None, 0, image, gt=np.ones(image.shape[:2], bool))
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        ScanRecord("a", "c", "hole", 2, image)
    with pytest.raises(ValueError, match=r"point_scores\['fused'\]"):
        ScanRecord("a", "c", None, 0, image, points=np.zeros((4, 3)), point_scores={"fused": np.zeros(3)})
    with pytest.raises(ValueError, match="unique"):
        EvaluationReport("t", {}, {}, [good, good])
    assert ScanRecord("a", "c", None, 0, image).defect == "good"


# ---- in a real browser -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; CI: bash .ci/test-deps)")
    return executable


def test_report_renders_in_headless_chromium(written, chromium, tmp_path):
    broken = tmp_path / "broken.html"  # the checks must catch a broken picture and a script error
    broken.write_text('<html><body><img src="data:image/png;base64,AAAA"><script>undefinedCall()</script>'
                      "</body></html>")
    with HeadlessPage(chromium) as page:
        page.open(broken)
        assert page.evaluate("Array.from(document.images).every(i => i.naturalWidth > 0)") is False
        assert any("undefinedCall" in error for error in page.errors)

        page.errors.clear()
        page.open(written)
        page.wait_until("Array.from(document.querySelectorAll('div.view3d')).every(d => d.querySelector("
                        "'.plot-container canvas'))")
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth])")
        views = page.evaluate("document.querySelectorAll('div.view3d .plot-container').length")
        svgs = page.evaluate("Array.from(document.querySelectorAll('svg')).filter("
                             "s => s.getBoundingClientRect().width > 0).length")
        assert page.errors == []
    assert len(images) == len(IMG.findall(written.read_text(encoding="utf-8")))
    assert [alt for alt, width in images if width != 224] == []
    assert views == 2 and svgs >= 14


def test_report_of_partial_records_writes_and_notes_what_is_left_out(tmp_path, rng):
    image = rng.random((32, 32)).astype(np.float32)
    gt = np.zeros((32, 32), bool)
    gt[10:14, 10:14] = True
    x1 = [rng.random((32, 32)).astype(np.float32) + 2 * gt * (i == 1) for i in range(3)]
    records = [ScanRecord("good", "c", None, 0, image, maps={"x1": x1[0]}, object_scores={"x1": 1.0}),
               ScanRecord("found", "c", "hole", 1, image, gt=gt, maps={"x1": x1[1]}, object_scores={"x1": 3.0}),
               ScanRecord("no gt", "c", "hole", 1, image, maps={"x1": x1[2]},
                          points=rng.random((5, 3)), point_scores={"x1": rng.random(5)}, object_scores={})]
    html = write_report(tmp_path / "r.html", EvaluationReport("partial", {}, {}, records)).read_text(encoding="utf-8")
    assert "1 anomalous scan(s) have no ground truth" in html and "no point labels" in html
    assert "No metrics were given" in html and "in name order" in html  # no object score common to all
    assert len(_pictures(html)) == 3 * 2 + 1  # rendering + X1 each, the ground truth once
    assert html.count('class="view3d"') == 1 and "X1 (3D expert)  " in html  # a view coloured by X1; a ROC curve
