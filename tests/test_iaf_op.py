"""The fused IAF inference op against the plain torch reference and torch.nn modules, in every CPU SIMD variant."""
import numpy as np
import pytest
import torch

from iaenet.ops import iaf_forward
from iaenet.ops._ext import cpu_isa_limit, ext
from iaenet.ops.iaf import iaf_forward_reference

PAPER = [2, 64, 64, 64, 2]
VARIANTS = ["avx512", "avx2", "portable"]
ISA_RANK = {name: rank for rank, name in enumerate(reversed(VARIANTS))}


def random_net(rng, widths, scale=1.0):
    """(weight, bias) float32 pairs for the layers widths[0] -> widths[1] -> ...; torch.nn.Linear's initial range
    (U(-1/sqrt(in), 1/sqrt(in))) times `scale`."""
    layers = []
    for fan_in, out in zip(widths[:-1], widths[1:]):
        bound = scale / np.sqrt(fan_in)
        layers.append((rng.uniform(-bound, bound, (out, fan_in)).astype(np.float32),
                       rng.uniform(-bound, bound, out).astype(np.float32)))
    return layers


def random_scores(rng, n, high=3.0):
    return rng.uniform(0, high, (n, 2)).astype(np.float32)


def sequential(layers):
    """torch.nn.Sequential of Linear + ReLU (none after the last) holding these weights."""
    modules = []
    for i, (weight, bias) in enumerate(layers):
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
        modules += [linear] + ([torch.nn.ReLU()] if i + 1 < len(layers) else [])
    return torch.nn.Sequential(*modules)


def assert_matches_reference(scores, selector, predictor, atol=1e-5):
    a, s = iaf_forward(scores, selector, predictor, return_weights=True)
    want_a, want_s = iaf_forward_reference(scores, selector, predictor, return_weights=True)
    np.testing.assert_allclose(a, want_a, rtol=0, atol=atol)
    np.testing.assert_allclose(s, want_s, rtol=0, atol=atol)
    np.testing.assert_allclose(s.sum(1), 1, rtol=0, atol=1e-6)
    assert ((a >= 0) & (a <= 1)).all() and ((s >= 0) & (s <= 1)).all()
    return a, s


@pytest.mark.parametrize("widths", [PAPER, [2, 2], [2, 1, 2], [2, 16, 2], [2, 32, 7, 2], [2, 5, 64, 3, 200, 2],
                                    [2, 256, 256, 2], [2, 17, 17, 17, 17, 2]],
                         ids=lambda w: "-".join(map(str, w)))
@pytest.mark.parametrize("n", [1, 2, 31, 64, 65, 1003])
def test_matches_reference(rng, widths, n):
    selector, predictor = random_net(rng, widths), random_net(rng, widths[::-1])
    assert_matches_reference(random_scores(rng, n), selector, predictor)


def test_paper_sized_run_matches_reference(rng):
    # Enough points for the threaded, locality-ordered path; scores clustered like normalised expert scores.
    scores = np.abs(rng.normal(0, 0.5, (20000, 2))).astype(np.float32)
    scores[::40] = rng.uniform(0, 8, (500, 2))
    assert_matches_reference(scores, random_net(rng, PAPER, scale=2), random_net(rng, PAPER, scale=2))


