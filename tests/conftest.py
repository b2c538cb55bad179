"""Shared fixtures: users for each role, API clients, and real images."""

from __future__ import annotations

import csv
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.optional import all_required, require_tool, unavailable

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASET_DIR = Path(
    os.environ.get("HEALTHGUARD_DATASET_DIR", REPO_ROOT.parent / "shared" / "data" / "anemia")
)


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: str
    subject_id: str

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


def dataset_available() -> bool:
    return (DATASET_DIR / "labels.csv").is_file()


def conjunctiva_images() -> list[LabelledImage]:
    """The CP-AnemiC crops (RGBA PNG; alpha = inner-eyelid mask), duplicate-free rows."""
    if not dataset_available():
        return []
    with (DATASET_DIR / "labels.csv").open(newline="") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["image_kind"] == "palpebral_crop" and r["qc_flag"] == "ok"
        ]
    return [LabelledImage(DATASET_DIR / r["file"], r["label"], r["subject_id"]) for r in rows]


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires_tool"):
        for name in mark.args:
            require_tool(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    # With HEALTHGUARD_REQUIRE_ALL_TOOLS=1 nothing may skip, whatever called pytest.skip.
    outcome = yield
    report = outcome.get_result()
    if all_required() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but HEALTHGUARD_REQUIRE_ALL_TOOLS=1: {report.longrepr}"


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # Likewise a module that skips itself at import (pytest.skip(allow_module_level=True)).
    if all_required() and report.skipped:
        report.outcome = "failed"


@pytest.fixture(autouse=True)
def _plain_static_storage(settings) -> None:
    # Tests render templates without running collectstatic first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Throttle counters live in the cache; each test starts with none.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def real_crop() -> LabelledImage:
    images = conjunctiva_images()
    if not images:
        unavailable(f"dataset not found at {DATASET_DIR} (set HEALTHGUARD_DATASET_DIR)")
    return images[0]


@pytest.fixture
def real_crop_bytes(real_crop: LabelledImage) -> bytes:
    return real_crop.read_bytes()


def flatten_on_skin(png_bytes: bytes, *, scale: float = 1.0) -> np.ndarray:
    """A real RGBA crop composited onto a skin-like background (BGR, opaque)."""
    rgba = cv2.imdecode(np.frombuffer(png_bytes, np.uint8), cv2.IMREAD_UNCHANGED)
    assert rgba is not None and rgba.shape[2] == 4
    h, w = rgba.shape[:2]
    pad = max(h, w) // 2
    canvas = np.empty((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    canvas[:] = (140, 170, 215)  # BGR skin tone
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    region = canvas[pad : pad + h, pad : pad + w].astype(np.float32)
    canvas[pad : pad + h, pad : pad + w] = (
        rgba[:, :, :3].astype(np.float32) * alpha + region * (1 - alpha)
    ).astype(np.uint8)
    if scale != 1.0:
        return np.asarray(
            cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        )
    return canvas


@pytest.fixture
def real_jpeg_bytes(real_crop_bytes: bytes) -> bytes:
    ok, buf = cv2.imencode(".jpg", flatten_on_skin(real_crop_bytes), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def patient(db):
    return UserFactory(username="patient")


@pytest.fixture
def other_patient(db):
    return UserFactory(username="other-patient")


@pytest.fixture
def staff(db):
    user = User.objects.create_user(username="clinician", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_prediction"))
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user=user)
    return client
