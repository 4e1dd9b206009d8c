"""Inputs shared by the normals and FPFH tests: smooth random clouds, real scans, a fake CUDA array."""
from __future__ import annotations

import ctypes

import numpy as np
import torch


def smooth_cloud(rng: np.random.Generator, n: int, shape: str = "wave") -> np.ndarray:
    """(n, 3) float32 points, in metres, on a smooth surface 0.5-0.6 m in front of a camera at the origin."""
    if shape == "wave":
        xy = rng.random((n, 2)) * 0.1 - 0.05
        z = 0.55 + 0.01 * np.sin(40 * xy[:, 0]) * np.cos(30 * xy[:, 1])
        pts = np.c_[xy, z]
    elif shape == "sphere":  # the camera-facing cap of a sphere of radius 5 cm
        v = rng.normal(size=(n, 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        v[:, 2] = -np.abs(v[:, 2])
        pts = np.array([0.0, 0.0, 0.6]) + 0.05 * v
    else:
        raise ValueError(shape)
    return pts.astype(np.float32)


def valid_points(xyz_file) -> np.ndarray:
    """The valid (non-zero) points of an MVTec 3D-AD xyz TIFF, (N, 3) float32."""
    import tifffile

    pts = tifffile.imread(xyz_file).reshape(-1, 3)
    return np.ascontiguousarray(pts[np.any(pts != 0, axis=1)])


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Unsigned angle (radians) between the lines of row vectors a and b, accurate for tiny angles."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return np.arctan2(np.linalg.norm(np.cross(a, b), axis=1), np.abs((a * b).sum(1)))


class FakeCudaArray:
    """A CPU tensor whose DLPack export claims to live on CUDA device 0 (for testing CPU-only builds: the
    extension must refuse it before touching the data)."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA

    def __dlpack__(self, stream=None):
        capsule = self.tensor.__dlpack__()
        get = ctypes.pythonapi.PyCapsule_GetPointer
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        managed = get(capsule, b"dltensor")
        # DLManagedTensor starts with DLTensor {void* data; DLDevice {int32 type; int32 id}; ...}
        ctypes.c_int32.from_address(managed + ctypes.sizeof(ctypes.c_void_p)).value = 2
        return capsule