def test_equals_torch_modules(rng):
    selector, predictor = random_net(rng, PAPER), random_net(rng, [2, 48, 64, 2])
    sel, pred = sequential(selector), sequential(predictor)
    x = torch.from_numpy(random_scores(rng, 777))
    with torch.no_grad():
        weights = torch.softmax(sel(x), dim=1)
        want = torch.softmax(pred(x * weights), dim=1)[:, 1]
    linear = [[(m.weight, m.bias) for m in net if isinstance(m, torch.nn.Linear)] for net in (sel, pred)]
    a, s = iaf_forward(x, *linear, return_weights=True)  # the modules' own parameters (they require grad)
    assert isinstance(a, torch.Tensor) and a.dtype == torch.float32 and a.shape == (777,)
    torch.testing.assert_close(a, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(s, weights, rtol=0, atol=1e-5)


def test_torch_and_numpy_give_the_same_bits(rng):
    selector, predictor = random_net(rng, PAPER), random_net(rng, PAPER)
    scores = random_scores(rng, 500)
    a, s = iaf_forward(scores, selector, predictor, return_weights=True)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and s.shape == (500, 2)
    as_torch = [[(torch.from_numpy(w), torch.from_numpy(b)) for w, b in net] for net in (selector, predictor)]
    ta, ts = iaf_forward(torch.from_numpy(scores), *as_torch, return_weights=True)
    np.testing.assert_array_equal(ta.numpy(), a)
    np.testing.assert_array_equal(ts.numpy(), s)
    # float64, non-contiguous and list inputs are converted
    again = iaf_forward(np.asfortranarray(scores.astype(np.float64)), [(w.tolist(), b.tolist()) for w, b in selector],
                        predictor)
    np.testing.assert_array_equal(again, a)


def test_no_points(rng):
    selector, predictor = random_net(rng, PAPER), random_net(rng, PAPER)
    a, s = iaf_forward(np.zeros((0, 2), np.float32), selector, predictor, return_weights=True)
    assert a.shape == (0,) and s.shape == (0, 2) and a.dtype == np.float32
    as_torch = [[(torch.from_numpy(w), torch.from_numpy(b)) for w, b in net] for net in (selector, predictor)]
    ta = iaf_forward(torch.zeros(0, 2), *as_torch)
    assert isinstance(ta, torch.Tensor) and ta.shape == (0,)


def test_deterministic_and_independent_of_point_order(rng):
    selector, predictor = random_net(rng, PAPER), random_net(rng, PAPER)
    scores = random_scores(rng, 5000)
    a = iaf_forward(scores, selector, predictor)
    np.testing.assert_array_equal(iaf_forward(scores, selector, predictor), a)
    perm = rng.permutation(len(scores))
    np.testing.assert_array_equal(iaf_forward(scores[perm], selector, predictor), a[perm])
    for i in rng.integers(0, len(scores), 20):  # each point alone gives the same bits as in the batch
        assert iaf_forward(scores[i:i + 1], selector, predictor)[0] == a[i]


def float64_reference(scores, selector, predictor):
    """A in float64: the value float32 implementations approximate."""
    def mlp(x, layers):
        for i, (weight, bias) in enumerate(layers):
            x = x @ weight.T.astype(np.float64) + bias
            x = np.maximum(x, 0) if i + 1 < len(layers) else x
        return x

    def softmax(logits):
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    x = scores.astype(np.float64)
    return softmax(mlp(x * softmax(mlp(x, selector)), predictor))[:, 1]


def test_any_score_range_gives_each_point_its_own_result(rng):
    # The kernel orders the points by score before blocking them: one value for all, a range spanning all floats
    # and NaN/inf scores must neither lose nor mix up points.
    selector, predictor = random_net(rng, PAPER), random_net(rng, PAPER)
    same = np.full((1000, 2), 0.7, np.float32)
    np.testing.assert_array_equal(iaf_forward(same, selector, predictor),
                                  np.full(1000, iaf_forward(same[:1], selector, predictor)[0]))
    wild = random_scores(rng, 1000) * rng.choice([1, 1e20, -1e38], (1000, 1)).astype(np.float32)
    wild[[3, 500]] = [np.inf, np.nan]
    a = iaf_forward(wild, selector, predictor, check_finite=False)
    alone = [iaf_forward(wild[i:i + 1], selector, predictor, check_finite=False)[0] for i in range(len(wild))]
    np.testing.assert_array_equal(a, alone)


def test_extreme_scores(rng):
    selector, predictor = random_net(rng, PAPER), random_net(rng, PAPER)
    scores = np.concatenate([rng.uniform(-1e4, 1e4, (2000, 2)), [[1e4, 1e4], [-1e4, 1e4], [1e4, 0], [0, 0]]])
    scores = scores.astype(np.float32)
    a, s = iaf_forward(scores, selector, predictor, return_weights=True)
    assert np.isfinite(a).all() and ((a >= 0) & (a <= 1)).all()
    np.testing.assert_allclose(s.sum(1), 1, rtol=0, atol=1e-6)
    # Logits of ~1e4 carry float32 rounding errors of ~1e-3, in torch as here: where the two logits nearly tie, that
    # moves A by up to ~1e-4 in any float32 implementation. Where float32 determines A (torch within 1e-6 of the
    # float64 value), we equal torch to 1e-5; everywhere, our error is of the order of torch's own.
    torch32 = iaf_forward_reference(scores, selector, predictor)
    exact = float64_reference(scores, selector, predictor)
    determined = np.abs(torch32 - exact) < 1e-6
    assert determined.mean() > 0.8
    np.testing.assert_allclose(a[determined], torch32[determined], rtol=0, atol=1e-5)
    assert np.abs(a - exact).max() <= 4 * np.abs(torch32 - exact).max() + 1e-6


@pytest.mark.parametrize("variant", VARIANTS)
def test_softmax_over_the_whole_logit_range(variant):
    # selector: no weights, S = (1/2, 1/2); predictor: logits (0, x1), so A = sigmoid(x1) exactly.
    selector = [(np.zeros((2, 2), np.float32), np.zeros(2, np.float32))]
    predictor = [(np.array([[0, 0], [2, 0]], np.float32), np.zeros(2, np.float32))]
    x1 = np.concatenate([np.linspace(-100, 100, 20001), [-87.3, -87.4, 88.8, 0.0]]).astype(np.float32)
    with cpu_isa_limit(variant):
        a, s = iaf_forward(np.stack([x1, np.ones_like(x1)], 1), selector, predictor, return_weights=True)
    np.testing.assert_array_equal(s, 0.5)
    want = 1 / (1 + np.exp(-x1.astype(np.float64)))
    # relative accuracy down to e^-87.33; below, e^x is flushed to 0 (an error under 1.2e-38)
    np.testing.assert_allclose(a, want, rtol=1e-6, atol=2e-38)
    np.testing.assert_array_equal(a, iaf_forward(np.stack([x1, np.ones_like(x1)], 1), selector, predictor))


def test_overflow_is_reported(rng):
    selector, predictor = random_net(rng, PAPER, scale=100), random_net(rng, PAPER, scale=100)
    scores = random_scores(rng, 10)
    scores[3] = [3e37, -3e37]
    with pytest.raises(ValueError, match=r"scores: the networks overflow float32 at point 3"):
        iaf_forward(scores, selector, predictor)
    a = iaf_forward(scores, selector, predictor, check_finite=False)  # the caller's choice: NaN where it overflowed
    assert not np.isfinite(a[3]) and np.isfinite(np.delete(a, 3)).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_nan_stays_with_its_point_when_unchecked(rng, variant):
    selector, predictor = random_net(rng, PAPER), random_net(rng, PAPER)
    scores = random_scores(rng, 300)
    clean = iaf_forward(scores, selector, predictor)
    scores[[5, 150]] = np.nan
    with cpu_isa_limit(variant):
        a, s = iaf_forward(scores, selector, predictor, return_weights=True, check_finite=False)
    assert np.isnan(a[[5, 150]]).all() and np.isnan(s[[5, 150]]).all()
    np.testing.assert_array_equal(np.delete(a, [5, 150]), np.delete(clean, [5, 150]))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("widths", [PAPER, [2, 13, 40, 2], [2, 3, 2]], ids=lambda w: "-".join(map(str, w)))
def test_every_simd_variant_matches_reference(rng, variant, widths):
    selector, predictor = random_net(rng, widths), random_net(rng, widths)
    scores = random_scores(rng, 700)
    with cpu_isa_limit(variant):
        assert ISA_RANK[ext().cpu_isa()] <= ISA_RANK[variant]
        a, s = assert_matches_reference(scores, selector, predictor)
    np.testing.assert_array_equal(a, iaf_forward(scores, selector, predictor))  # the same bits as the default


def test_threaded_run_in_every_variant(rng):
    # Work above every variant's threading threshold, with a partial last block.
    selector, predictor = random_net(rng, [2, 32, 32, 2]), random_net(rng, [2, 32, 32, 2])
    scores = random_scores(rng, 30011)
    want = iaf_forward_reference(scores, selector, predictor)
    default = iaf_forward(scores, selector, predictor)
    np.testing.assert_allclose(default, want, rtol=0, atol=1e-5)
    for variant in VARIANTS:
        with cpu_isa_limit(variant):
            np.testing.assert_array_equal(iaf_forward(scores, selector, predictor), default)


def test_bad_input(rng):
    sel, pred = random_net(rng, PAPER), random_net(rng, PAPER)
    scores = random_scores(rng, 20)
    with pytest.raises(ValueError, match="scores: expected last dimension 2"):
        iaf_forward(rng.random((20, 3)), sel, pred)
    with pytest.raises(ValueError, match="scores: expected 2 dimensions"):
        iaf_forward(scores[:, 0], sel, pred)
    with pytest.raises(ValueError, match=r"scores: contains NaN or inf \(first at index \(4, 1\)\)"):
        iaf_forward(np.where(np.arange(40).reshape(20, 2) == 9, np.nan, scores), sel, pred)
    bad = [(w.copy(), b) for w, b in pred]
    bad[2][0][5, 7] = np.inf
    with pytest.raises(ValueError, match=r"predictor\[2\] weight: contains NaN or inf"):
        iaf_forward(scores, sel, bad)
    with pytest.raises(ValueError, match=r"selector\[1\] weight: expected shape \(out, 64\)"):
        iaf_forward(scores, [sel[0], (sel[1][0][:, :60], sel[1][1])] + sel[2:], pred)
    with pytest.raises(ValueError, match=r"selector\[0\] weight: expected shape \(out, 2\) to take the scores"):
        iaf_forward(scores, random_net(rng, [3, 8, 2]), pred)
    with pytest.raises(ValueError, match=r"predictor\[3\] weight: the last layer must have 2 outputs"):
        iaf_forward(scores, sel, random_net(rng, [2, 64, 64, 64, 3]))
    with pytest.raises(ValueError, match=r"predictor\[0\] bias: expected shape \(64,\)"):
        iaf_forward(scores, sel, [(pred[0][0], pred[0][1][:10])] + pred[1:])
    with pytest.raises(ValueError, match=r"selector\[0\] weight: needs 1..256 output units, got 257"):
        iaf_forward(scores, random_net(rng, [2, 257, 2]), pred)
    with pytest.raises(ValueError, match="selector: needs 1..8 layers, got 0"):
        iaf_forward(scores, [], pred)
    with pytest.raises(ValueError, match="predictor: needs 1..8 layers, got 9"):
        iaf_forward(scores, sel, random_net(rng, [2] + [4] * 8 + [2]))
    with pytest.raises(TypeError, match="selector: expected a list of"):
        iaf_forward(scores, sequential(sel), pred)
    with pytest.raises(TypeError, match=r"selector\[1\]: expected a \(weight, bias\) pair"):
        iaf_forward(scores, [sel[0], sel[1][0]] + sel[2:], pred)
    with pytest.raises(TypeError, match=r"selector\[0\] weight: expected real numbers, got dtype bool"):
        iaf_forward(scores, [(sel[0][0] > 0, sel[0][1])] + sel[1:], pred)
    with pytest.raises(TypeError, match="scores: expected real numbers, got dtype complex64"):
        iaf_forward(scores.astype(np.complex64), sel, pred)
    with pytest.raises(TypeError, match="scores: expected a numeric array"):
        iaf_forward([["a", "b"]], sel, pred)


def test_mixed_kinds_are_refused(rng):
    sel, pred = random_net(rng, PAPER), random_net(rng, PAPER)
    scores = random_scores(rng, 20)
    as_torch = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in sel]
    with pytest.raises(TypeError, match=r"selector\[0\] weight: a numpy array, but scores are a torch tensor"):
        iaf_forward(torch.from_numpy(scores), sel, pred)
    with pytest.raises(TypeError, match=r"selector\[0\] weight: a torch tensor, but scores are a numpy array"):
        iaf_forward(scores, as_torch, pred)
    with pytest.raises(TypeError, match=r"selector\[0\] bias: a torch tensor, but scores are a numpy array"):
        iaf_forward(scores, [(sel[0][0], as_torch[0][1])] + sel[1:], pred)


