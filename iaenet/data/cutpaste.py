"""Cut-Paste pseudo-anomalies (G2SF) on organized scans: the training data of the fusion module.

A Perlin-noise mask cut from a donor scan's foreground is pasted onto a target scan: inside the mask the
target keeps its x and y but takes the donor's z relief, shifted to the target's mean height plus a small
random step. See docs/synthesis.md for the method, the reference's values and where we differ.

    synthesizer = CutPasteSynthesizer(donors=[cleaned scans...], seed=0)
    anomalous = synthesizer.synthesize(target, index=7)        # a Scan, gt = where the relief changed

`write_synthetic_anomalies` writes such scans of a dataset category in the MVTec 3D-AD layout.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from iaenet.data.datasets import open_dataset
from iaenet.data.io import prepare_output_folder, write_mask_png, write_xyz_tiff
from iaenet.data.perlin import perlin_noise
from iaenet.data.preprocess import clean_scan, nearest_indices
from iaenet.data.scan import LABEL_ANOMALOUS, LABEL_GOOD, Scan
from iaenet.ops._params import check_float, check_int

DEFECT = "cutpaste"
DONORS_PER_CATEGORY = 8  # G2SF pools 8 random training scans per MVTec 3D-AD class as anomaly sources
_RIM = np.ones((3, 3), dtype=bool)  # the reference dilates its mask with a 3x3 square


@dataclasses.dataclass(frozen=True)
class CutPasteConfig:
    """Parameters of the Cut-Paste synthesis; the defaults are G2SF's (notes §6). Construction validates them.

    Attributes:
        threshold: the mask is where the Perlin noise (values in [-1, 1]) exceeds this.
        min_scale_exponent, max_scale_exponent: the noise has 2^e lattice cells across each axis, e drawn
            uniformly in [min, max] per axis (G2SF: 0..4).
        max_rotation_deg: the noise lattice is turned by an angle drawn uniformly in [-max, max] degrees.
        reference_size: the pixel counts below are for a reference_size x reference_size grid (G2SF makes its
            masks at 512x512); on an (H, W) grid they are scaled by H*W / reference_size^2 (`size_limits`).
        min_component, max_component: a connected part of the mask (4-neighbour) is kept if its size lies
            in [min, max] pixels.
        min_total: the kept parts must sum to at least this many pixels, else the mask is drawn again.
        dilation: the mask is dilated by this many 3x3 steps before pasting (G2SF: 1; 0 = none).
        inside_share: a part more than this share inside the target's foreground is pasted in place, any
            other part is moved onto the foreground (G2SF: 2/3).
        min_offset, max_offset: metres; each pasted part is raised or lowered (random sign) by a step drawn
            uniformly in [min, max] (G2SF: 0.2 mm to 2 mm).
        max_attempts: draws (donor, noise, placement) per scan before giving up with a ValueError.
    """

    threshold: float = 0.4
    min_scale_exponent: int = 0
    max_scale_exponent: int = 4
    max_rotation_deg: float = 90.0
    reference_size: int = 512
    min_component: int = 100
    max_component: int = 1600
    min_total: int = 300
    dilation: int = 1
    inside_share: float = 2.0 / 3.0
    min_offset: float = 2e-4
    max_offset: float = 2e-3
    max_attempts: int = 50

    def __post_init__(self) -> None:
        check_float(self.threshold, "threshold", -1.0, 1.0, exclusive_minimum=True, exclusive_maximum=True)
        check_int(self.min_scale_exponent, "min_scale_exponent", minimum=0, maximum=10)
        check_int(self.max_scale_exponent, "max_scale_exponent", minimum=self.min_scale_exponent, maximum=10)
        check_float(self.max_rotation_deg, "max_rotation_deg", 0.0, 180.0)
        check_int(self.reference_size, "reference_size", minimum=1)
        check_int(self.min_component, "min_component", minimum=1)
        check_int(self.max_component, "max_component", minimum=self.min_component)
        check_int(self.min_total, "min_total", minimum=1)
        check_int(self.dilation, "dilation", minimum=0)
        check_float(self.inside_share, "inside_share", 0.0, 1.0, exclusive_maximum=True)
        check_float(self.min_offset, "min_offset", 0.0, 0.1)
        check_float(self.max_offset, "max_offset", self.min_offset, 0.1)
        check_int(self.max_attempts, "max_attempts", minimum=1)

    def size_limits(self, shape: tuple[int, int]) -> tuple[float, float, float]:
        """(min_component, max_component, min_total) in pixels of an (H, W) grid, scaled by area."""
        scale = shape[0] * shape[1] / self.reference_size ** 2
        return self.min_component * scale, self.max_component * scale, self.min_total * scale


class CutPasteSynthesizer:
    """Makes Cut-Paste anomalies of cleaned organized scans from a fixed pool of donor scans.

    Args:
        donors: cleaned organized scans (background zeroed: every valid point is the object) as Scans or
            (H, W, 3) float arrays in metres, of the target's category or others. A donor of another shape is
            resized (corner-aligned nearest, like `preprocess.resize_organized`) to the target's grid; its
            aspect ratio must be the target's.
        config: a CutPasteConfig (default: G2SF's values).
        seed: non-negative int; with `index` it fixes every random draw of `synthesize`.
    Raises:
        TypeError/ValueError naming the donor for a donor that is not an organized scan.
    """

    def __init__(self, donors: Sequence[Scan | np.ndarray], config: CutPasteConfig | None = None, seed: int = 0):
        self.config = CutPasteConfig() if config is None else config
        if not isinstance(self.config, CutPasteConfig):
            raise TypeError(f"config must be a CutPasteConfig, got {type(self.config).__name__}")
        self.seed = check_int(seed, "seed", minimum=0)
        if isinstance(donors, (Scan, np.ndarray)):
            raise TypeError("donors must be a sequence of scans or (H, W, 3) arrays, not a single one")
        self._donors = [_donor_points(donor, i) for i, donor in enumerate(donors)]
        if not self._donors:
            raise ValueError("donors is empty: Cut-Paste needs at least one other good scan to cut from")
        self._donor_valid = [_valid(points) for points in self._donors]
        self._fingerprints = [_fingerprint(points) for points in self._donors]

    def synthesize(self, target: Scan, index: int) -> Scan:
        """One anomalous version of `target`.

        The draws depend only on (seed, index), never on earlier calls, so any call order and any number
        of threads give the same scans. A donor whose points equal the target's is never drawn.

        Args:
            target: a cleaned organized scan (H, W, 3) without anomalies (gt absent or all False).
            index: non-negative int, the sample number.
        Returns:
            a Scan of the target's shape: points float32, changed only inside the pasted parts; gt (H, W)
            bool, the pasted parts where the output has a point (donor holes pasted there become missing
            points and are not in gt); label 1, defect "cutpaste", name "<target name>#cutpaste<index>";
            no rgb or normals (the colour image would not show the defect, the normals are stale).
        Raises:
            TypeError/ValueError naming the target for an unorganized or anomalous target, a donor that cannot
            be resized to its grid, or when `config.max_attempts` draws gave no defect (a foreground too small
            for the size limits).
        """
        if not isinstance(target, Scan):
            raise TypeError(f"target must be a Scan, got {type(target).__name__}")
        index = check_int(index, "index", minimum=0)
        if not target.is_organized:
            raise ValueError(f"scan {target.name!r}: Cut-Paste needs an organized (H, W, 3) scan, "
                             f"got {len(target.points)} unorganized points")
        if target.gt is not None and target.gt.any():
            raise ValueError(f"scan {target.name!r} already has {int(target.gt.sum())} anomalous pixel(s); "
                             "Cut-Paste targets are good scans")
        shape = target.points.shape[:2]
        for number, points in enumerate(self._donors):
            _check_resizable(points.shape[:2], shape, number, target.name)
        own = _fingerprint(target.points)
        candidates = [i for i, print_ in enumerate(self._fingerprints) if print_ != own]
        if not candidates:
            raise ValueError(f"scan {target.name!r}: every donor is this scan itself; give other good scans")

        rng = np.random.default_rng([self.seed, index])
        limits = self.config.size_limits(shape)
        foreground = _valid(target.points)
        for _ in range(self.config.max_attempts):
            chosen = candidates[rng.integers(len(candidates))]
            mask = self._perlin_mask(_on_grid(self._donor_valid[chosen], shape), limits, rng)
            if mask is None:
                continue
            donor = _on_grid(self._donors[chosen], shape)
            points, pasted = self._paste(target.points, foreground, donor, mask, limits[0], rng)
            gt = pasted & _valid(points)
            if gt.sum() >= limits[0] and np.any(points[gt] != target.points[gt]):
                return Scan(points=points, gt=gt, label=LABEL_ANOMALOUS, defect=DEFECT,
                            name=f"{target.name}#{DEFECT}{index}")
        low, high, total = limits
        raise ValueError(
            f"scan {target.name!r}: no Cut-Paste defect after {self.config.max_attempts} attempts; the parts must "
            f"be {low:.0f}-{high:.0f} px (total >= {total:.0f}) on this {shape[0]}x{shape[1]} grid, and the "
            f"target has {target.num_valid} foreground pixels")

    def _perlin_mask(self, donor_valid: np.ndarray, limits: tuple[float, float, float],
                     rng: np.random.Generator) -> np.ndarray | None:
        """Thresholded rotated Perlin noise AND the donor's foreground, parts within the size limits, dilated;
        None when the parts sum to less than the minimum total (the caller draws again)."""
        config = self.config
        exponents = rng.integers(config.min_scale_exponent, config.max_scale_exponent + 1, size=2)
        angle = np.deg2rad(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
        noise = perlin_noise(donor_valid.shape, tuple(2 ** exponents), rng, angle)
        labels, count = ndimage.label((noise > config.threshold) & donor_valid)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        keep = (sizes >= limits[0]) & (sizes <= limits[1])
        keep[0] = False  # label 0 is everything outside the mask
        if sizes[keep].sum() < limits[2]:
            return None
        mask = keep[labels]
        if config.dilation:
            mask = ndimage.binary_dilation(mask, structure=_RIM, iterations=config.dilation)
        return mask

    def _paste(self, target: np.ndarray, foreground: np.ndarray, donor: np.ndarray, mask: np.ndarray,
               min_size: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Paste every part of `mask` of at least `min_size` pixels, one after the other like G2SF (a later part
        sees the heights an earlier one left). Returns the new points and the (H, W) bool pasted pixels."""
        out = target.copy()
        pasted = np.zeros(mask.shape, dtype=bool)
        labels, _ = ndimage.label(mask)
        for number, box in enumerate(ndimage.find_objects(labels), start=1):
            rows, cols = np.nonzero(labels[box] == number)
            if len(rows) < min_size:
                continue
            rows, cols = rows + box[0].start, cols + box[1].start
            to_rows, to_cols, rows, cols = self._place(rows, cols, foreground, rng)
            _paste_relief(out, to_rows, to_cols, donor[rows, cols], self._offset(rng))
            pasted[to_rows, to_cols] = True
        return out, pasted

    def _place(self, rows: np.ndarray, cols: np.ndarray, foreground: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where one part goes on the target: in place if enough of it lies on the target's foreground, else
        its centroid moves to a random foreground pixel that leaves room for its bounding box (pixels that
        still fall off the grid are dropped). Returns target rows, cols and the donor rows, cols they take."""
        if np.count_nonzero(foreground[rows, cols]) > self.config.inside_share * len(rows):
            return rows, cols, rows, cols
        height, width = foreground.shape
        half_rows, half_cols = (rows.max() - rows.min()) // 2, (cols.max() - cols.min()) // 2
        room = np.zeros_like(foreground)
        room[half_rows:height - half_rows, half_cols:width - half_cols] = True
        spots = np.flatnonzero(room & foreground)
        if len(spots) == 0:  # nowhere it fits: G2SF pastes it in place
            return rows, cols, rows, cols
        spot_row, spot_col = divmod(int(spots[rng.integers(len(spots))]), width)
        to_rows = rows + (spot_row - int(rows.mean()))
        to_cols = cols + (spot_col - int(cols.mean()))
        inside = (to_rows >= 0) & (to_rows < height) & (to_cols >= 0) & (to_cols < width)
        return to_rows[inside], to_cols[inside], rows[inside], cols[inside]

    def _offset(self, rng: np.random.Generator) -> float:
        """The step of one part: +-U(min_offset, max_offset) metres."""
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return sign * rng.uniform(self.config.min_offset, self.config.max_offset)


def write_synthetic_anomalies(data_root: str | Path, category: str, out: str | Path, count: int, seed: int = 0,
                              overwrite: bool = False, donor_categories: Sequence[str] | None = None,
                              config: CutPasteConfig | None = None,
                              donors_per_category: int = DONORS_PER_CATEGORY) -> Path:
    """Write `count` Cut-Paste anomalies of a category's good training scans in the MVTec 3D-AD layout.

    Targets are drawn from `<data_root>/<category>` train/good, one per anomaly (seeded by (seed, number), so
    anomaly 5 is the same whatever `count`); donors are `donors_per_category` good training scans drawn from
    each of `donor_categories` (default: the category itself; G2SF pools 8 per class). Every scan is cleaned
    first (background plane removed, padded to a square, at its own resolution), so the files have the
    square grid of `preprocess_scan`; preprocess them with `remove_background=False`.

    Writes, under `out` only (the dataset is only read):
        out/<category>/test/cutpaste/xyz/NNN.tiff   (S, S, 3) float32 metres, zeros = missing
        out/<category>/test/cutpaste/gt/NNN.png     0 normal, 255 anomalous
        out/<category>/test/cutpaste/sources.json   the arguments, the donors and each anomaly's target
    Returns:
        the folder out/<category>/test/cutpaste.
    Raises:
        FileNotFoundError/ValueError for a missing dataset, category or split, a category without good
        training scans, or `out` equal to `data_root`; FileExistsError if `out` is not empty and not
        `overwrite` (then only out/<category>/test/cutpaste is replaced); TypeError/ValueError for bad counts.
    """
    count = check_int(count, "count", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    donors_per_category = check_int(donors_per_category, "donors_per_category", minimum=1)
    donor_categories = [category] if donor_categories is None else list(donor_categories)
    if not donor_categories or not all(isinstance(name, str) for name in donor_categories):
        raise ValueError(f"donor_categories must be a non-empty list of category names, got {donor_categories!r}")
    root, out = Path(data_root), Path(out)
    train, good = _good_training_scans(root, category)
    pools = [_good_training_scans(root, name) for name in donor_categories]
    if out.resolve() == root.resolve():
        raise ValueError(f"out {out} is the dataset root; write the anomalies to another folder")

    donor_rng = np.random.default_rng([seed, 0])
    donor_refs = [(dataset, int(pool[pick])) for dataset, pool in pools
                  for pick in sorted(donor_rng.choice(len(pool), size=min(donors_per_category, len(pool)),
                                                      replace=False))]
    targets = [int(good[np.random.default_rng([seed, 1, number]).integers(len(good))]) for number in range(count)]
    synthesizer = CutPasteSynthesizer([clean_scan(dataset[i]) for dataset, i in donor_refs], config, seed)

    folder = prepare_output_folder(out, [f"{category}/test/{DEFECT}"], overwrite) / category / "test" / DEFECT
    digits = max(3, len(str(count - 1)))
    by_target = defaultdict(list)  # each target is read and cleaned once, however many anomalies it gets
    for number, target in enumerate(targets):
        by_target[target].append(number)
    with tqdm(total=count, desc=f"{DEFECT} {category}", unit="scan") as progress:
        for target_index in sorted(by_target):
            target = clean_scan(train[target_index])
            for number in by_target[target_index]:
                scan = synthesizer.synthesize(target, number)
                write_xyz_tiff(folder / "xyz" / f"{number:0{digits}d}.tiff", scan.points)
                write_mask_png(folder / "gt" / f"{number:0{digits}d}.png", scan.gt)
                progress.update()
    sources = {"generator": "iaenet.data.cutpaste", "format": 1, "data_root": str(root), "category": category,
               "count": count, "seed": seed, "config": dataclasses.asdict(synthesizer.config),
               "donors": [f"{dataset.category}/{dataset.samples[i].id}" for dataset, i in donor_refs],
               "targets": {f"{number:0{digits}d}": f"{category}/{train.samples[target].id}"
                           for number, target in enumerate(targets)}}
    (folder / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
    return folder


def _good_training_scans(root: Path, category: str):
    """The train split of `category` and the indices of its good scans; ValueError if it has none."""
    dataset = open_dataset(root, category, "train")
    good = np.flatnonzero(np.array([label == LABEL_GOOD for label in dataset.labels], dtype=bool))
    if len(good) == 0:
        raise ValueError(f"{root / category}: no good training scan to synthesize anomalies from")
    return dataset, good


def _paste_relief(out: np.ndarray, rows: np.ndarray, cols: np.ndarray, source: np.ndarray, offset: float) -> None:
    """Give the target pixels (rows, cols) of `out` the relief of the donor points `source` (same order).

    z = z_donor - mean(z_donor) + mean(z_target) + offset, the means over the valid points of the part; x, y
    stay the target's. A donor hole makes a target hole; a target hole stays one (it has no x, y to keep).
    A part with no valid target or donor point is left alone.
    """
    region = out[rows, cols]
    target_valid = _valid(region)
    source_valid = _valid(source)
    if not (target_valid.any() and source_valid.any()):
        return
    depth = source[:, 2].astype(np.float64)
    shift = region[target_valid, 2].astype(np.float64).mean() - depth[source_valid].mean() + offset
    both = target_valid & source_valid
    region[both, 2] = depth[both] + shift
    region[~source_valid] = 0.0
    out[rows, cols] = region


def _donor_points(donor: object, number: int) -> np.ndarray:
    """A donor's (H, W, 3) float32 grid, validated like a Scan."""
    if isinstance(donor, np.ndarray):
        donor = Scan(points=donor, name=f"donor {number}")
    if not isinstance(donor, Scan):
        raise TypeError(f"donor {number}: expected a Scan or an (H, W, 3) array, got {type(donor).__name__}")
    if not donor.is_organized:
        raise ValueError(f"donor {number} ({donor.name!r}): Cut-Paste needs organized (H, W, 3) scans, "
                         f"got {len(donor.points)} unorganized points")
    return donor.points


def _check_resizable(source: tuple[int, int], target: tuple[int, int], number: int, name: str) -> None:
    if source[0] * target[1] != source[1] * target[0]:
        raise ValueError(f"scan {name!r}: donor {number} is {source[0]}x{source[1]} and cannot be resized to the "
                         f"target's {target[0]}x{target[1]} grid (other aspect ratio); pad both to squares "
                         "(preprocess.pad_to_square)")


def _on_grid(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An (h, w, ...) array resized to `shape` with the corner-aligned nearest indices of the preprocessing."""
    if grid.shape[:2] == shape:
        return grid
    rows, cols = nearest_indices(grid.shape[0], shape[0]), nearest_indices(grid.shape[1], shape[1])
    return grid[rows[:, None], cols[None, :]]


def _valid(points: np.ndarray) -> np.ndarray:
    """(...) bool: all three coordinates non-zero (Scan.valid_mask for any (..., 3) array; three comparisons
    are several times faster than np.all over a last axis of length 3)."""
    return (points[..., 0] != 0) & (points[..., 1] != 0) & (points[..., 2] != 0)


def _fingerprint(points: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    """Shape and content hash: tells whether a donor is the target itself without keeping copies to compare."""
    return points.shape, hashlib.blake2b(np.ascontiguousarray(points).tobytes(), digest_size=16).digest()

