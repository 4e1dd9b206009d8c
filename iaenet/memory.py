"""Shape-guided dual memory bank of IAENet: M3D (3D patch latents) + M2D (2D cell features), and X2.

    bank = DualMemoryBank()
    for scan in good_training_scans:
        bank.add_scan(latents, patch_idx, pixel_index, cell_features)
    scores = bank.score(test_latents, test_patch_idx, test_pixel_index, test_cell_features)
    scores.point_scores, scores.object_score            # X2 per point, s2

Per scan the inputs are plain arrays (numpy, or torch tensors on the CPU or CUDA):
  latents        (P, L) float      PointNet latent of each of the scan's P patches (L = 128)
  patch_idx      (P, S) int        each patch's S points (500), indices into the scan's N valid points
  pixel_index    (N,) int          flat index of each valid point in the H x W working image (224 x 224),
                                   row-major; -1 for a point that has no pixel (then it reaches no cell)
  cell_features  (G*G, D) float    the 2D expert's f2, one row per cell of the G x G grid (G = 28), row-major
A pixel (r, c) lies in cell (r * G // H, c * G // W), i.e. (r // 8, c // 8) on 224 with G = 28.

Retention (Shape-Guided's `foreground_subsampling`): every training patch keeps the cells its points fall
in, widened by +-widen cells (default 2) in rows and columns: the (2*widen+1)^2 square around each cell,
clipped at the grid edge, less empty cells (all-zero features: no point fell in them). M2D holds the cells
of a training scan that at least one of its patches keeps (deduplicated per scan); a CSR map (indptr, rows)
lists each patch's M2D rows in ascending order.

Retrieval (Shape-Guided's inference): the k_patches (10) nearest M3D latents of every test patch (exact
faiss IndexFlatL2); the candidates = the union of those training patches' M2D rows; every scored test cell
takes its k_cells (5) nearest candidates (iaenet.ops.restricted_knn, pruned exactly on the CPU by M2D's
principal axes), an omp_atoms (3) OMP reconstruction over them (iaenet.ops.omp_residuals) gives f2_hat,
X2 = ||f2 - f2_hat||. The scored test cells are the test patches' widened cells, as in the reference, less
empty ones. The G x G map (0 where not scored) is upsampled bilinearly (align_corners=False) to
H x W and read at each point's pixel; s2 = max over the points.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from iaenet.ops.reconstruct import MAX_ATOMS, omp_residuals
from iaenet.ops.retrieval import BankProjection, restricted_knn
from iaenet.tensor_files import load_tensors, save_tensors

MODEL_KIND = "iaenet.dual_memory_bank"
# Pruning pays when the prune_dims axes hold this share of M2D's variance; real features hold ~0.9 at 16 axes,
# isotropic ones ~16 / D, for which the dense search is faster (docs/memory.md).
PRUNE_MIN_EXPLAINED = 0.5
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass(frozen=True)
class MemoryConfig:
    """Sizes of the dual memory bank; the defaults are Shape-Guided's / the paper's."""

    image_size: int = 224        # H = W of the working image the pixel indices refer to
    cells: int = 28              # G: the 2D feature grid is G x G
    widen: int = 2               # retention widening in cells (rows and columns)
    k_patches: int = 10          # k1: M3D neighbours per test patch
    k_cells: int = 5             # k2: M2D neighbours per test cell
    omp_atoms: int = 3           # non-zeros of the OMP reconstruction
    storage_dtype: str = "float32"  # "float16" halves M3D/M2D in memory and on disk
    prune_dims: int = 16         # principal axes of M2D for the exact pruning of the CPU M2D search; 0: dense

    def __post_init__(self) -> None:
        for name in ("image_size", "cells", "k_patches", "k_cells", "omp_atoms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        for name in ("widen", "prune_dims"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
        if self.image_size % self.cells:
            raise ValueError(f"cells: {self.cells} must divide image_size {self.image_size}")
        if self.k_cells > MAX_ATOMS:
            raise ValueError(f"k_cells: at most {MAX_ATOMS} M2D neighbours per cell, got {self.k_cells}")
        if self.omp_atoms > self.k_cells:
            raise ValueError(f"omp_atoms: {self.omp_atoms} atoms need k_cells >= {self.omp_atoms}, got {self.k_cells}")
        if self.storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage_dtype: expected one of {sorted(STORAGE_DTYPES)}, got {self.storage_dtype!r}")


@dataclass
class MemoryScores:
    """X2 of one test scan.

    point_scores: (N,) float32 X2 per valid point (0 for points without a pixel). object_score: s2 = max of it.
    cell_scores: (G, G) float32, X2 per scored cell, 0 elsewhere. scored_cells: (C,) int64 flat ids of the scored
    cells (ascending): the test patches' widened cells that are not empty (all-zero features). neighbours:
    (P, k_patches) int64 M3D rows nearest to each test patch, nearest first.
    cell_neighbours: (C, k_cells) int64 M2D rows each scored cell was reconstructed from, nearest first.
    Arrays are numpy when `cell_features` was numpy, else torch tensors on the bank's device.
    """

    point_scores: Any
    object_score: float
    cell_scores: Any
    scored_cells: Any
    neighbours: Any
    cell_neighbours: Any


class DualMemoryBank:
    """M3D + M2D with the patch -> M2D rows map; see the module docstring for the inputs and the method."""

    def __init__(self, config: MemoryConfig | None = None, device: str | torch.device = "cpu"):
        self.config = config or MemoryConfig()
        self.device = torch.device(device)
        self.names: list[str] = []
        self._chunks: dict[str, list[torch.Tensor]] = {key: [] for key in _CHUNK_KEYS}
        self._joined: dict[str, torch.Tensor] | None = None
        self._work: dict[str, Any] = {}  # float32 working copies and the faiss index, built on first use

    # ---- building ------------------------------------------------------------------------------------------

    def add_scan(self, latents, patch_idx, pixel_index, cell_features, name: str | None = None) -> None:
        """Adds one good training scan: all its patch latents to M3D, its retained cells to M2D."""
        cfg = self.config
        latents = _float_tensor(latents, "latents", 2, self.device)
        cell_features = _float_tensor(cell_features, "cell_features", 2, self.device)
        patch_cells = widened_cells(patch_idx, pixel_index, cfg, len(latents), self.device)
        if cell_features.shape[0] != cfg.cells ** 2:
            raise ValueError(f"cell_features: expected {cfg.cells ** 2} rows (G = {cfg.cells}), got "
                             f"{cell_features.shape[0]}")
        if self.num_patches:
            m3d, m2d = self._chunks["m3d"][0], self._chunks["m2d"][0]
            if latents.shape[1] != m3d.shape[1] or cell_features.shape[1] != m2d.shape[1]:
                raise ValueError(f"add_scan: latent/feature dimensions {latents.shape[1]}/{cell_features.shape[1]} "
                                 f"differ from the bank's {m3d.shape[1]}/{m2d.shape[1]}")
        # An all-zero cell holds no point (the 2D expert's per-point pooling leaves such cells empty): nothing to
        # retrieve, so the widening keeps only cells with features (47 % fewer M2D rows on cable_gland).
        patch_cells &= (cell_features != 0).any(dim=1)[None]
        used = patch_cells.any(dim=0)
        used_ids = torch.nonzero(used).flatten()  # ascending flat cell ids: this scan's M2D rows
        rank = torch.cumsum(used.to(torch.int64), 0) - 1  # flat cell id -> row within this scan's M2D chunk
        _, cell_of = torch.nonzero(patch_cells, as_tuple=True)  # row-major: grouped by patch, cells ascending
        scan = len(self.names)
        dtype = STORAGE_DTYPES[cfg.storage_dtype]
        self._append(
            m3d=latents.to(dtype),
            m2d=cell_features[used_ids].to(dtype),
            counts=patch_cells.sum(dim=1),
            rows=rank[cell_of] + self.num_cells,
            patch_scan=torch.full((len(latents),), scan, dtype=torch.int64, device=self.device),
            m2d_scan=torch.full((len(used_ids),), scan, dtype=torch.int64, device=self.device),
            m2d_cell=used_ids.to(torch.int64),
        )
        self.names.append(str(scan) if name is None else str(name))

    # ---- contents ------------------------------------------------------------------------------------------

    @property
    def m3d(self) -> torch.Tensor:
        """(M, L) latents of every training patch, in the storage dtype."""
        return self._all()["m3d"]

    @property
    def m2d(self) -> torch.Tensor:
        """(R, D) retained training cell features, in the storage dtype."""
        return self._all()["m2d"]

    @property
    def indptr(self) -> torch.Tensor:
        """(M + 1,) int64 CSR offsets: patch i owns rows[indptr[i]:indptr[i+1]]."""
        return self._all()["indptr"]

    @property
    def rows(self) -> torch.Tensor:
        """(indptr[M],) int64 M2D rows of every patch, ascending within a patch."""
        return self._all()["rows"]

    @property
    def patch_scan(self) -> torch.Tensor:
        """(M,) int64 training scan of each M3D row."""
        return self._all()["patch_scan"]

    @property
    def m2d_scan(self) -> torch.Tensor:
        """(R,) int64 training scan of each M2D row."""
        return self._all()["m2d_scan"]

    @property
    def m2d_cell(self) -> torch.Tensor:
        """(R,) int64 flat cell id (row * G + col) of each M2D row within its scan."""
        return self._all()["m2d_cell"]

    @property
    def num_patches(self) -> int:
        return sum(len(c) for c in self._chunks["m3d"])

    @property
    def num_cells(self) -> int:
        return sum(len(c) for c in self._chunks["m2d"])

    @property
    def nbytes(self) -> int:
        """Bytes held by the bank's stored tensors (M3D, M2D, CSR map, provenance)."""
        return sum(v for k, v in self.summary().items() if k.endswith("_bytes") and k != "per_scan_bytes")

    def summary(self) -> dict:
        """Sizes: rows and bytes of each part, bytes per training scan, M2D rows per patch."""
        if not self.num_patches:
            raise ValueError("summary: the bank is empty; add training scans first")
        t = self._all()
        csr = t["indptr"].nbytes + t["rows"].nbytes
        provenance = t["patch_scan"].nbytes + t["m2d_scan"].nbytes + t["m2d_cell"].nbytes
        total = t["m3d"].nbytes + t["m2d"].nbytes + csr + provenance
        counts = (t["indptr"][1:] - t["indptr"][:-1]).to(torch.float64)
        return {
            "scans": len(self.names), "patches": self.num_patches, "m2d_rows": self.num_cells,
            "latent_dim": int(t["m3d"].shape[1]), "feature_dim": int(t["m2d"].shape[1]),
            "storage_dtype": self.config.storage_dtype,
            "m3d_bytes": t["m3d"].nbytes, "m2d_bytes": t["m2d"].nbytes, "csr_bytes": csr,
            "provenance_bytes": provenance, "per_scan_bytes": total / len(self.names),
            "rows_per_patch_mean": float(counts.mean()), "rows_per_patch_max": int(counts.max()),
        }

    # ---- scoring -------------------------------------------------------------------------------------------

    def neighbours(self, latents) -> torch.Tensor:
        """(P, k_patches) int64 M3D rows nearest to each latent (exact L2, nearest first), on the bank's device."""
        latents = _float_tensor(latents, "latents", 2, self.device)
        k = self.config.k_patches
        if not self.num_patches:
            raise ValueError("the bank is empty; add training scans first")
        if k > self.num_patches:
            raise ValueError(f"k_patches: {k} neighbours asked from a bank of {self.num_patches} patches")
        if latents.shape[1] != self.m3d.shape[1]:
            raise ValueError(f"latents: dimension {latents.shape[1]} differs from the bank's {self.m3d.shape[1]}")
        _, found = self._index().search(np.ascontiguousarray(latents.cpu().numpy()), k)
        return torch.as_tensor(found, dtype=torch.int64, device=self.device)

    @torch.no_grad()
    def score(self, latents, patch_idx, pixel_index, cell_features, neighbours=None) -> MemoryScores:
        """X2 of one test scan (inputs as for add_scan). `neighbours` (P, k_patches) M3D rows may be given when
        the 3D expert already searched this very bank (same rows in the same order; `latents` may then be None);
        else faiss finds them from `latents`."""
        cfg = self.config
        as_numpy = not isinstance(cell_features, torch.Tensor)
        cell_features = _float_tensor(cell_features, "cell_features", 2, self.device)
        if cell_features.shape[0] != cfg.cells ** 2:
            raise ValueError(f"cell_features: expected {cfg.cells ** 2} rows (G = {cfg.cells}), got "
                             f"{cell_features.shape[0]}")
        if neighbours is None:
            if latents is None:
                raise ValueError("latents: needed to find the M3D neighbours (or pass neighbours)")
            neighbours = self.neighbours(latents)
        else:
            if not self.num_patches:
                raise ValueError("score: the bank is empty; add training scans first")
            if latents is not None:
                latents = _float_tensor(latents, "latents", 2, self.device)
            neighbours = _neighbour_tensor(neighbours, None if latents is None else len(latents), self.num_patches,
                                           cfg.k_patches, self.device)
        pixels = _index_array(pixel_index, "pixel_index", 1)
        scored = scored_cells(patch_idx, pixels, cfg, len(neighbours), self.device)
        m2d = self._m2d_float32()
        if m2d.shape[1] != cell_features.shape[1]:
            raise ValueError(f"cell_features: dimension {cell_features.shape[1]} differs from the bank's "
                             f"{m2d.shape[1]}")
        # On the CPU the per-scan glue works on numpy views: torch's indexing ops open OpenMP teams for these
        # small arrays, and the threads' spinning afterwards slows the steps that follow (docs/memory.md).
        host = self.device.type == "cpu"
        features, bank, scored, indptr, rows, selected = (x.numpy() if host else x for x in (
            cell_features, m2d, scored, self.indptr, self.rows, neighbours.flatten()))  # the ops take one kind
        scored = scored[(features[scored] != 0).any(1)]  # empty cells score 0, like the bank's
        queries = features[scored]
        idx, _ = restricted_knn(bank, indptr, rows, selected, queries, cfg.k_cells,
                                check_finite=False, projection=self._projection())
        cell_scores = np.zeros(cfg.cells ** 2, np.float32) if host else \
            torch.zeros(cfg.cells ** 2, dtype=torch.float32, device=self.device)
        cell_scores[scored] = omp_residuals(bank, queries, idx, cfg.omp_atoms, check_finite=False)
        cell_map = cell_scores.reshape(cfg.cells, cfg.cells)
        point_scores = _read_at_pixels(cell_map, pixels, cfg.image_size)
        fields = {"point_scores": point_scores, "cell_scores": cell_map, "scored_cells": scored,
                  "neighbours": neighbours, "cell_neighbours": idx}
        fields = {key: _as_kind(value, as_numpy, self.device) for key, value in fields.items()}
        return MemoryScores(object_score=float(fields["point_scores"].max()), **fields)

    # ---- files and devices ---------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Writes the bank to a safetensors file with a JSON header (format version, config, scan names)."""
        tensors, header = self.state()
        save_tensors(path, tensors, MODEL_KIND, header)

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON-able header) of the bank, for save() or a file holding more than the bank."""
        if not self.num_patches:
            raise ValueError("save: the bank is empty; add training scans first")
        return dict(self._all()), {"config": asdict(self.config), "names": self.names}

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "DualMemoryBank":
        """Reads a file written by save (never unpickles). ValueError naming the file when it is not a bank."""
        tensors, header = load_tensors(path, MODEL_KIND)
        try:
            return cls.from_state(tensors, header, device)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], header: dict,
                   device: str | torch.device = "cpu") -> "DualMemoryBank":
        """The bank from state(); ValueError when the parts are missing or do not fit together."""
        try:
            bank = cls(MemoryConfig(**header["config"]), device)
            names = [str(n) for n in header["names"]]
            missing = set(_STORED_KEYS) - set(tensors)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"corrupt dual memory bank header ({err})") from err
        if missing:
            raise ValueError(f"dual memory bank file lacks tensors {sorted(missing)}")
        t = {key: tensors[key].to(bank.device) for key in _STORED_KEYS}
        _check_loaded(t, len(names), bank.config)
        bank.names = names
        bank._chunks = {"m3d": [t["m3d"]], "m2d": [t["m2d"]], "counts": [t["indptr"].diff()], "rows": [t["rows"]],
                        "patch_scan": [t["patch_scan"]], "m2d_scan": [t["m2d_scan"]], "m2d_cell": [t["m2d_cell"]]}
        return bank

    def warm_up(self) -> "DualMemoryBank":
        """Builds the search structures (joined tensors, float32 M2D, its projection, the faiss index) that
        scoring otherwise builds on first use, so concurrent scoring threads only read them; returns self."""
        if self.num_patches:
            self._all()
            self._m2d_float32()
            self._projection()
            self._index()
        return self

    def to(self, device: str | torch.device) -> "DualMemoryBank":
        """Moves the bank (in place) to `device`; returns self."""
        self.device = torch.device(device)
        self._chunks = {k: [c.to(self.device) for c in v] for k, v in self._chunks.items()}
        self._joined, self._work = None, {}
        return self

    # ---- internals -----------------------------------------------------------------------------------------

    def _append(self, **parts: torch.Tensor) -> None:
        for key, value in parts.items():
            self._chunks[key].append(value)
        self._joined, self._work = None, {}

    def _all(self) -> dict[str, torch.Tensor]:
        """The chunks joined into single tensors (cached until the next add_scan)."""
        if self._joined is None:
            if not self.num_patches:
                raise ValueError("the bank is empty; add training scans first")
            joined = {key: torch.cat(chunks) for key, chunks in self._chunks.items()}
            counts = joined.pop("counts")
            joined["indptr"] = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
            self._joined = joined
        return self._joined

    def _m2d_float32(self) -> torch.Tensor:
        """M2D as contiguous float32 for the kernel; a float16 bank keeps this working copy after first use."""
        if "m2d" not in self._work:
            self._work["m2d"] = self.m2d.to(torch.float32).contiguous()
        return self._work["m2d"]

    def _projection(self) -> BankProjection | None:
        """M2D's principal axes for the pruned CPU search, when configured, on the CPU and worth it."""
        if "projection" not in self._work:
            m2d, dims = self._m2d_float32(), self.config.prune_dims
            projection = None
            if dims and m2d.device.type == "cpu" and dims < m2d.shape[1]:
                projection = BankProjection.fit(m2d, dims)
                if projection.explained < PRUNE_MIN_EXPLAINED:
                    projection = None
            self._work["projection"] = projection
        return self._work["projection"]

    def _index(self):
        """The exact faiss index over M3D: GPU when faiss has GPU support and the bank is on CUDA."""
        if "index" not in self._work:
            import faiss

            m3d = np.ascontiguousarray(self.m3d.to(torch.float32).cpu().numpy())
            index = faiss.IndexFlatL2(m3d.shape[1])
            if self.device.type == "cuda" and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
                self._work["faiss_resources"] = faiss.StandardGpuResources()
                index = faiss.index_cpu_to_gpu(self._work["faiss_resources"], self.device.index or 0, index)
            index.add(m3d)
            self._work["index"] = index
        return self._work["index"]


