"""Geometry and scoring kernels: the Python face of iaenet._C.

Each op validates its inputs, accepts numpy arrays or torch tensors (CPU or CUDA), answers in the same
kind, and has a plain reference implementation beside it that the tests compare against.
"""
from iaenet.ops._ext import cuda_available
from iaenet.ops.fpfh import fpfh, fpfh_from_neighbors
from iaenet.ops.iaf import iaf_forward
from iaenet.ops.neighbours import knn
from iaenet.ops.normals import estimate_normals, estimate_normals_grid, normals_from_neighbors
from iaenet.ops.patches import group_patches
from iaenet.ops.render import PinholeCamera, render_organized, render_pinhole
from iaenet.ops.reconstruct import omp_residuals
from iaenet.ops.retrieval import BankProjection, restricted_knn
from iaenet.ops.sampling import farthest_point_sample

__all__ = [
    "BankProjection",
    "PinholeCamera",
    "cuda_available",
    "estimate_normals",
    "estimate_normals_grid",
    "farthest_point_sample",
    "fpfh",
    "fpfh_from_neighbors",
    "group_patches",
    "iaf_forward",
    "knn",
    "normals_from_neighbors",
    "omp_residuals",
    "render_organized",
    "render_pinhole",
    "restricted_knn",
]
