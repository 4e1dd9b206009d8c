"""Input validation and output allocation shared by the op wrappers.

Ops accept numpy arrays and torch tensors (CPU or CUDA) and answer in the same kind: numpy in, numpy out;
a torch tensor in, a torch tensor out on the same device. The C++ side only sees contiguous arrays of the
exact dtype it wants, so conversions happen here, once.
"""
from __future__ import annotations

from typing import Any

import numpy as np

try:  # torch is a dependency, but keep the numpy path importable without it
    import torch
except ImportError:  # pragma: no cover
    torch = None

_NP_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32, "uint8": np.uint8, "bool": np.bool_}


def is_torch(x: Any) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def is_cuda(x: Any) -> bool:
    return is_torch(x) and x.is_cuda


def as_float_array(x: Any, name: str, ndim: int | None = None, last_dim: int | None = None,
                   check_finite: bool = True):
    """Returns `x` as a C-contiguous float32 numpy array or torch tensor, checked for shape and (unless
    check_finite is False: a caller that validated it once) finiteness."""
    if is_torch(x):
        x = x.detach().to(torch.float32).contiguous()
        finite = not check_finite or bool(torch.isfinite(x).all())
    else:
        try:
            x = np.ascontiguousarray(x, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name}: expected a numeric array, got {type(x).__name__}") from err
        finite = not check_finite or bool(np.isfinite(x).all())
    _check_shape(x, name, ndim, last_dim)
    if not finite:
        bad = np.argwhere(~np.isfinite(to_numpy(x)))[0]
        raise ValueError(f"{name}: contains NaN or inf (first at index {tuple(int(i) for i in bad)})")
    return x


def as_index_array(x: Any, name: str, ndim: int | None = None, dtype: str = "int64"):
    """Returns `x` as a C-contiguous integer numpy array or torch tensor of `dtype`."""
    if is_torch(x):
        if x.is_floating_point():
            raise TypeError(f"{name}: expected an integer tensor, got {x.dtype}")
        x = x.detach().to(getattr(torch, dtype)).contiguous()
    else:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"{name}: expected an integer array, got {x.dtype}")
        x = np.ascontiguousarray(x, dtype=_NP_DTYPES[dtype])
    _check_shape(x, name, ndim, None)
    return x


def check_same_kind(like: Any, like_name: str, **arrays: Any) -> None:
    """ValueError unless every array in `arrays` (name -> array; None is skipped) is of the kind of `like`:
    numpy, or torch on the same device. Ops answer in the kind of their inputs, so a mix has no one answer, and
    moving data between host and device is left to the caller, who sees its cost."""
    for name, x in arrays.items():
        if x is not None and (is_torch(x) != is_torch(like) or (is_torch(x) and x.device != like.device)):
            raise ValueError(f"{name}: must be of the same kind and on the same device as {like_name} (all numpy, "
                             f"or all torch on one device); got {_kind(x)} and {_kind(like)}")


def empty_like_kind(like: Any, shape: tuple[int, ...], dtype: str):
    """An uninitialised output of `shape` and `dtype`, of the same kind (numpy/torch, device) as `like`."""
    if is_torch(like):
        return torch.empty(shape, dtype=getattr(torch, dtype), device=like.device)
    return np.empty(shape, dtype=_NP_DTYPES[dtype])


def stream_of(x: Any) -> int:
    """The CUDA stream handle the kernels must use for `x` (the caller's current stream), 0 on the CPU."""
    if is_cuda(x):
        return int(torch.cuda.current_stream(x.device).cuda_stream)
    return 0


def to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if is_torch(x) else np.asarray(x)


def _kind(x: Any) -> str:
    return f"a torch tensor on {x.device}" if is_torch(x) else "a numpy array"


def _check_shape(x, name: str, ndim: int | None, last_dim: int | None) -> None:
    shape = tuple(x.shape)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {shape}")
    if last_dim is not None and (not shape or shape[-1] != last_dim):
        raise ValueError(f"{name}: expected last dimension {last_dim}, got shape {shape}")
