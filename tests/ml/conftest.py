"""Fixtures for the ml/ tests: no Django, no mocked model."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.runtime import ModelRegistry, get_registry
from ml.training.data import resolve_dataset_dir
from tests.optional import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO_ROOT / "model"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return MODEL_DIR


@pytest.fixture(scope="session")
def registry() -> ModelRegistry:
    return get_registry(MODEL_DIR)


@pytest.fixture(scope="session")
def dataset_dir() -> Path:
    """The labelled dataset, or a skip saying why the test cannot run."""
    path = resolve_dataset_dir(None)
    if path is None or not (path / "labels.csv").is_file():
        unavailable(
            "dataset directory absent: set HEALTHGUARD_DATASET_DIR or place it at "
            "../shared/data/anemia relative to the repository root"
        )
    return path
