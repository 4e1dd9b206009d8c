"""Fused Importance-Aware Fusion inference (kernel: csrc/iaf).

IAF (paper §3.3) turns the two experts' normalised scores of a point, x = [x1, x2], into p(anomaly): a selector MLP
weighs the experts, S = softmax(selector(x)), and a predictor MLP reads the weighted scores,
A = softmax(predictor(x * S))[1]. The networks are tiny (2 -> 64 -> 64 -> 64 -> 2 in the paper) and run on every
point of every scan; eager torch spends most of its time writing and re-reading the (N, 64) activations between
layers, while the kernel takes a block of points through both networks in registers and L1.
"""
from __future__ import annotations

import numpy as np

from iaenet.ops._arrays import as_float_array, empty_like_kind, is_torch, stream_of, to_numpy
from iaenet.ops._ext import ext

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

MAX_LAYERS = 8  # Linear layers per network (csrc/iaf/iaf.h, kIafMaxLayers)
MAX_WIDTH = 256  # units per layer (kIafMaxWidth)
INPUTS = 2  # the two experts' scores in, two logits out


def iaf_forward(scores, selector, predictor, *, return_weights: bool = False, check_finite: bool = True):
    """A = p(anomaly) of each point from its two normalised expert scores, through the IAF selector and predictor.

    scores: (N, 2) float [x1, x2] per point (numpy, or torch on CPU/CUDA). selector, predictor: lists of
    (weight, bias) pairs, torch.nn.Linear's layout (weight (out, in), bias (out,)), chaining 2 -> w1 -> ... -> 2 with
    1..8 layers and 1..256 units per layer, ReLU after every layer but the last; of the same kind and device as
    scores (numpy or lists with numpy scores, torch tensors with torch scores), real-valued, converted to float32.
    Computes S = softmax(selector(x)), A = softmax(predictor(x * S))[:, 1], the softmax stabilised by subtracting
    the larger logit, so any finite logits give probabilities in [0, 1]. Inference only: no autograd.
    check_finite: check the inputs for NaN/inf, and the outputs, which can only be non-finite when the networks
    overflow float32 on scores far outside their range (a caller that validated its inputs may skip both).
    Returns A (N,) float32 of the kind and device of `scores`, and with return_weights also S (N, 2) float32.
    """
    scores = _real_float_array(scores, "scores", check_finite, ndim=2, last_dim=INPUTS)
    selector = _check_mlp(selector, "selector", scores, check_finite)
    predictor = _check_mlp(predictor, "predictor", scores, check_finite)
    n = int(scores.shape[0])
    a = empty_like_kind(scores, (n,), "float32")
    s = empty_like_kind(scores, (n, INPUTS), "float32") if return_weights else None
    ext().iaf_forward(scores, selector, predictor, a, s, stream_of(scores))
    if check_finite:
        _check_outputs(scores, a, s)
    return (a, s) if return_weights else a


def iaf_forward_reference(scores, selector, predictor, *, return_weights: bool = False):
    """iaf_forward in plain eager torch, one layer after another (torch.nn.functional.linear, relu, torch.softmax),
    for tests and benchmarks. Takes what iaf_forward takes, without validating it; answers in the kind of `scores`."""
    numpy_in = not is_torch(scores)
    x = torch.as_tensor(np.asarray(scores) if numpy_in else scores, dtype=torch.float32)
    with torch.no_grad():
        weights = torch.softmax(_mlp_reference(x, selector), dim=1)
        a = torch.softmax(_mlp_reference(x * weights, predictor), dim=1)[:, 1].contiguous()
    if numpy_in:
        a, weights = a.numpy(), weights.numpy()
    return (a, weights) if return_weights else a


def _mlp_reference(x, layers):
    device = x.device
    for i, (weight, bias) in enumerate(layers):
        weight = torch.as_tensor(weight, dtype=torch.float32, device=device)
        x = torch.nn.functional.linear(x, weight, torch.as_tensor(bias, dtype=torch.float32, device=device))
        if i + 1 < len(layers):
            x = torch.relu(x)
    return x


def _check_mlp(layers, name: str, scores, check_finite: bool) -> list:
    """The (weight, bias) pairs of one network as float32 arrays of the kind of `scores`, checked to chain 2 -> 2."""
    if not isinstance(layers, (list, tuple)):
        raise TypeError(f"{name}: expected a list of (weight, bias) pairs, got {type(layers).__name__}")
    if not 1 <= len(layers) <= MAX_LAYERS:
        raise ValueError(f"{name}: needs 1..{MAX_LAYERS} layers, got {len(layers)}")
    checked, width = [], INPUTS
    for i, pair in enumerate(layers):
        where = f"{name}[{i}]"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TypeError(f"{where}: expected a (weight, bias) pair, got {type(pair).__name__}")
        weight = _real_float_array(_same_kind(pair[0], scores, f"{where} weight"), f"{where} weight",
                                   check_finite, ndim=2)
        bias = _real_float_array(_same_kind(pair[1], scores, f"{where} bias"), f"{where} bias", check_finite, ndim=1)
        out, fan_in = (int(d) for d in weight.shape)
        if fan_in != width:
            what = "the scores' 2 values" if i == 0 else f"the {width} outputs of layer {i - 1}"
            raise ValueError(f"{where} weight: expected shape (out, {width}) to take {what}, "
                             f"got {tuple(weight.shape)}")
        if i + 1 == len(layers) and out != INPUTS:
            raise ValueError(f"{where} weight: the last layer must have {INPUTS} outputs (the two logits), got {out}")
        if not 1 <= out <= MAX_WIDTH:
            raise ValueError(f"{where} weight: needs 1..{MAX_WIDTH} output units, got {out}")
        if tuple(bias.shape) != (out,):
            raise ValueError(f"{where} bias: expected shape ({out},), got {tuple(bias.shape)}")
        checked.append((weight, bias))
        width = out
    return checked


def _same_kind(x, scores, name: str):
    """Refuses a network array of another kind or device than `scores` (no silent host/device copies)."""
    if is_torch(scores) != is_torch(x):
        have, want = ("a torch tensor", "a numpy array") if is_torch(x) else ("a numpy array", "a torch tensor")
        raise TypeError(f"{name}: {have}, but scores are {want}; pass the networks as the same kind as the scores")
    if is_torch(x) and x.device != scores.device:
        raise ValueError(f"{name}: on {x.device}, but scores are on {scores.device}")
    return x


def _real_float_array(x, name: str, check_finite: bool, ndim: int, last_dim: int | None = None):
    """as_float_array after refusing bool and complex values, which float32 would silently turn into numbers."""
    if is_torch(x):
        dtype, refused = x.dtype, x.dtype == torch.bool or x.dtype.is_complex
    else:
        dtype = np.asarray(x).dtype
        refused = dtype.kind in "bc"
    if refused:
        raise TypeError(f"{name}: expected real numbers, got dtype {dtype}")
    return as_float_array(x, name, ndim=ndim, last_dim=last_dim, check_finite=check_finite)


def _check_outputs(scores, a, s) -> None:
    """Raises at the first point whose A (or S) is not finite: the networks overflowed float32 there."""
    finite = torch.isfinite(a) if is_torch(a) else np.isfinite(a)
    if s is not None:
        finite = finite & (torch.isfinite(s).all(1) if is_torch(s) else np.isfinite(s).all(1))
    if not bool(finite.all()):
        i = int(np.flatnonzero(~to_numpy(finite))[0])
        raise ValueError(f"scores: the networks overflow float32 at point {i} (scores {to_numpy(scores[i]).tolist()}),"
                         " which lies far outside the range they work on")
