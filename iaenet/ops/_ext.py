"""Loads the compiled extension iaenet._C on first use, with an error that says how to build it."""
from __future__ import annotations

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
