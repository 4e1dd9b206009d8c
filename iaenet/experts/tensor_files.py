"""Model and checkpoint files: tensors in safetensors, everything else in a JSON header.

Loading never unpickles: safetensors holds raw tensors only, and the header is plain JSON stored in the
safetensors metadata under the key "iaenet".
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT_VERSION = 1
_HEADER_KEY = "iaenet"


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, header: dict) -> None:
    """Write `tensors` (moved to CPU, made contiguous) and `header` (JSON-serialisable) to `path`.

    `kind` names what the file holds (e.g. "iaenet.expert3d"); `load_tensors` checks it.
    """
    meta = {"format": kind, "version": FORMAT_VERSION, **header}
    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    save_file(cpu, str(path), metadata={_HEADER_KEY: json.dumps(meta)})


def load_tensors(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a file written by save_tensors: (tensors on CPU, header).

    FileNotFoundError if `path` is missing; ValueError naming the file if it is not a safetensors file, has no
    iaenet header, holds another kind of object or comes from an unknown format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    if _HEADER_KEY not in meta:
        raise ValueError(f"{path}: safetensors file without an iaenet header")
    try:
        header = json.loads(meta[_HEADER_KEY])
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt iaenet header ({err})") from err
    if header.get("format") != kind:
        raise ValueError(f"{path}: holds {header.get('format')!r}, expected {kind!r}")
    if header.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {header.get('version')!r}, this iaenet reads {FORMAT_VERSION}")
    return tensors, header
