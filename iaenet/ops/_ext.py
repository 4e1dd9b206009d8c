"""Loads the compiled extension iaenet._C on first use, with an error that says how to build it."""
from __future__ import annotations

import contextlib
import functools
from types import ModuleType


@functools.lru_cache(maxsize=None)
def ext() -> ModuleType:
    try:
        from iaenet import _C
    except ImportError as err:
        raise ImportError(
            "iaenet's compiled extension iaenet._C is missing: install the package with `pip install .` "
            "(or, for development, `cmake -S . -B build -G Ninja && cmake --build build`)"
        ) from err
    return _C


def cuda_available() -> bool:
    """True when the extension was built with CUDA and a CUDA device is visible."""
    return bool(ext().cuda_built) and ext().cuda_device_count() > 0


@contextlib.contextmanager
def cpu_isa_limit(name: str):
    """Inside the block the CPU kernels run at most the `name` SIMD variant: "portable", "avx2" or "avx512".
    Every variant gives the same bits; this exists so tests (and users chasing a suspected miscompile) can run
    the variants a CPU would not pick. Not thread-safe: the limit is process-wide."""
    previous = ext().cpu_isa()
    ext().set_cpu_isa_limit(name)
    try:
        yield
    finally:
        ext().set_cpu_isa_limit(previous)
