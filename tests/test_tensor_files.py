"""Model files: round trip, checksum, NaN, header, truncation, kind and version checks."""
import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from iaenet.tensor_files import FORMAT_VERSION, load_tensors, save_tensors, tensor_checksum

KIND = "iaenet.test"


def _tensors():
    generator = torch.Generator().manual_seed(0)
    return {"weight": torch.randn(4, 3, generator=generator), "half": torch.randn(5, generator=generator).half(),
            "brain": torch.randn(2, 2, generator=generator).bfloat16(), "ids": torch.arange(6).reshape(2, 3),
            "mask": torch.tensor([True, False, True]), "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3)}


def _write_raw(path, tensors, header):
    """A file as save_tensors would write it, with any header: for files save_tensors refuses to write."""
    save_file(tensors, str(path), metadata={"iaenet": json.dumps(header)})


def _valid_header(tensors, **changes):
    return {"format": KIND, "version": FORMAT_VERSION, "sha256": tensor_checksum(tensors), **changes}


def test_round_trip_keeps_tensors_and_header(tmp_path):
    path = tmp_path / "m.safetensors"
    tensors = _tensors()
    save_tensors(path, tensors, KIND, {"config": {"a": 1}, "names": ["x"]})
    loaded, header = load_tensors(path, KIND)
    assert loaded.keys() == tensors.keys()
    for name, t in tensors.items():
        assert loaded[name].dtype == t.dtype and torch.equal(loaded[name], t), name
    assert header["config"] == {"a": 1} and header["names"] == ["x"]
    assert header["version"] == FORMAT_VERSION and header["sha256"] == tensor_checksum(tensors)


def test_checksum_covers_name_dtype_shape_and_bytes():
    base = {"a": torch.arange(6, dtype=torch.float32), "b": torch.ones(2, dtype=torch.int64)}
    changed = [
        {"c": base["a"], "b": base["b"]},                          # name
        {"a": base["a"].to(torch.int32).view(torch.float32), "b": base["b"]},  # bytes
        {"a": base["a"].view(torch.int32), "b": base["b"]},        # dtype, same bytes
        {"a": base["a"].reshape(2, 3), "b": base["b"]},            # shape, same bytes
    ]
    assert tensor_checksum({"b": base["b"], "a": base["a"]}) == tensor_checksum(base)  # order of insertion
    assert len({tensor_checksum(base), *(tensor_checksum(t) for t in changed)}) == 5


def test_one_flipped_byte_in_a_weight_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    save_tensors(path, _tensors(), KIND, {})
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    begin, end = json.loads(data[8:8 + length])["weight"]["data_offsets"]
    data[8 + length + (begin + end) // 2] ^= 0x01  # lowest bit of one byte of one float
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256 checksum.*damaged") as info:
        load_tensors(path, KIND)
    assert str(path) in str(info.value)


def test_nan_and_inf_are_refused(tmp_path):
    tensors = _tensors()
    tensors["weight"][1, 2] = float("nan")
    tensors["half"][0] = float("inf")
    with pytest.raises(ValueError, match="tensor 'weight' holds 1 NaN or infinite"):
        save_tensors(tmp_path / "never.safetensors", tensors, KIND, {})
    assert not (tmp_path / "never.safetensors").exists()
    path = tmp_path / "nan.safetensors"
    _write_raw(path, tensors, _valid_header(tensors))  # the checksum matches: only the values are wrong
    with pytest.raises(ValueError, match="tensor '(weight|half)' holds 1 NaN or infinite") as info:
        load_tensors(path, KIND)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", ["[1, 2]", '"iaenet"', "3", "null"])
def test_header_that_is_not_an_object(tmp_path, text):
    path = tmp_path / "m.safetensors"
    save_file(_tensors(), str(path), metadata={"iaenet": text})
    with pytest.raises(ValueError, match="expected a JSON object") as info:
        load_tensors(path, KIND)
    assert str(path) in str(info.value)


def test_truncated_files(tmp_path):
    path = tmp_path / "m.safetensors"
    save_tensors(path, _tensors(), KIND, {})
    data = path.read_bytes()
    for size in (0, 4, 8, 40, len(data) // 2, len(data) - 1):
        cut = tmp_path / f"cut{size}.safetensors"
        cut.write_bytes(data[:size])
        with pytest.raises(ValueError, match="not a readable safetensors file") as info:
            load_tensors(cut, KIND)
        assert str(cut) in str(info.value)


def test_wrong_kind(tmp_path):
    path = tmp_path / "m.safetensors"
    save_tensors(path, _tensors(), "iaenet.other", {})
    with pytest.raises(ValueError, match="holds 'iaenet.other', expected 'iaenet.test'"):
        load_tensors(path, KIND)


@pytest.mark.parametrize("version, words", [
    (FORMAT_VERSION + 1, f"format version {FORMAT_VERSION + 1} was written by a newer iaenet"),
    ("2", "unknown format version '2'"),
    (True, "unknown format version True"),
    (None, "unknown format version None"),
])
def test_wrong_version(tmp_path, version, words):
    tensors = _tensors()
    path = tmp_path / "m.safetensors"
    _write_raw(path, tensors, _valid_header(tensors, version=version))
    with pytest.raises(ValueError, match=words) as info:
        load_tensors(path, KIND)
    assert str(path) in str(info.value)


def test_version_1_file_as_it_was_written(tmp_path):
    tensors = _tensors()
    path = tmp_path / "old.safetensors"
    _write_raw(path, tensors, {"format": KIND, "version": 1, "config": {}})  # no checksum yet
    with pytest.raises(ValueError, match="format version 1 was written by an older iaenet.*save the model again"):
        load_tensors(path, KIND)


def test_missing_checksum_is_refused(tmp_path):
    tensors = _tensors()
    path = tmp_path / "m.safetensors"
    header = _valid_header(tensors)
    del header["sha256"]
    _write_raw(path, tensors, header)
    with pytest.raises(ValueError, match="checksum"):
        load_tensors(path, KIND)
