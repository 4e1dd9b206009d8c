"""Datasets on disk: find the layout, iterate a category's split lazily, describe a folder.

A dataset root holds one folder per category; each category is in one of the known layouts
(MVTec 3D-AD, Eyecandies, Real3D-AD), detected from the files it holds.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .catalog import Layout, SampleRef
from .eyecandies import EyecandiesLayout
from .mvtec import MVTecLayout
from .real3d import Real3DLayout
from .scan import Scan

LAYOUTS: tuple[Layout, ...] = (MVTecLayout(), EyecandiesLayout(), Real3DLayout())
LAYOUT_TITLES = {"mvtec3d": "MVTec 3D-AD", "eyecandies": "Eyecandies", "real3d": "Real3D-AD"}
_EXPECTED = ("MVTec 3D-AD (<category>/train/good/xyz/*.tiff), Eyecandies "
             "(<category>/train/data/*_depth.png) or Real3D-AD (<category>/train/*.pcd)")


class ScanDataset(Sequence[Scan]):
    """One split of one category. Listing reads no scan; indexing reads one.

    Attributes:
        root, category, split: where it comes from; layout: the layout's name (e.g. "mvtec3d").
        samples: the SampleRefs in order (id, label, defect type, files).
    """

    def __init__(self, layout: Layout, root: Path, category: str, split: str, samples: list[SampleRef]):
        self._layout = layout
        self.layout = layout.name
        self.root, self.category, self.split = root, category, split
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Scan:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"dataset index must be an integer, got {type(index).__name__}")
        return self._layout.load(self.samples[index])

    def __iter__(self) -> Iterator[Scan]:
        return (self._layout.load(sample) for sample in self.samples)

    @property
    def labels(self) -> list[int | None]:
        """Per-sample labels (0 good, 1 anomalous, None unknown), without reading any scan."""
        return [sample.label for sample in self.samples]

    def defect_counts(self) -> dict[str, int]:
        """Number of samples per defect type, sorted by name."""
        return dict(sorted(Counter(sample.defect or "unknown" for sample in self.samples).items()))

    def __repr__(self) -> str:
        return (f"ScanDataset({self.layout}, {str(self.root)!r}, category={self.category!r}, "
                f"split={self.split!r}, {len(self)} samples)")


def open_dataset(root: str | Path, category: str, split: str) -> ScanDataset:
    """The samples of `split` of `category` under `root`, in a stable order.

    Split names: "train", "validation", "test" (Eyecandies also "test_private"; "val" and
    Eyecandies' "test_public" are accepted too).
    Raises:
        FileNotFoundError if `root` or the category is missing; ValueError for an unknown layout
        or a split the category does not have.
    """
    root = _existing_folder(root)
    folder = root / category
    if not folder.is_dir():
        raise FileNotFoundError(f"{root}: no category {category!r}; categories: "
                                f"{', '.join(list_categories(root))}")
    layout = detect_layout(folder)
    split = layout.aliases.get(split, split)
    available = layout.available_splits(folder)
    if split not in available:
        raise ValueError(f"{folder}: no split {split!r} in this {LAYOUT_TITLES[layout.name]} category; "
                         f"splits: {', '.join(available) or 'none'}")
    return ScanDataset(layout, root, category, split, layout.list_samples(folder, split))


def list_categories(root: str | Path) -> list[str]:
    """Sorted names of the category folders under `root` that are in a known layout.

    Raises:
        FileNotFoundError if `root` is missing; ValueError if it holds no category of a known layout.
    """
    root = _existing_folder(root)
    categories = sorted(child.name for child in root.iterdir()
                        if child.is_dir() and _layout_of(child) is not None)
    if not categories:
        hint = (f"; {root} itself looks like one category, pass its parent {root.parent}"
                if _layout_of(root) is not None else "")
        raise ValueError(f"{root}: no dataset category found: expected folders in the layout of {_EXPECTED}{hint}")
    return categories


def detect_layout(folder: str | Path) -> Layout:
    """The layout of one category folder. Raises ValueError naming the folder if none matches."""
    folder = _existing_folder(folder)
    layout = _layout_of(folder)
    if layout is None:
        raise ValueError(f"{folder}: unknown dataset layout; expected {_EXPECTED}")
    return layout


def describe(root: str | Path, scans_per_category: int = 3) -> dict:
    """What a dataset folder holds, for `iaenet info DATA`.

    Counts come from file names; resolution and the share of valid points from reading
    `scans_per_category` scans spread evenly over each category (cheap).
    Returns:
        {"root": str, "layout": title or "mixed", "categories": {name: {"layout": title,
         "splits": {split: {"count": int, "defects": {defect: int}}},
         "grid": [[H, W], ...] (organized) or None, "points": [min, max] (unorganized) or None,
         "valid_share": float, "scans_read": int}}}
    """
    root = _existing_folder(root)
    categories = {}
    for category in list_categories(root):
        folder = root / category
        layout = detect_layout(folder)
        datasets = [open_dataset(root, category, split) for split in layout.available_splits(folder)]
        categories[category] = {
            "layout": LAYOUT_TITLES[layout.name],
            "splits": {d.split: {"count": len(d), "defects": d.defect_counts()} for d in datasets},
            **_scan_statistics(datasets, scans_per_category),
        }
    titles = {entry["layout"] for entry in categories.values()}
    return {"root": str(root), "layout": titles.pop() if len(titles) == 1 else "mixed", "categories": categories}


def format_description(description: dict) -> str:
    """Plain-text rendering of `describe`'s result."""
    categories = description["categories"]
    lines = [f"{description['root']}: {description['layout']} layout, {len(categories)} "
             f"categor{'y' if len(categories) == 1 else 'ies'}"]
    for name, entry in categories.items():
        lines.append(f"{name} ({entry['layout']})")
        for split, counts in entry["splits"].items():
            defects = ", ".join(f"{defect} {count}" for defect, count in counts["defects"].items())
            lines.append(f"  {split:<13}{counts['count']:>6}  {defects}")
        if entry["grid"] is not None:
            shape = ", ".join(f"{width}x{height}" for height, width in entry["grid"])
        elif entry["points"] is not None:
            low, high = entry["points"]
            shape = f"{low}-{high} points" if low != high else f"{low} points"
        else:
            shape = "no scans"
        share = "" if entry["scans_read"] == 0 else \
            f", {100 * entry['valid_share']:.1f}% valid points ({entry['scans_read']} scans read)"
        lines.append(f"  {shape}{share}")
    return "\n".join(lines)


def _scan_statistics(datasets: list[ScanDataset], scans: int) -> dict:
    everything = [(dataset, index) for dataset in datasets for index in range(len(dataset))]
    picks = sorted({int(i) for i in np.linspace(0, len(everything) - 1, min(scans, len(everything)))}) \
        if everything else []
    grids, sizes, shares = set(), [], []
    for pick in picks:
        dataset, index = everything[pick]
        scan = dataset[index]
        if scan.is_organized:
            grids.add(scan.points.shape[:2])
        else:
            sizes.append(len(scan.points))
        shares.append(scan.num_valid / scan.valid_mask.size)
    return {"grid": [list(shape) for shape in sorted(grids)] or None,
            "points": [min(sizes), max(sizes)] if sizes else None,
            "valid_share": float(np.mean(shares)) if shares else 0.0,
            "scans_read": len(picks)}


def _layout_of(folder: Path) -> Layout | None:
    return next((layout for layout in LAYOUTS if layout.is_category(folder)), None)


def _existing_folder(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder")
    if not path.is_dir():
        raise NotADirectoryError(f"{path}: not a folder")
    return path
