"""Geometry and scoring kernels: the Python face of iaenet._C.

Each op validates its inputs, accepts numpy arrays or torch tensors (CPU or CUDA), answers in the same
kind, and has a plain reference implementation beside it that the tests compare against.
"""
from iaenet.ops._ext import cuda_available
from iaenet.ops.neighbours import knn
from iaenet.ops.patches import group_patches
from iaenet.ops.render import PinholeCamera, render_organized, render_pinhole
from iaenet.ops.sampling import farthest_point_sample

__all__ = ["PinholeCamera", "cuda_available", "farthest_point_sample", "group_patches", "knn", "render_organized",
           "render_pinhole"]
