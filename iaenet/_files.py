"""Checks before writing an output file: the rules every iaenet writer follows.

An existing file is never replaced unless the caller says ``overwrite=True``; a missing, non-folder or
read-only destination folder is reported with the path before any work is written.
"""
from __future__ import annotations

import os
from pathlib import Path


def output_file(path: str | Path, *, overwrite: bool, make_parents: bool = False) -> Path:
    """Returns ``path`` as a Path after checking that a file may be written there.

    make_parents: create missing parent folders (writers of file trees, e.g. one map per scan) instead of
        raising FileNotFoundError.

    Raises:
        FileExistsError: the file exists and ``overwrite`` is False (or the path is a folder).
        FileNotFoundError: the parent folder does not exist and ``make_parents`` is False.
        NotADirectoryError: the parent "folder" is a file.
        PermissionError: the parent folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise FileExistsError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: file exists; pass overwrite=True (--overwrite) to replace it")
    folder = path.parent
    if not folder.exists():
        if not make_parents:
            raise FileNotFoundError(f"{path}: folder {folder} does not exist")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # e.g. a file where a folder of the path should be
            raise NotADirectoryError(f"{path}: cannot create folder {folder} ({error.strerror})") from None
    if not folder.is_dir():
        raise NotADirectoryError(f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: folder {folder} is not writable")
    return path
