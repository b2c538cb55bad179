"""Fixtures for the hostile-input suite: real images and a rejection counter."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import flatten_on_skin
from tests.security import hostile

REJECTIONS_METRIC = "healthguard_upload_rejections_total"


def rejections_total() -> float | None:
    """Sum of the upload-rejection counter over all reasons in this process, or None
    while the metric is not registered."""
    from prometheus_client import REGISTRY

    total: float | None = None
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == REJECTIONS_METRIC:
                total = (total or 0.0) + sample.value
    return total


@pytest.fixture
def rejection_counter() -> Callable[[], float]:
    """Returns a function giving how many rejections were counted since the test began."""
    import ops.metrics  # noqa: F401  (registers the counters)

    before = rejections_total() or 0.0
    return lambda: (rejections_total() or 0.0) - before


@pytest.fixture
def real_jpeg(real_crop_bytes: bytes) -> bytes:
    return hostile.encode(".jpg", flatten_on_skin(real_crop_bytes), 1, 92)
