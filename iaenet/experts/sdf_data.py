"""Patch normalisation and SDF training queries, vectorised over patches.

Shapes: P patches of S points, float32. Distances inside a patch use batched torch.cdist (S x S per patch),
so memory is bounded by processing `chunk` patches at a time.
"""
from __future__ import annotations

import torch

from iaenet.experts.expert3d_config import Expert3DConfig

EXACT = "donot_use_mm_for_euclid_dist"  # torch.cdist without the matrix-product shortcut


def normalise_patches(patches: torch.Tensor) -> torch.Tensor:
    """Shape-Guided's patch frame: scale so the largest bbox extent is 1, then centre on the patch mean.

    patches (P, S, 3) in any unit -> (P, S, 3) unitless. The centring is done before the scaling (the same
    result in exact arithmetic) so float32 keeps the patch's detail when coordinates are far from the origin.
    Raises ValueError for a patch whose points all coincide (no extent to scale by).
    """
    extent = (patches.amax(dim=1) - patches.amin(dim=1)).amax(dim=-1)  # (P,)
    flat = extent <= 0
    if bool(flat.any()):
        first = int(torch.nonzero(flat)[0])
        raise ValueError(f"patches: patch {first} has zero extent (all its points coincide)")
    centred = patches - patches.mean(dim=1, keepdim=True)
    return centred / extent[:, None, None]


def neighbour_sigma(patches: torch.Tensor, neighbour: int, chunk: int = 64) -> torch.Tensor:
    """Distance from each patch point to its `neighbour`-th nearest neighbour in the same patch, self excluded.

    patches (P, S, 3) -> sigma (P, S). The reference queries a kd-tree for 51 neighbours (self included) and
    takes the last; this is the same number from one batched distance matrix per chunk of patches.
    """
    out = []
    for start in range(0, patches.shape[0], chunk):
        block = patches[start:start + chunk]
        # The direct (not matrix-product) form: exact, and the same bits on every call; the product form's BLAS
        # call does not always round the same way on several threads, which changed sigma between runs.
        dist = torch.cdist(block, block, compute_mode=EXACT)  # (c, S, S); the self distance 0 is the smallest
        out.append(dist.kthvalue(neighbour + 1, dim=-1).values)
    return torch.cat(out) if out else patches.new_zeros((0, patches.shape[1]))


def draw_queries(patches: torch.Tensor, sigma: torch.Tensor, config: Expert3DConfig,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One query set per patch and the nearest patch point of every query (the Neural-Pull target).

    patches (B, S, 3), sigma (B, S) -> queries (B, S, 3), targets (B, S, 3). Each patch draws its set like the
    reference draws one of its 20 stored sets: narrow (q = p + narrow_scale * sigma * N(0, 1)) with odds
    narrow_sets : wide_sets, else wide. The noise is drawn fresh from `generator` (on the patches' device)
    instead of being stored, so the draws are reproducible from the seed without keeping 20 sets per patch.
    """
    num_sets = config.narrow_sets + config.wide_sets
    set_index = torch.randint(0, num_sets, (patches.shape[0],), generator=generator, device=patches.device)
    scale = torch.where(set_index < config.narrow_sets, config.narrow_scale, config.wide_scale).to(patches.dtype)
    noise = torch.randn(patches.shape, generator=generator, device=patches.device, dtype=patches.dtype)
    queries = patches + scale[:, None, None] * sigma[..., None] * noise
    nearest = torch.cdist(queries, patches, compute_mode=EXACT).argmin(dim=-1)  # (B, S)
    targets = torch.gather(patches, 1, nearest[..., None].expand(-1, -1, 3))
    return queries, targets
