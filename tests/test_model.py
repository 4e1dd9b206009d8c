"""IAENet end to end on a small synthetic category: fit, predict, evaluate, save/load, threads, bad input."""
import json
import threading

import numpy as np
import pytest
import torch

from iaenet.data.datasets import open_dataset
from iaenet.evaluation import SCORE_KEYS
from iaenet.model import PRESETS, IAENet, IAENetConfig, benchmark

from conftest import small_synthetic_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return small_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), "gland", n_train=5, seed=0)


@pytest.fixture(scope="module")
def model(dataset):
    torch.set_num_threads(2)
    return IAENet("tiny", device="cpu").fit(open_dataset(dataset, "gland", "train"), progress=False)


def test_fit_records_what_it_did(model):
    info = model.fit_info
    assert info["scans"] == 5 and info["synthetic_scans"] == PRESETS["tiny"].synthetic_scans
    assert info["good_scans"] == PRESETS["tiny"].good_scans
    assert set(info["timings"]) == {"prepare_s", "expert3d_s", "memory_s", "fusion_scores_s", "fusion_fit_s"}
    assert model.bank.summary()["scans"] == 5 and len(model.fusion.log) == PRESETS["tiny"].fusion.epochs
    assert all(v > 0 for v in model.scales.point + model.scales.object)


def test_predict_a_scan_an_array_and_a_batch(model, dataset):
    test = open_dataset(dataset, "gland", "test")
    one = model.predict(test[0])
    n = len(one.points)
    assert one.scores.shape == (n,) and one.scores.dtype == np.float32
    assert ((one.scores >= 0) & (one.scores <= 1)).all() and 0 <= one.object_score <= 1
    assert one.weights.shape == (n, 2) and np.allclose(one.weights.sum(axis=1), 1, atol=1e-5)
    assert set(one.experts) == {"x1", "x2"} and not one.baselines
    assert set(model.predict(test[0], baselines=True).baselines) == {"max", "add", "ocsvm"}
    m = one.score_map()
    assert m.shape == (224, 224) and np.array_equal(m.reshape(-1)[one.index], one.scores)
    selection = one.point_values("selection")
    x = np.stack([one.experts["x1"], one.experts["x2"]], 1) * one.weights
    assert np.allclose(selection, x[:, 1] - x[:, 0])
    # the same scan given as its raw grid array, and in a batch: the same scores
    again = model.predict(test[0].points)
    assert np.array_equal(again.scores, one.scores)
    batch = model.predict([test[0], test[1]])
    assert len(batch) == 2 and np.array_equal(batch[0].scores, one.scores)


def test_unorganized_cloud_is_scored_per_point(model, dataset):
    scan = open_dataset(dataset, "gland", "test")[0]
    cloud = scan.points[np.all(scan.points != 0, axis=-1)]
    prediction = model.predict(cloud)
    assert prediction.grid_shape is None and prediction.scores.shape == (len(cloud),)
    with pytest.raises(ValueError, match="no grid"):
        prediction.score_map()


def test_evaluate_gives_every_score_and_defect(model, dataset):
    test = open_dataset(dataset, "gland", "test")
    evaluation = model.evaluate(test, progress=False)
    defects = {s.defect for s in test.samples if s.label == 1}
    assert set(evaluation.metrics) == {"gland"} | {f"gland/{d}" for d in defects}
    for key in SCORE_KEYS:
        values = evaluation.metrics["gland"][key]
        for name in ("O-AUROC", "P-AUROC", "AUPRO@0.3", "AUPRO@0.01", "P-AUROC sigma4", "AUPRO@0.3 sigma4"):
            assert 0 <= values[name] <= 1, (key, name)
    assert "gland" in evaluation.table() and "fused" in evaluation.table()


def test_save_load_gives_the_same_predictions(model, dataset, tmp_path):
    path = model.save(tmp_path / "m.iaenet")
    loaded = IAENet.load(path)
    scan = open_dataset(dataset, "gland", "test")[1]
    a, b = model.predict(scan, baselines=True), loaded.predict(scan, baselines=True)
    assert np.array_equal(a.scores, b.scores) and a.object_score == b.object_score
    for key in ("max", "add", "ocsvm"):
        assert np.array_equal(a.baselines[key], b.baselines[key])
    assert loaded.config == model.config
    for name in ("fast", "paper"):  # every preset survives the model file's JSON header
        assert IAENetConfig.from_dict(json.loads(json.dumps(PRESETS[name].to_dict()))) == PRESETS[name]
    with pytest.raises(FileExistsError, match="exists"):
        model.save(path)


def test_damaged_or_foreign_model_files_are_clear_errors(model, tmp_path):
    path = model.save(tmp_path / "m.iaenet")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # a byte inside the tensor data
    bad = tmp_path / "flipped.iaenet"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        IAENet.load(bad)
    model.expert3d.save(tmp_path / "expert.safetensors")
    with pytest.raises(ValueError, match="iaenet.model"):
        IAENet.load(tmp_path / "expert.safetensors")
    with pytest.raises(FileNotFoundError):
        IAENet.load(tmp_path / "missing.iaenet")


def test_threads_give_the_serial_results(model, dataset):
    scans = list(open_dataset(dataset, "gland", "test"))[:3]
    serial = [model.predict(s).scores for s in scans]
    results = [None] * len(scans)

    def work(i):
        results[i] = model.predict(scans[i]).scores

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(scans))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(a, b) for a, b in zip(serial, results))


def test_predict_files_goes_past_a_broken_file(model, dataset, tmp_path):
    test = open_dataset(dataset, "gland", "test")
    good_file = test.samples[0].files["xyz"]
    broken = tmp_path / "broken.tiff"
    broken.write_bytes(b"not a tiff")
    results = list(model.predict_files([broken, good_file, tmp_path / "missing.tiff"]))
    assert [p for p, _ in results] == [broken, good_file, tmp_path / "missing.tiff"]
    assert isinstance(results[0][1], ValueError) and "broken.tiff" in str(results[0][1])
    assert isinstance(results[2][1], FileNotFoundError)
    assert np.array_equal(results[1][1].scores, model.predict(test[0]).scores)


def test_benchmark_reports_throughput(model, dataset):
    result = benchmark(model, open_dataset(dataset, "gland", "test"), count=2)
    assert result.scans == 2 and result.scans_per_second > 0 and result.peak_rss_mb > 0
    assert set(result.stages) == {"prepare", "expert3d", "expert2d", "memory", "fusion"}
    assert "scans/s" in result.summary()


def test_bad_input(model, dataset):
    with pytest.raises(ValueError, match="preset"):
        IAENet("huge")
    with pytest.raises(ValueError, match="not fitted"):
        IAENet("tiny").predict(np.zeros((10, 3), np.float32) + 1)
    with pytest.raises(TypeError, match="scan 0"):
        model.predict([object()])
    with pytest.raises(ValueError, match="at least 2"):
        IAENet("tiny").fit(list(open_dataset(dataset, "gland", "train"))[:1], progress=False)
    with pytest.raises(ValueError, match="object_rules"):
        IAENetConfig(object_rules=("max", "mean"))
    with pytest.raises(ValueError, match="object_rules"):
        IAENetConfig(object_rules=("max",))
    with pytest.raises(ValueError, match="labelled"):
        model.evaluate([_unlabelled(dataset)], progress=False)


def _unlabelled(dataset):
    from iaenet.data.scan import Scan

    scan = open_dataset(dataset, "gland", "test")[0]
    return Scan(points=scan.points, name="unlabelled")
