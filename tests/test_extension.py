"""The compiled module imports everywhere and reports its CUDA support truthfully."""
import numpy as np
import pytest
import torch

from iaenet.ops._ext import cuda_available, ext


def test_module_reports_cuda_support():
    c = ext()
    assert isinstance(c.cuda_built, bool)
    n = c.cuda_device_count()
    assert n >= 0
    if not c.cuda_built:
        assert n == 0
    assert cuda_available() == (c.cuda_built and n > 0)


def test_numpy_and_torch_views_share_memory(rng):
    # The kernel writes into the caller's buffers directly: a torch CPU tensor (DLPack) and a numpy array
    # (buffer protocol) must both be written without a copy.
    pts = rng.random((64, 3), dtype=np.float32)
    out_np = np.full(4, -1, np.int64)
    out_t = torch.full((4,), -1, dtype=torch.int64)
    ext().fps(pts, out_np, 0)
    ext().fps(torch.from_numpy(pts), out_t, 0)
    assert (out_np >= 0).all()
    np.testing.assert_array_equal(out_np, out_t.numpy())


@pytest.mark.parametrize(
    "points,out,message",
    [
        (np.zeros((8, 3), np.float64), np.zeros(2, np.int64), "points: expected dtype float32"),
        (np.zeros((8, 3), np.float32), np.zeros(2, np.int32), "out: expected dtype int64"),
        (np.zeros((8, 4), np.float32), np.zeros(2, np.int64), r"points: expected shape \(\*, 3\)"),
        (np.zeros((8, 6), np.float32)[:, :3], np.zeros(2, np.int64), "points: expected a C-contiguous array"),
        (torch.zeros(8, 6)[:, ::2], torch.zeros(2, dtype=torch.int64), "points: expected a C-contiguous array"),
        ([[0.0, 0.0, 0.0]], np.zeros(1, np.int64), "points: expected a numpy array or a torch tensor"),
    ],
)
def test_bad_arrays_raise_named_errors(points, out, message):
    with pytest.raises((TypeError, ValueError), match=message):
        ext().fps(points, out, 0)


def test_read_only_output_is_rejected():
    out = np.zeros(2, np.int64)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out: output array is read-only"):
        ext().fps(np.zeros((8, 3), np.float32), out, 0)
