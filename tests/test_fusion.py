"""Importance-Aware Fusion: losses on hand-computed cases, training on toy data, baselines, state round trip."""
import math

import numpy as np
import pytest
import torch

from iaenet.fusion import (FusionConfig, FusionSample, IAFNet, ImportanceAwareFusion, OCSVMFusion, ScoreScales,
                           calibrated_cross_entropy, fuse_add, fuse_max, selector_loss)


def test_gate_closes_when_the_margin_is_met():
    weights = torch.tensor([[0.6, 0.4], [0.6, 0.4]], requires_grad=True)
    w = torch.tensor([0.5, 0.5])
    # b = 0.5, m = 0.1: the first sample's CE 0.3 beats b by 0.2 >= m (gate 0); the second's 0.45 does not
    ce = torch.tensor([0.3, 0.45])
    loss = selector_loss(ce, weights, baseline=0.5, margin=0.1, sample_weight=w)
    entropy = -(0.6 * math.log(0.6) + 0.4 * math.log(0.4))
    assert loss.item() == pytest.approx(0.5 * (0.1 - (0.5 - 0.45)) * entropy, rel=1e-6)
    loss.backward()
    assert torch.all(weights.grad[0] == 0)  # a closed gate passes no gradient
    assert torch.any(weights.grad[1] != 0)


def test_gate_is_a_constant_with_entropy_and_carries_gradient_without():
    ce = torch.tensor([0.9], requires_grad=True)
    weights = torch.tensor([[0.7, 0.3]], requires_grad=True)
    selector_loss(ce, weights, 0.5, 0.1, torch.ones(1)).backward()
    assert ce.grad is None and weights.grad is not None
    ce.grad = None
    selector_loss(ce, weights, 0.5, 0.1, torch.ones(1), with_entropy=False).backward()
    assert float(ce.grad[0]) == pytest.approx(1.0)


