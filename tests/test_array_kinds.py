"""Every op takes its arrays of one kind (all numpy, or all torch on one device) and refuses a mix with the
same ValueError, in either direction."""
import numpy as np
import pytest
import torch

from iaenet.ops import (fpfh, fpfh_from_neighbors, knn, normals_from_neighbors, omp_residuals, render_organized,
                        render_pinhole, restricted_knn)

N, D = 12, 4


def _inputs():
    rng = np.random.default_rng(0)
    points = rng.random((N, 3), dtype=np.float32)
    normals = np.tile(np.array([[0, 0, 1]], np.float32), (N, 1))
    nbr_idx = np.stack([np.arange(N), (np.arange(N) + 1) % N, (np.arange(N) + 2) % N], axis=1)
    bank = rng.random((20, D), dtype=np.float32)
    return dict(points=points, queries=points[:5].copy(), normals=normals, nbr_idx=nbr_idx,
                nbr_count=np.full(N, 3, np.int64), grid_index=np.arange(N, dtype=np.int64), bank=bank,
                cells=rng.random((6, D), dtype=np.float32), indptr=np.array([0, 10, 20]), rows=np.arange(20),
                patches=np.array([0, 1]), atoms=rng.integers(0, 20, (6, 5)))


# op, the array the others must match (its name in the message), the arrays that may not differ from it
CALLS = {
    "knn": (lambda a: knn(a["points"], 2, a["queries"]), "points", ["queries"]),
    "fpfh": (lambda a: fpfh(a["points"], a["normals"], k=3), "points", ["normals"]),
    "fpfh_from_neighbors": (lambda a: fpfh_from_neighbors(a["points"], a["normals"], a["nbr_idx"], a["nbr_count"]),
                            "points", ["normals", "nbr_idx", "nbr_count"]),
    "normals_from_neighbors": (lambda a: normals_from_neighbors(a["points"], a["nbr_idx"], a["nbr_count"]),
                               "points", ["nbr_idx", "nbr_count"]),
    "restricted_knn": (lambda a: restricted_knn(a["bank"], a["indptr"], a["rows"], a["patches"], a["cells"], 3),
                       "cells", ["bank", "indptr", "rows", "patches"]),
    "omp_residuals": (lambda a: omp_residuals(a["bank"], a["cells"], a["atoms"], 3), "cells", ["bank", "atoms"]),
    "render_organized": (lambda a: render_organized(a["points"], a["normals"], a["grid_index"], (3, 4)),
                         "points", ["normals", "grid_index"]),
    "render_pinhole": (lambda a: render_pinhole(a["points"], a["normals"]), "points", ["normals"]),
}
# the name each op gives the reference array and the others in its messages
NAMES = {"cells": "queries", "atoms": "idx"}
CASES = [(op, other, torch_reference) for op, (_, _, others) in CALLS.items() for other in others
         for torch_reference in (False, True)]


@pytest.mark.parametrize("op", CALLS)
def test_one_kind_is_accepted_and_answered_in_kind(op):
    call, reference, others = CALLS[op]
    arrays = _inputs()
    numpy_out = call(arrays)
    torch_out = call({key: torch.from_numpy(value) for key, value in arrays.items()})
    for a, b in zip(*(out if isinstance(out, tuple) else (out,) for out in (numpy_out, torch_out))):
        assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor)
        np.testing.assert_array_equal(a, b.numpy())


@pytest.mark.parametrize("op, other, torch_reference", CASES)
def test_a_mix_is_refused(op, other, torch_reference):
    call, reference, _ = CALLS[op]
    arrays = _inputs()
    if torch_reference:  # everything torch but `other`
        arrays = {key: value if key == other else torch.from_numpy(value) for key, value in arrays.items()}
    else:  # everything numpy but `other`
        arrays[other] = torch.from_numpy(arrays[other])
    kinds = ("a numpy array", "a torch tensor on cpu") if torch_reference else ("a torch tensor on cpu",
                                                                               "a numpy array")
    name, like = NAMES.get(other, other), NAMES.get(reference, reference)
    with pytest.raises(ValueError, match=rf"^{name}: must be of the same kind and on the same device as {like} "
                                         rf"\(all numpy, or all torch on one device\); got {kinds[0]} and {kinds[1]}$"):
        call(arrays)
