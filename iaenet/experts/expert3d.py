"""The 3D expert: PointNet-SDF patch model, memory bank M3D and per-point anomaly scores X1 (Shape-Guided).

    expert = Expert3D("fast").fit(train_clouds)          # SDF pre-training + bank of every training patch latent
    result = expert.score(points)                         # X1 per point, s1 = max X1
    expert.save("cable_gland.expert3d.safetensors"); Expert3D.load(...)

A cloud is an (N, 3) float array (numpy or torch) of valid points, e.g. `Scan.valid_points()[0]` after
preprocessing. Patches: farthest-point-sampled centres and their `patch_size` nearest points
(`iaenet.ops.group_patches`). Everything after the patch cut is batched over patches: one encoder pass, one
k-NN search in the bank, one batched OMP, one decoder pass over all patch points, one scatter-min.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from iaenet.experts.expert3d_config import Expert3DConfig, resolve_config
from iaenet.experts.sdf_data import neighbour_sigma, normalise_patches
from iaenet.experts.sdf_nets import SDFNetwork
from iaenet.experts.sdf_training import train_sdf
from iaenet.ops import group_patches, omp_residuals
from iaenet.tensor_files import load_tensors, save_tensors

MODEL_KIND = "iaenet.expert3d"


@dataclass
class Expert3DScores:
    """Scores of one cloud of N points cut into P patches.

    point_scores: X1, (N,) float32, |SDF| of each point under its patches' reconstructed latents, the min over
      the patches holding it (points in no patch take the score of the nearest covered point).
    object_score: s1 = max(X1). latent_score: max over patches of |F - F'| (Shape-Guided's image score).
    patch_idx: (P, S) int64 point indices of each patch. neighbours: (P, k) int64 bank rows nearest to each
      patch latent (nearest first), what the dual memory bank needs.
    Arrays are numpy when the input points were numpy, else torch tensors on the expert's device.
    """

    point_scores: Any
    object_score: float
    latent_score: float
    patch_idx: Any
    neighbours: Any


class Expert3D:
    """PointNet-SDF 3D expert. `config` is an Expert3DConfig or a preset name ("paper", "fast", "tiny").

    score_batch_patches: patches per encoder/decoder call when encoding and scoring. None picks 8 on the CPU
    (the activations of 8 x 500 queries stay in cache; measured faster than larger calls, see
    docs/expert3d.md) and all patches in one call on CUDA. It changes speed and memory only.
    """

    def __init__(self, config: Expert3DConfig | str = "fast", device: str | torch.device = "cpu",
                 score_batch_patches: int | None = None):
        self.config = resolve_config(config)
        self.device = torch.device(device)
        if score_batch_patches is None:
            score_batch_patches = 8 if self.device.type == "cpu" else 1 << 30
        if isinstance(score_batch_patches, bool) or not isinstance(score_batch_patches, int) \
                or score_batch_patches < 1:
            raise ValueError(f"score_batch_patches: expected None or a positive int, got {score_batch_patches!r}")
        self.score_batch_patches = score_batch_patches
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
            torch.manual_seed(self.config.seed)
            self.network = SDFNetwork(self.config)
        self.network.to(self.device).eval()
        self.losses: list[float] = []
        self.bank: torch.Tensor | None = None  # (M, D) latents of every training patch
        self.bank_scan: torch.Tensor | None = None  # (M,) which bank cloud each latent comes from
        self.bank_patch: torch.Tensor | None = None  # (M,) which patch of that cloud
        self.bank_names: list[str] = []

    # ---- fitting -------------------------------------------------------------------------------------------

    def fit(self, clouds: Sequence, names: Sequence[str] | None = None, *, progress: bool = True,
            checkpoint_path: str | Path | None = None, resume_from: str | Path | None = None,
            log_path: str | Path | None = None) -> "Expert3D":
        """SDF pre-training on (at most max_train_scans of) `clouds`, then the bank from all of them.

        clouds: sequence of (N_i, 3) clouds of good parts, one category or several. names: one per cloud
        (default "0", "1", ...), kept with the bank. Returns self.
        """
        self.train(clouds, progress=progress, checkpoint_path=checkpoint_path, resume_from=resume_from,
                   log_path=log_path)
        return self.build_bank(clouds, names)

    def train(self, clouds: Sequence, *, progress: bool = True, checkpoint_path: str | Path | None = None,
              resume_from: str | Path | None = None, log_path: str | Path | None = None) -> list[float]:
        """SDF pre-training only; returns the loss of every epoch (also kept in `self.losses`)."""
        clouds = self._check_clouds(clouds)
        chosen = self._training_subset(len(clouds))
        patches = torch.cat([self._patches(clouds[i], self.config.group_mul_train)[1] for i in chosen])
        sigma = neighbour_sigma(patches, self.config.sigma_neighbour)
        self.losses = train_sdf(self.network, patches, sigma, self.config, progress=progress,
                                checkpoint_path=checkpoint_path, resume_from=resume_from, log_path=log_path)
        return self.losses

    def build_bank(self, clouds: Sequence, names: Sequence[str] | None = None) -> "Expert3D":
        """M3D: the latent of every patch (group_mul_bank) of every cloud, with where it came from."""
        clouds = self._check_clouds(clouds)
        names = [str(i) for i in range(len(clouds))] if names is None else [str(n) for n in names]
        if len(names) != len(clouds):
            raise ValueError(f"names: {len(names)} names for {len(clouds)} clouds")
        latents, scan, patch = [], [], []
        for index, cloud in enumerate(clouds):
            _, normalised = self._patches(cloud, self.config.group_mul_bank)
            latents.append(self._encode(normalised))
            scan.append(torch.full((len(normalised),), index, dtype=torch.long, device=self.device))
            patch.append(torch.arange(len(normalised), device=self.device))
        bank = torch.cat(latents)
        if bank.shape[0] < self.config.k_neighbours:
            raise ValueError(f"clouds: the bank has {bank.shape[0]} patches, fewer than k_neighbours="
                             f"{self.config.k_neighbours}")
        self.bank, self.bank_scan, self.bank_patch, self.bank_names = bank, torch.cat(scan), torch.cat(patch), names
        return self

    # ---- scoring -------------------------------------------------------------------------------------------

    @torch.no_grad()
    def score(self, points, exclude_scan: int | None = None) -> Expert3DScores:
        """X1 for every point of one cloud (N, 3), s1 = max X1, plus the patch/bank neighbours (see
        Expert3DScores). Needs a fitted bank. exclude_scan: a bank cloud whose latents are not searched (scoring
        a training cloud, or a pseudo-anomaly made from it, against the others: leave-one-out)."""
        if self.bank is None:
            raise ValueError("Expert3D.score: the expert has no memory bank yet; call fit() or build_bank()")
        as_numpy = not isinstance(points, torch.Tensor)
        cloud = self._check_clouds([points])[0]
        patch_idx, normalised = self._patches(cloud, self.config.group_mul_bank)
        latents = self._encode(normalised)
        allowed = None
        if exclude_scan is not None:
            allowed = self.bank_scan != int(exclude_scan)
            if int(allowed.sum()) < self.config.k_neighbours:
                raise ValueError(f"exclude_scan: without cloud {exclude_scan} the bank has fewer than k_neighbours="
                                 f"{self.config.k_neighbours} latents")
        neighbours = _nearest_rows(latents, self.bank, self.config.k_neighbours, allowed=allowed)
        # the OMP kernel the memory bank uses too: coefficients over each patch's neighbours, F' = sum of them
        residual, codes = omp_residuals(self.bank, latents, neighbours, self.config.omp_atoms, return_codes=True)
        recon = torch.einsum("pk,pkd->pd", codes, self.bank[neighbours].double()).float()
        step = self.score_batch_patches
        sdf = torch.cat([self.network.decoder(normalised[s:s + step], recon[s:s + step])
                         for s in range(0, len(normalised), step)])
        x1 = _min_over_patches(sdf.abs(), patch_idx, cloud)
        result = Expert3DScores(point_scores=x1, object_score=float(x1.max()),
                                latent_score=float(residual.max()),
                                patch_idx=patch_idx, neighbours=neighbours)
        if as_numpy:
            for field in ("point_scores", "patch_idx", "neighbours"):
                setattr(result, field, getattr(result, field).cpu().numpy())
        return result

    def patches(self, points, group_mul: int | None = None):
        """(P, S) int64 point indices of the patches `score` (default) or `fit` would cut from `points`."""
        as_numpy = not isinstance(points, torch.Tensor)
        idx = self._patches(self._check_clouds([points])[0], group_mul or self.config.group_mul_bank)[0]
        return idx.cpu().numpy() if as_numpy else idx

    # ---- files ---------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """One safetensors file: network weights, bank and its sources; JSON header: config, names, losses."""
        tensors, header = self.state()
        save_tensors(path, tensors, MODEL_KIND, header)

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON-able header) of the expert, for save() or a file holding more than the expert."""
        tensors = {f"net.{k}": v for k, v in self.network.state_dict().items()}
        if self.bank is not None:
            tensors.update({"bank.latents": self.bank, "bank.scan": self.bank_scan, "bank.patch": self.bank_patch})
        return tensors, {"config": self.config.to_json(), "bank_names": self.bank_names, "losses": self.losses}

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu",
             score_batch_patches: int | None = None) -> "Expert3D":
        """Reads a file written by save (never unpickles). Errors name the file."""
        tensors, header = load_tensors(path, MODEL_KIND)
        try:
            return cls.from_state(tensors, header, device, score_batch_patches)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], header: dict, device: str | torch.device = "cpu",
                   score_batch_patches: int | None = None) -> "Expert3D":
        """The expert from state(); ValueError when the parts do not fit together."""
        try:
            expert = cls(Expert3DConfig.from_json(header["config"]), device, score_batch_patches)
            expert.network.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        except (KeyError, ValueError, RuntimeError) as err:
            raise ValueError(f"does not hold a valid 3D expert ({err})") from err
        expert.losses = list(header.get("losses", []))
        if "bank.latents" in tensors:
            m = tensors["bank.latents"].shape[0]
            if tensors["bank.latents"].shape != (m, expert.config.latent_dim) or any(
                    tensors.get(k, torch.empty(0)).shape != (m,) for k in ("bank.scan", "bank.patch")):
                raise ValueError(f"bank tensors do not fit together or with latent_dim={expert.config.latent_dim}")
            expert.bank = tensors["bank.latents"].to(expert.device)
            expert.bank_scan = tensors["bank.scan"].to(expert.device)
            expert.bank_patch = tensors["bank.patch"].to(expert.device)
            expert.bank_names = list(header.get("bank_names", []))
        return expert

    # ---- helpers -------------------------------------------------------------------------------------------

    def _check_clouds(self, clouds: Sequence) -> list[torch.Tensor]:
        if isinstance(clouds, (np.ndarray, torch.Tensor)):
            raise TypeError("clouds: expected a sequence of (N, 3) clouds, got a single array")
        if len(clouds) == 0:
            raise ValueError("clouds: empty; need at least one cloud")
        out = []
        for i, cloud in enumerate(clouds):
            t = torch.as_tensor(cloud).to(device=self.device, dtype=torch.float32)
            if t.ndim != 2 or t.shape[1] != 3:
                raise ValueError(f"cloud {i}: expected shape (N, 3), got {tuple(t.shape)}")
            if t.shape[0] < self.config.patch_size:
                raise ValueError(f"cloud {i}: {t.shape[0]} points, fewer than one patch "
                                 f"(patch_size={self.config.patch_size})")
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"cloud {i}: contains NaN or inf coordinates")
            out.append(t.contiguous())
        return out

    def _training_subset(self, count: int) -> list[int]:
        """The reference trains on 20 random clouds per class (unseeded); here a seeded choice."""
        limit = self.config.max_train_scans
        if limit is None or count <= limit:
            return list(range(count))
        rng = np.random.default_rng(self.config.seed)
        return sorted(rng.choice(count, size=limit, replace=False).tolist())

    def _patches(self, cloud: torch.Tensor, group_mul: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(patch_idx (P, S) int64, normalised patches (P, S, 3)) of one checked cloud."""
        _, patch_idx = group_patches(cloud, patch_size=self.config.patch_size, group_mul=group_mul,
                                     seed=self.config.seed)
        patch_idx = torch.as_tensor(patch_idx, device=self.device).long()
        return patch_idx, normalise_patches(cloud[patch_idx])

    @torch.no_grad()
    def _encode(self, normalised: torch.Tensor) -> torch.Tensor:
        self.network.eval()
        step = self.score_batch_patches
        return torch.cat([self.network.encoder(normalised[s:s + step]) for s in range(0, len(normalised), step)])


def point_scores_to_grid(point_scores, pixel_index, shape: tuple[int, int]):
    """Scatter per-point scores into an (H, W) map, 0 where there is no point.

    point_scores (N,), pixel_index (N,) flat indices into H*W (e.g. from Scan.valid_points()). numpy in, numpy
    out; torch in, torch out.
    """
    as_numpy = not isinstance(point_scores, torch.Tensor)
    scores = torch.as_tensor(point_scores, dtype=torch.float32)
    index = torch.as_tensor(pixel_index, device=scores.device).long()
    if scores.ndim != 1 or index.shape != scores.shape:
        raise ValueError(f"point_scores {tuple(scores.shape)} and pixel_index {tuple(index.shape)}: "
                         "expected two (N,) arrays")
    size = int(shape[0]) * int(shape[1])
    if len(index) and (int(index.min()) < 0 or int(index.max()) >= size):
        raise ValueError(f"pixel_index: values must lie in [0, {size}) for a grid of shape {tuple(shape)}")
    grid = scores.new_zeros(size).index_put_((index,), scores).reshape(int(shape[0]), int(shape[1]))
    return grid.cpu().numpy() if as_numpy else grid


def _nearest_rows(queries: torch.Tensor, bank: torch.Tensor, k: int, chunk: int = 4096,
                  allowed: torch.Tensor | None = None) -> torch.Tensor:
    """(P, k) indices of the k nearest bank rows (Euclidean) of each query, nearest first; only rows where
    `allowed` (M,) bool is True when given.

    Distances in float64: cdist's matrix-product form loses ~1e-4 relative precision in float32 when latents
    are close, enough to reorder near-equal neighbours depending on how the queries are batched.
    """
    bank64 = bank.double()
    out = []
    for s in range(0, len(queries), chunk):
        dist = torch.cdist(queries[s:s + chunk].double(), bank64)
        if allowed is not None:
            dist[:, ~allowed] = torch.inf
        out.append(dist.topk(k, dim=1, largest=False).indices)
    return torch.cat(out)


def _min_over_patches(patch_scores: torch.Tensor, patch_idx: torch.Tensor, cloud: torch.Tensor) -> torch.Tensor:
    """Per-point min over the patches holding the point; a point in no patch takes its nearest covered
    point's score (the reference leaves it 0, which would hide it)."""
    n = cloud.shape[0]
    flat_idx, flat_scores = patch_idx.reshape(-1), patch_scores.reshape(-1)
    scores = torch.full((n,), torch.inf, dtype=flat_scores.dtype, device=flat_scores.device)
    scores = scores.scatter_reduce(0, flat_idx, flat_scores, reduce="amin")
    covered = torch.isfinite(scores)
    if not bool(covered.all()):
        holes = torch.nonzero(~covered).squeeze(1)
        inside = torch.nonzero(covered).squeeze(1)
        nearest = _nearest_rows(cloud[holes], cloud[inside], 1).squeeze(1)
        scores[holes] = scores[inside[nearest]]
    return scores