def test_the_extension_checks_its_arguments(rng):
    sel, pred = random_net(rng, PAPER), random_net(rng, PAPER)
    scores = random_scores(rng, 20)
    a = np.empty(20, np.float32)
    with pytest.raises(TypeError, match="scores: expected dtype float32, got float64"):
        ext().iaf_forward(scores.astype(np.float64), sel, pred, a)
    with pytest.raises(ValueError, match=r"selector\[1\] weight: expected shape \(\*, 64\)"):
        ext().iaf_forward(scores, [sel[0], (sel[1][0][:, :3].copy(), sel[1][1])], pred, a)
    with pytest.raises(ValueError, match=r"predictor\[3\] weight: the last layer needs 2 outputs"):
        ext().iaf_forward(scores, sel, random_net(rng, [2, 64, 64, 64, 3]), a)
    with pytest.raises(ValueError, match=r"selector: needs 1..8 layers, got 9"):
        ext().iaf_forward(scores, random_net(rng, [2] + [4] * 8 + [2]), pred, a)
    with pytest.raises(ValueError, match=r"selector\[0\] weight: needs 1..256 output units"):
        ext().iaf_forward(scores, random_net(rng, [2, 300, 2]), pred, a)
    with pytest.raises(ValueError, match="a: expected shape"):
        ext().iaf_forward(scores, sel, pred, np.empty(19, np.float32))
    with pytest.raises(TypeError, match="predictor: expected a sequence"):
        ext().iaf_forward(scores, sel, 5, a)


