"""Object scores from point scores."""
import numpy as np
import pytest

from iaenet.metrics import smooth_map
from iaenet.object_scores import OBJECT_RULES, object_score


def _scan(rng, spike_at=None):
    grid = 32
    index = rng.choice(grid * grid, 400, replace=False)
    rows, cols = np.divmod(index, grid)
    points = np.stack([cols * 0.01, rows * 0.01, np.full(len(index), 0.5)], 1).astype(np.float32)
    scores = rng.random(400).astype(np.float32) * 0.1
    if spike_at is not None:
        scores[spike_at] = 5.0
    return scores, index, points, grid


def test_rules_on_hand_checked_values(rng):
    scores, index, points, grid = _scan(rng, spike_at=7)
    assert object_score(scores, index, "max", grid) == pytest.approx(5.0)
    top = np.sort(scores)[-4:].mean()  # 1 % of 400 points
    assert object_score(scores, index, "top1", grid) == pytest.approx(top)
    m = np.zeros(grid * grid, np.float32)
    m[index] = scores
    assert object_score(scores, index, "max_s4", grid) == pytest.approx(smooth_map(m.reshape(grid, grid), 4).max())
    # a lone spike counts 1/32 in its neighbourhood mean
    knn = object_score(scores, index, "max_knn", grid, points)
    assert 5.0 / 32 <= knn < 5.0 / 32 + 0.1


def test_smoothed_rules_discount_a_lone_spike_against_a_broad_rise(rng):
    spike, index, points, grid = _scan(rng, spike_at=0)
    broad, _, _, _ = _scan(np.random.default_rng(1))
    broad = broad.copy()
    near = np.argsort(np.linalg.norm(points - points[0], axis=1))[:40]
    broad[near] += 1.0
    assert object_score(spike, index, "max", grid) > object_score(broad, index, "max", grid)
    for rule in ("max_knn", "max_s4"):
        assert object_score(spike, index, rule, grid, points) < object_score(broad, index, rule, grid, points)


def test_bad_input():
    with pytest.raises(ValueError, match="rule"):
        object_score(np.ones(3), rule="mean")
    with pytest.raises(ValueError, match="NaN"):
        object_score(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="non-empty"):
        object_score(np.zeros(0))
    with pytest.raises(ValueError, match="index"):
        object_score(np.ones(3), rule="max_s4")
    with pytest.raises(ValueError, match="points"):
        object_score(np.ones(3), rule="max_knn")
    assert set(OBJECT_RULES) == {"max", "max_s4", "max_knn", "top1"}