def test_entropy_term_pushes_weights_away_from_equal():
    logits = torch.tensor([[0.1, 0.0]], requires_grad=True)  # S close to [0.5, 0.5]
    optimizer = torch.optim.SGD([logits], lr=1.0)
    gaps = []
    for _ in range(20):
        weights = torch.softmax(logits, dim=1)
        gaps.append((weights[0, 0] - weights[0, 1]).item())
        loss = selector_loss(torch.tensor([1.0]), weights, baseline=0.5, margin=0.1, sample_weight=torch.ones(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert gaps[-1] > gaps[0] > 0 and all(b >= a for a, b in zip(gaps, gaps[1:]))


def test_calibrated_cross_entropy_matches_sklearn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.2
    x = rng.normal(size=400) + 1.5 * y
    w = np.full(400, 1 / 400)
    lr = LogisticRegression(C=1e12, tol=1e-12, max_iter=10000).fit(x[:, None], y)
    p = lr.predict_proba(x[:, None])[:, 1]
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert calibrated_cross_entropy(x, y, w) == pytest.approx(expected, rel=1e-5)
    # an uninformative score gives the entropy of the class balance
    assert calibrated_cross_entropy(np.zeros(400), y, w) == pytest.approx(
        -(y.mean() * np.log(y.mean()) + (1 - y.mean()) * np.log(1 - y.mean())), rel=1e-6)


def _toy_samples(n_scans=24, seed=0, good_expert=1):
    """Scans where expert `good_expert` separates anomalous points and the other is noise."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n_scans):
        n = 300
        labels = np.zeros(n, bool)
        if i % 2:
            labels[rng.choice(n, 15, replace=False)] = True
        x = np.abs(rng.normal(size=(n, 2))).astype(np.float32) * 0.5
        x[labels, good_expert] += 2.0
        samples.append(FusionSample(x, labels, x.max(axis=0), int(labels.any())))
    return samples


def _overlapping_samples(seed: int, strong: int, n_scans: int = 40):
    """Both experts see the anomalies, expert `strong` clearly (point AUROC ~0.96), the other weakly (~0.74)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n_scans):
        labels = np.zeros(400, bool)
        if i % 2:
            labels[rng.choice(400, 20, replace=False)] = True
        x = np.abs(rng.normal(size=(400, 2))).astype(np.float32)
        x[labels, strong] += 1.5
        x[labels, 1 - strong] += 0.5
        samples.append(FusionSample(x, labels, x.max(axis=0), int(labels.any())))
    return samples


@pytest.mark.parametrize("strong", [0, 1])
@pytest.mark.parametrize("seed", [2, 3])
def test_iaf_is_at_least_as_good_as_the_better_expert(strong, seed):
    """Whichever expert is the stronger and whatever the seed, the entropy term must not lock the selector onto one
    expert. Before the selector started at [0.5, 0.5] with a predictor warm-up, these seeds ended at a single
    expert (AUROC 0.91-0.92 with the stronger one, 0.73 with the weaker); the fused score reaches 0.96-0.97."""
    from sklearn.metrics import roc_auc_score

    train, test = _overlapping_samples(0, strong), _overlapping_samples(1, strong)
    iaf = ImportanceAwareFusion(FusionConfig(epochs=60, seed=seed)).fit(train, progress=False)
    assert iaf.baseline == pytest.approx(min(iaf.expert_ce)) and iaf.expert_ce[strong] < iaf.expert_ce[1 - strong]
    x = np.concatenate([s.points for s in test])
    y = np.concatenate([s.point_labels for s in test])
    a, weights = iaf.predict_points(x, return_weights=True)
    assert roc_auc_score(y, a) >= roc_auc_score(y, x[:, strong])  # ~0.96: the fusion is at least the better expert
    assert np.allclose(weights.sum(axis=1), 1, atol=1e-5)
    assert iaf.log[-1]["loss"] < iaf.log[0]["loss"]


def test_selector_starts_equal_and_waits_for_the_warm_up():
    cfg = FusionConfig(epochs=10, warmup=0.3, batch_scans=8, points_per_scan=128)
    iaf = ImportanceAwareFusion(cfg)
    probe = np.random.default_rng(0).random((20, 2)).astype(np.float32) * 4
    _, weights = iaf.predict_points(probe, return_weights=True)
    assert np.allclose(weights, 0.5)
    warm = ImportanceAwareFusion(cfg.replace(epochs=3, warmup=0.99)).fit(_toy_samples(), progress=False)
    _, weights = warm.predict_points(probe, return_weights=True)
    assert np.allclose(weights, 0.5)  # three warm-up epochs of three: the selector never moved
    with pytest.raises(ValueError, match="warmup"):
        FusionConfig(warmup=1.0)


def test_training_is_deterministic_and_state_round_trips():
    cfg = FusionConfig(epochs=3, batch_scans=8, points_per_scan=128)
    a = ImportanceAwareFusion(cfg).fit(_toy_samples(), progress=False)
    b = ImportanceAwareFusion(cfg).fit(_toy_samples(), progress=False)
    for p, q in zip(a.network.parameters(), b.network.parameters()):
        assert torch.equal(p, q)
    tensors, header = a.state()
    c = ImportanceAwareFusion.from_state(tensors, header)
    x = np.random.default_rng(3).random((50, 2)).astype(np.float32) * 3
    assert np.array_equal(a.predict_points(x), c.predict_points(x))


@pytest.mark.parametrize("variant", ["predictor", "selector", "gate", "full"])
def test_every_ablation_trains_and_predicts(variant):
    iaf = ImportanceAwareFusion(FusionConfig(epochs=2, batch_scans=8, points_per_scan=128, variant=variant))
    iaf.fit(_toy_samples(), progress=False)
    a, w = iaf.predict_points(np.ones((5, 2), np.float32), return_weights=True)
    assert a.shape == (5,) and np.isfinite(a).all() and w.shape == (5, 2)
    if variant == "predictor":
        assert np.all(w == 1)


def test_network_has_the_papers_size():
    net = IAFNet(64, 3)
    # two MLPs 2 -> 64 -> 64 -> 64 -> 2: 2 x 8642 parameters (the paper: "about 18k")
    assert sum(p.numel() for p in net.parameters()) == 2 * 8642


def test_scales_and_baselines():
    scales = ScoreScales.fit([np.stack([np.arange(101.0), 2 * np.arange(101.0)], 1)], np.array([[1.0, 3.0]] * 5))
    assert scales.point == pytest.approx((99.0, 198.0)) and scales.object == pytest.approx((1.0, 3.0))
    x = scales.normalise_points([[99.0, 99.0]])
    assert x.tolist() == [[1.0, 0.5]]
    assert fuse_max(x).tolist() == [1.0] and fuse_add(x).tolist() == [1.5]
    with pytest.raises(ValueError, match="scale"):
        ScoreScales.fit([np.zeros((10, 2))], np.ones((3, 2)))


def test_ocsvm_scores_outliers_higher_and_round_trips():
    rng = np.random.default_rng(0)
    good = np.abs(rng.normal(size=(500, 2))).astype(np.float32) * 0.3
    model = OCSVMFusion().fit(good)
    assert model.score([[5.0, 5.0]])[0] > model.score([[0.2, 0.2]])[0]
    again = OCSVMFusion.from_state(model.state())
    assert np.array_equal(again.score(good[:10]), model.score(good[:10]))
    # the score is sklearn's -decision_function shifted to be >= 0
    from sklearn.svm import OneClassSVM

    reference = OneClassSVM(nu=0.01, gamma="scale").fit(good.astype(np.float64))
    probe = rng.normal(size=(50, 2)) * 2
    shifted = model.score(probe) + reference.decision_function(probe)
    assert np.allclose(shifted, shifted[0], atol=1e-5) and (model.score(probe) >= 0).all()


def test_bad_input():
    with pytest.raises(ValueError, match="variant"):
        FusionConfig(variant="other")
    with pytest.raises(ValueError, match="epochs"):
        FusionConfig(epochs=0)
    with pytest.raises(ValueError, match="hidden"):
        FusionConfig(hidden=512)
    with pytest.raises(ValueError, match="both classes"):
        ImportanceAwareFusion().fit([FusionSample(np.ones((4, 2), np.float32), np.zeros(4, bool), np.ones(2), 0)])
    with pytest.raises(ValueError, match="NaN"):
        fuse_max([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="point_labels"):
        ImportanceAwareFusion().fit([FusionSample(np.ones((4, 2), np.float32), np.zeros(3, bool), np.ones(2), 0)])
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        ImportanceAwareFusion().predict_points(np.ones((3, 3)))
