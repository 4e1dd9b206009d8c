"""The fit / eval / predict / bench / demo commands on a small synthetic category (tiny preset)."""
import json
import shutil

import pytest

from iaenet.cli import main

from conftest import small_synthetic_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return small_synthetic_dataset(tmp_path_factory.mktemp("cli"), "ring", n_train=4, seed=1)


@pytest.fixture(scope="module")
def model_file(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "ring.iaenet"
    assert main(["fit", str(data), "--category", "ring", "--preset", "tiny", "--out", str(out)]) == 0
    return out


def test_fit_refuses_to_replace_a_model(model_file, data, capsys):
    assert main(["fit", str(data), "--category", "ring", "--preset", "tiny", "--out", str(model_file)]) == 1
    assert "exists" in capsys.readouterr().err


def test_eval_writes_json_and_report(model_file, data, tmp_path, capsys):
    out_json, out_html = tmp_path / "m.json", tmp_path / "r.html"
    assert main(["eval", str(model_file), str(data), "--json", str(out_json), "--report", str(out_html)]) == 0
    metrics = json.loads(out_json.read_text())["metrics"]
    assert set(metrics["ring"]) == {"fused", "x1", "x2", "max", "add", "ocsvm"}
    assert "AUPRO@0.01 sigma4" in metrics["ring"]["fused"]
    html = out_html.read_text()
    assert html.startswith("<!DOCTYPE html>") and "fused" in html
    assert "ring" in capsys.readouterr().out
    assert main(["eval", str(model_file), str(data), "--json", str(out_json)]) == 1  # no silent overwrite


def test_predict_writes_outputs_and_goes_past_a_broken_file(model_file, data, tmp_path, capsys):
    scans = tmp_path / "scans"
    shutil.copytree(data / "ring" / "test", scans)
    (scans / "broken.tiff").write_bytes(b"not a tiff")
    out = tmp_path / "out"
    assert main(["predict", str(model_file), str(scans), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "broken.tiff" in err and "Traceback" not in err
    tiffs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.tiff"))
    assert "good/xyz/000.tiff" in tiffs and len(tiffs) == len(list(scans.rglob("xyz/*.tiff")))
    assert len(list(out.rglob("*.png"))) == len(tiffs) and len(list(out.rglob("*.ply"))) == len(tiffs)
    lines = (out / "scores.jsonl").read_text().splitlines()
    assert len(lines) == len(tiffs) and 0 <= json.loads(lines[0])["object_score"] <= 1
    # a second run refuses to replace the files unless asked
    (scans / "broken.tiff").unlink()
    assert main(["predict", str(model_file), str(scans), "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["predict", str(model_file), str(scans), "--out", str(out), "--overwrite"]) == 0


def test_bench_and_bad_arguments(model_file, data, tmp_path, capsys):
    assert main(["bench", str(model_file), str(data), "--scans", "2"]) == 0
    assert "scans/s" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "none.iaenet"), str(data)]) == 1
    assert main(["predict", str(model_file), str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_demo_runs_end_to_end(tmp_path):
    from iaenet.demo import run_demo

    result = run_demo(tmp_path / "demo", category="plate", preset="tiny", progress=False)
    assert (tmp_path / "demo" / "report.html").exists() and (tmp_path / "demo" / "model.iaenet").exists()
    assert "plate" in result.table and set(result.seconds) == {"data", "fit", "evaluate"}
    with pytest.raises(FileExistsError):
        run_demo(tmp_path / "demo", category="plate", preset="tiny", progress=False)
