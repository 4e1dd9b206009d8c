"""Model and checkpoint files: tensors in safetensors, everything else in a JSON header.

Loading never unpickles: safetensors holds raw tensors only, and the header is a plain JSON object stored in
the safetensors metadata under the key "iaenet". The header records what the file holds ("format"), the
format version and a sha256 checksum of the tensors, so that a damaged file is refused instead of
loading with a changed weight. Version 1 files (before the checksum) are refused with a clear error.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT_VERSION = 2
_HEADER_KEY = "iaenet"


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, header: dict) -> None:
    """Write `tensors` (moved to CPU, made contiguous) and `header` (a JSON-serialisable dict) to `path`.

    `kind` names what the file holds (e.g. "iaenet.expert3d"); `load_tensors` checks it. The header gains
    "format", "version" and "sha256" (see `tensor_checksum`). ValueError if a floating tensor holds NaN or
    inf: such a file could never be loaded.
    """
    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    _check_finite(cpu, path)
    meta = {**header, "format": kind, "version": FORMAT_VERSION, "sha256": tensor_checksum(cpu)}
    save_file(cpu, str(path), metadata={_HEADER_KEY: json.dumps(meta)})


def load_tensors(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a file written by save_tensors: (tensors on CPU, header).

    FileNotFoundError if `path` is missing; ValueError naming the file if it is not a (complete)
    safetensors file, has no iaenet header or one that is not a JSON object, holds another kind of object,
    comes from another format version, its tensors do not match the checksum in its header, or a floating
    tensor holds NaN or inf.
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
    if not isinstance(header, dict):
        raise ValueError(f"{path}: corrupt iaenet header: expected a JSON object, got {type(header).__name__}")
    if header.get("format") != kind:
        raise ValueError(f"{path}: holds {header.get('format')!r}, expected {kind!r}")
    _check_version(header.get("version"), path)
    if header.get("sha256") != tensor_checksum(tensors):
        raise ValueError(f"{path}: the tensors do not match the sha256 checksum in the header; the file is damaged")
    _check_finite(tensors, path)
    return tensors, header


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """Hex sha256 over every CPU tensor's name, dtype, shape and bytes, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        # one JSON line per tensor keeps the fields apart; the byte count follows from dtype and shape
        digest.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode() + b"\n")
        digest.update(t.contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _check_version(version: object, path: Path) -> None:
    known = type(version) is int  # JSON true would compare equal to 1
    if known and version == FORMAT_VERSION:
        return
    if known and 0 < version < FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version} was written by an older iaenet; this iaenet reads "
                         f"version {FORMAT_VERSION} only (it adds a checksum): fit and save the model again")
    if known and version > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version} was written by a newer iaenet; this iaenet reads "
                         f"version {FORMAT_VERSION}: update iaenet")
    raise ValueError(f"{path}: unknown format version {version!r}; this iaenet reads {FORMAT_VERSION}")


def _check_finite(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    for name, t in tensors.items():
        if t.is_floating_point() or t.is_complex():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise ValueError(f"{path}: tensor {name!r} holds {bad} NaN or infinite value(s)")