def flat_pixel_index(pixels, size: int = 224) -> np.ndarray:
    """(N, 2) int (row, col) pixels, as the 2D expert's view gives them (-1 for an undrawn point) -> the (N,) int64
    flat ids on the size x size image that add_scan/score take as pixel_index, -1 for an undrawn point."""
    pixels = _index_array(pixels, "pixels", 2)
    if pixels.shape[1] != 2:
        raise ValueError(f"pixels: expected (N, 2) (row, col), got shape {tuple(pixels.shape)}")
    return np.where(pixels[:, 0] >= 0, pixels[:, 0] * size + pixels[:, 1], -1)


def widened_cells(patch_idx, pixel_index, config: MemoryConfig, num_patches: int | None = None,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """(P, G*G) bool: the cells each patch's points fall in, widened by +-config.widen cells (square, clipped at
    the grid edge, no wrap between rows). patch_idx (P, S) indexes pixel_index (N,) flat pixel ids (-1 = none)."""
    patch_idx, point_cell = _point_cells(patch_idx, pixel_index, config, num_patches)
    g = config.cells
    cell = torch.from_numpy(point_cell[patch_idx]).to(device)
    occupied = torch.zeros((len(cell), g * g + 1), dtype=torch.float32, device=cell.device)
    occupied.scatter_(1, cell, 1.0)
    return _widen(occupied[:, :g * g], g, config.widen).reshape(len(cell), g * g)


def scored_cells(patch_idx, pixel_index, config: MemoryConfig, num_patches: int | None = None,
                 device: str | torch.device = "cpu") -> torch.Tensor:
    """(C,) int64 ascending flat ids of the cells some patch keeps: widened_cells(...).any(dim=0), computed as
    the widening of the union of the patches' cells (a max filter commutes with the union), so one G x G
    filter instead of P of them."""
    patch_idx, point_cell = _point_cells(patch_idx, pixel_index, config, num_patches)
    g = config.cells
    in_patch = np.zeros(len(point_cell), dtype=bool)
    in_patch[patch_idx.ravel()] = True
    occupied = np.bincount(point_cell[in_patch], minlength=g * g + 1)[:g * g] > 0
    widened = _widen(torch.from_numpy(occupied.astype(np.float32))[None], g, config.widen).flatten()
    return torch.nonzero(widened).flatten().to(device)


def cell_scores_reference(bank: DualMemoryBank, neighbours, patch_idx, pixel_index, cell_features) -> np.ndarray:
    """X2 per cell (G*G,) the way Shape-Guided computes it: candidate union in a Python loop over the neighbour
    patches, torch.cdist, top k_cells, one sklearn sparse_encode(OMP) call per cell. For tests and benchmarks."""
    from sklearn.decomposition import sparse_encode

    cfg = bank.config
    m2d = bank.m2d.to(torch.float32).cpu()
    indptr, rows = bank.indptr.cpu(), bank.rows.cpu()
    feats = torch.as_tensor(np.asarray(cell_features), dtype=torch.float32)
    scored = torch.nonzero(widened_cells(patch_idx, pixel_index, cfg).any(dim=0) & (feats != 0).any(dim=1)).flatten()
    union = []
    for p in torch.unique(torch.as_tensor(np.asarray(neighbours)).flatten()).tolist():
        union.append(rows[indptr[p]:indptr[p + 1]])
    cand = torch.unique(torch.cat(union))
    dist = torch.cdist(feats[scored], m2d[cand])
    knn = torch.topk(dist, k=cfg.k_cells, largest=False).indices
    out = np.zeros(cfg.cells ** 2, dtype=np.float32)
    for i, cell in enumerate(scored.tolist()):
        atoms = m2d[cand[knn[i]]].numpy()
        with warnings.catch_warnings():  # sklearn warns when it stops early on dependent atoms, as ours does
            warnings.simplefilter("ignore", RuntimeWarning)
            code = sparse_encode(feats[cell].numpy()[None], atoms, algorithm="omp", n_nonzero_coefs=cfg.omp_atoms)
        out[cell] = np.linalg.norm(feats[cell].numpy() - (code @ atoms)[0])
    return out


_CHUNK_KEYS = ("m3d", "m2d", "counts", "rows", "patch_scan", "m2d_scan", "m2d_cell")
_STORED_KEYS = ("m3d", "m2d", "indptr", "rows", "patch_scan", "m2d_scan", "m2d_cell")


def _read_at_pixels(cell_map, pixels: np.ndarray, size: int):
    """(N,) float32 values of the cell map (G, G) upsampled bilinearly (align_corners=False, as F.interpolate) to
    size x size, read at each flat pixel id; 0 where pixel = -1. Evaluated at the N pixels only, in numpy: the
    G x G map is tiny, and a full size x size torch upsampling is a multi-threaded op whose threads cost more
    than the whole read-out. Returns the kind (numpy, or torch on its device) of `cell_map`."""
    values = cell_map.cpu().numpy() if isinstance(cell_map, torch.Tensor) else cell_map
    g = values.shape[0]
    valid = pixels >= 0
    rows, cols = np.divmod(np.where(valid, pixels, 0), size)
    (r0, r1, wr), (c0, c1, wc) = (_linear_taps(x, g, size) for x in (rows, cols))
    out = ((1 - wr) * ((1 - wc) * values[r0, c0] + wc * values[r0, c1])
           + wr * ((1 - wc) * values[r1, c0] + wc * values[r1, c1]))
    out = np.where(valid, out, np.float32(0)).astype(np.float32)
    return torch.from_numpy(out).to(cell_map.device) if isinstance(cell_map, torch.Tensor) else out


def _as_kind(x, as_numpy: bool, device: torch.device):
    """x (numpy or torch) as numpy, or as a torch tensor on `device`."""
    if as_numpy:
        return x.cpu().numpy() if isinstance(x, torch.Tensor) else x
    return x.to(device) if isinstance(x, torch.Tensor) else torch.from_numpy(x).to(device)


def _linear_taps(dst: np.ndarray, g: int, size: int):
    """The two source cells and the weight of the second for output coordinates `dst` of a g -> size linear
    upsampling with align_corners=False: source (dst + 0.5) * g / size - 0.5, clamped at 0 (float32)."""
    src = np.maximum((dst.astype(np.float32) + np.float32(0.5)) * np.float32(g / size) - np.float32(0.5),
                     np.float32(0))
    lo = src.astype(np.int64)
    return lo, np.minimum(lo + 1, g - 1), (src - lo).astype(np.float32)


def _point_cells(patch_idx, pixel_index, config: MemoryConfig, num_patches: int | None):
    """Checked (P, S) int64 patch_idx and (N,) int64 flat cell of every point (G*G for a point without a pixel), as
    numpy: these are small single-threaded steps."""
    patch_idx = _index_array(patch_idx, "patch_idx", 2)
    pixels = _index_array(pixel_index, "pixel_index", 1)
    size, g = config.image_size, config.cells
    if patch_idx.shape[0] == 0 or patch_idx.shape[1] == 0:
        raise ValueError(f"patch_idx: expected at least one patch of at least one point, got shape "
                         f"{tuple(patch_idx.shape)}")
    if num_patches is not None and patch_idx.shape[0] != num_patches:
        raise ValueError(f"patch_idx: {patch_idx.shape[0]} patches but {num_patches} latents")
    if pixels.size == 0:
        raise ValueError("pixel_index: the scan has no points")
    if patch_idx.min() < 0 or patch_idx.max() >= len(pixels):
        raise ValueError(f"patch_idx: point indices must lie in [0, {len(pixels)}) (the points of pixel_index)")
    if pixels.min() < -1 or pixels.max() >= size * size:
        raise ValueError(f"pixel_index: flat pixel ids must lie in [0, {size * size}) or be -1, got "
                         f"[{int(pixels.min())}, {int(pixels.max())}]")
    point_cell = ((pixels // size) * g // size) * g + (pixels % size) * g // size
    return patch_idx, np.where(pixels >= 0, point_cell, g * g)


def _widen(occupied: torch.Tensor, g: int, widen: int) -> torch.Tensor:
    """(B, g*g) 0/1 float -> (B, g, g) bool, each set cell widened to the (2*widen+1)^2 square around it."""
    # A max filter over the square; max_pool2d pads with -inf, so the square is clipped at the edge.
    return F.max_pool2d(occupied.reshape(-1, 1, g, g), 2 * widen + 1, stride=1, padding=widen).reshape(-1, g, g) > 0


def _float_tensor(x, name: str, ndim: int, device: torch.device) -> torch.Tensor:
    """x as a finite float32 tensor of `ndim` dimensions on `device`."""
    try:
        t = torch.as_tensor(x if isinstance(x, torch.Tensor) else np.asarray(x), device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name}: expected a numeric array, got {type(x).__name__}") from err
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name}: expected a float array, got {t.dtype}")
    t = t.to(torch.float32)
    if t.ndim != ndim or 0 in t.shape:
        raise ValueError(f"{name}: expected a non-empty array with {ndim} dimensions, got shape {tuple(t.shape)}")
    # numpy on the CPU: torch's reduction is multi-threaded, and its thread wake-ups cost more than the check
    finite = np.isfinite(t.numpy()).all() if t.device.type == "cpu" else bool(torch.isfinite(t).all())
    if not finite:
        raise ValueError(f"{name}: contains NaN or inf")
    return t.contiguous()


def _index_tensor(x, name: str, ndim: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(_index_array(x, name, ndim)).to(device)


def _index_array(x, name: str, ndim: int) -> np.ndarray:
    """x (numpy, torch on any device, or a sequence) as an int64 numpy array of `ndim` dimensions."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if not (np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_):
        raise TypeError(f"{name}: expected an integer array, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(a.shape)}")
    return a.astype(np.int64, copy=False)


def _neighbour_tensor(neighbours, num_patches: int | None, bank_patches: int, k: int, device) -> torch.Tensor:
    t = _index_tensor(neighbours, "neighbours", 2, device)
    if t.shape[1] != k or (num_patches is not None and t.shape[0] != num_patches):
        raise ValueError(f"neighbours: expected shape ({num_patches or 'P'}, {k}) (patches x k_patches), got "
                         f"{tuple(t.shape)}")
    if t.min() < 0 or t.max() >= bank_patches:
        raise ValueError(f"neighbours: M3D rows must lie in [0, {bank_patches})")
    return t


def _check_loaded(t: dict[str, torch.Tensor], scans: int, cfg: MemoryConfig) -> None:
    """Consistency of a loaded bank; everything indexes memory later, so a damaged file must fail here."""
    m, r = len(t["m3d"]), len(t["m2d"])
    ip, rows = t["indptr"], t["rows"]
    problems = []
    if t["m3d"].dtype != STORAGE_DTYPES[cfg.storage_dtype] or t["m2d"].dtype != STORAGE_DTYPES[cfg.storage_dtype]:
        problems.append(f"tensors are not {cfg.storage_dtype}")
    if ip.shape != (m + 1,) or int(ip[0]) != 0 or int(ip[-1]) != len(rows) or bool((ip.diff() < 0).any()):
        problems.append("indptr does not match rows")
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= r):
        problems.append("rows index outside M2D")
    if t["patch_scan"].shape != (m,) or t["m2d_scan"].shape != (r,) or t["m2d_cell"].shape != (r,):
        problems.append("provenance lengths differ from M3D/M2D")
    elif m and (int(t["patch_scan"].max()) >= scans or int(t["m2d_cell"].max()) >= cfg.cells ** 2):
        problems.append("provenance out of range")
    if not (bool(torch.isfinite(t["m3d"].float()).all()) and bool(torch.isfinite(t["m2d"].float()).all())):
        problems.append("NaN or inf in the features")
    if problems:
        raise ValueError(f"inconsistent dual memory bank ({'; '.join(problems)})")