@pytest.mark.cuda
@pytest.mark.parametrize("widths", [PAPER, [2, 256, 256, 256, 256, 256, 256, 256, 2], [2, 9, 2]],
                         ids=["paper-staged", "wide-global-memory", "narrow"])
def test_cuda_equals_cpu(rng, widths):
    selector, predictor = random_net(rng, widths), random_net(rng, widths)
    scores = random_scores(rng, 10007)
    a, s = iaf_forward(scores, selector, predictor, return_weights=True)
    gpu = [[(torch.from_numpy(w).cuda(), torch.from_numpy(b).cuda()) for w, b in net] for net in (selector, predictor)]
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):  # the kernel runs on the caller's current stream
        ga, gs = iaf_forward(torch.from_numpy(scores).cuda(), *gpu, return_weights=True)
    stream.synchronize()
    assert ga.is_cuda and gs.is_cuda
    np.testing.assert_array_equal(ga.cpu().numpy(), a)
    np.testing.assert_array_equal(gs.cpu().numpy(), s)


@pytest.mark.cuda
def test_cuda_reference_and_kind_checks(rng):
    selector, predictor = random_net(rng, PAPER), random_net(rng, PAPER)
    gpu = [[(torch.from_numpy(w).cuda(), torch.from_numpy(b).cuda()) for w, b in net] for net in (selector, predictor)]
    scores = torch.from_numpy(random_scores(rng, 3001)).cuda()
    torch.testing.assert_close(iaf_forward(scores, *gpu), iaf_forward_reference(scores, *gpu), rtol=0, atol=1e-5)
    assert iaf_forward(scores[:0], *gpu).shape == (0,)
    cpu_torch = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in selector]
    with pytest.raises(ValueError, match=r"selector\[0\] weight: on cpu, but scores are on cuda"):
        iaf_forward(scores, cpu_torch, gpu[1])
