"""What a dataset entry is before it is loaded, and what every dataset layout provides."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .scan import Scan


@dataclass(frozen=True)
class SampleRef:
    """One sample of a dataset split, found on disk but not read yet.

    Attributes:
        id: the sample's id inside its category, e.g. "test/hole/000".
        label: 0 good, 1 anomalous, None unknown (e.g. an unlabelled test set).
        defect: defect type ("good" for good samples), or "" when the layout only tells it on loading.
        files: role -> path, e.g. {"xyz": ..., "rgb": ..., "gt": ...}; the layout's loader knows the roles.
    """

    id: str
    label: int | None
    defect: str
    files: dict[str, Path] = field(default_factory=dict)


class Layout(Protocol):
    """A dataset layout: how to recognise a category folder, list its samples and load one."""

    name: str
    splits: tuple[str, ...]  # split names as users give them, e.g. ("train", "validation", "test")
    aliases: dict[str, str]  # other accepted split names -> one of `splits`, e.g. {"val": "validation"}

    def is_category(self, folder: Path) -> bool:
        """Does `folder` hold one category of this layout?"""

    def available_splits(self, folder: Path) -> list[str]:
        """The splits present in the category folder."""

    def list_samples(self, folder: Path, split: str) -> list[SampleRef]:
        """All samples of one split, in a stable sorted order."""

    def load(self, sample: SampleRef) -> Scan:
        """Read one sample as a Scan (label and defect filled in)."""
