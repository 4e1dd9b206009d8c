"""The `iaenet` command: a user's mistake prints one line `iaenet <cmd>: error: ...` and exits 1;
a bug still raises."""
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from iaenet import cli
from iaenet.data import datasets

TINY = ["--categories", "ring", "--resolution", "32", "--train", "1", "--validation", "0",
        "--test-good", "0", "--test-per-defect", "0"]


def _user_error(capsys, argv: list[str], *words: str) -> str:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"iaenet {argv[0]}: error: "), err
    for word in words:
        assert word in err, err
    return err


def test_synth_then_info_with_a_relative_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["synth", "ds1", *TINY]) == 0
    assert cli.main(["info", "ds1"]) == 0
    out = capsys.readouterr().out
    assert "ds1: MVTec 3D-AD layout, 1 category" in out and "ring (MVTec 3D-AD)" in out


def test_integer_tiff_is_one_line(tmp_path, capsys):
    xyz = tmp_path / "data" / "part" / "train" / "good" / "xyz"
    xyz.mkdir(parents=True)
    tifffile.imwrite(xyz / "000.tiff", np.ones((4, 4, 3), np.uint16), photometric="rgb")
    _user_error(capsys, ["info", str(tmp_path / "data")], str(xyz / "000.tiff"), "float")


def test_output_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "sub"
    _user_error(capsys, ["synth", str(out), *TINY], f"{out}: not a directory")


def test_output_file_that_is_a_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "out" / "synthetic.json").mkdir(parents=True)  # synth writes this file last
    _user_error(capsys, ["synth", str(tmp_path / "out"), *TINY, "--overwrite"],
                f"{tmp_path / 'out' / 'synthetic.json'}: is a directory")


def test_refused_write_is_one_line(tmp_path, monkeypatch, capsys):
    # as root no permission bit stops a write, so the OS's refusal is raised where the writer calls it
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("iaenet.data.io.tifffile.imwrite", refuse)
    _user_error(capsys, ["synth", str(tmp_path / "out"), *TINY], "000.tiff: permission denied")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_one_line(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _user_error(capsys, ["synth", str(locked / "sub"), *TINY], "permission denied")
    finally:
        locked.chmod(0o755)


def test_a_bug_still_raises(tmp_path, monkeypatch):
    def broken(root):
        raise KeyError("a bug, not the user's mistake")

    monkeypatch.setattr(datasets, "describe", broken)
    with pytest.raises(KeyError):
        cli.main(["info", str(tmp_path)])


def test_missing_dataset_names_it(tmp_path, capsys):
    _user_error(capsys, ["info", str(Path(tmp_path) / "none")], "none: no such folder")
