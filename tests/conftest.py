"""Shared fixtures: where the real data lives, and seeded random generators."""
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real data not found at {path} (expected ../shared/data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def mvtec_dev() -> Path:
    """MVTec 3D-AD cable_gland dev subset (400x400 scans), read-only."""
    return _shared("mvtec3d_dev")


@pytest.fixture(scope="session")
def mvtec_tiny() -> Path:
    """11 cable_gland samples at stride 4 (100x100), read-only."""
    return _shared("fixtures/mvtec3d_tiny")


@pytest.fixture(scope="session")
def metric_reference() -> Path:
    """Reference anomaly maps and the official metric values for them."""
    return _shared("metric_reference")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` compare the CUDA paths with the CPU ones; they need a CUDA build and a device."""
    from iaenet.ops import cuda_available

    if cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA build and a CUDA device")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


def small_synthetic_dataset(root: Path, category: str, n_train: int, seed: int) -> Path:
    """A small synthetic category (96 x 96 scans; 2 good and 1 scan per defect type in test) for end-to-end tests
    of the tiny preset."""
    from iaenet.data.synthetic import generate_dataset

    return generate_dataset(root / "data", categories=[category], resolution=96, n_train=n_train, n_validation=0,
                            n_test_good=2, n_test_per_defect=1, seed=seed)
