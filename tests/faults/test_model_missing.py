"""The model file missing or corrupt at start: the server runs, is never ready, says why.

gunicorn starts as production does with HEALTHGUARD_MODEL_DIR pointing at a broken copy
of the model folder. Liveness stays 200 (restarting would not help), readiness stays
503 with the reason, predictions are refused with 503 model_unavailable, and the log
says what is wrong with which file.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.live import (
    LiveServer,
    database_drop,
    database_url_for,
    live_db_name,
    migrate,
    server_env,
)
from devtools.multipart import image_upload
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.live_server_process

MODEL = REPO_ROOT / "model" / "conjunctiva"


def missing(folder: Path) -> None:
    (folder / "model.tflite").unlink()


def garbage(folder: Path) -> None:
    (folder / "model.tflite").write_bytes(b"\x00" * 4 + b"TFL3" + b"\xde\xad\xbe\xef" * 4096)


def truncated(folder: Path) -> None:
    blob = (folder / "model.tflite").read_bytes()
    (folder / "model.tflite").write_bytes(blob[: len(blob) // 2])


@pytest.fixture(scope="module")
def database_url():
    url = database_url_for(live_db_name("model"))
    migrate(server_env(url))
    yield url
    database_drop(url)


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (missing, "has card.json but no model.tflite"),
        (garbage, "does not match the sha256 in its card.json"),
        (truncated, "does not match the sha256 in its card.json"),
    ],
    ids=["missing", "corrupt", "truncated"],
)
def test_a_broken_model_keeps_the_server_out_of_rotation(
    tmp_path: Path,
    database_url: str,
    breakage: Callable[[Path], None],
    reason: str,
    real_crop_bytes: bytes,
):
    # The model ships with the repository: its absence is a failure, not a reason to skip.
    assert (MODEL / "model.tflite").is_file(), "model/conjunctiva/model.tflite is missing"
    broken = tmp_path / "model" / "conjunctiva"
    shutil.copytree(MODEL, broken)
    breakage(broken)
    server = LiveServer(
        env=server_env(database_url, HEALTHGUARD_MODEL_DIR=str(tmp_path / "model")), workers=1
    )
    try:
        server.start(wait_ready=False)
        assert server.request("GET", "/health/live").status == 200
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # it stays not ready
            ready = server.request("GET", "/health/ready")
            assert ready.status == 503
            time.sleep(0.5)
        body = ready.json()
        assert body["checks"] == {"database": True, "model": False}
        assert reason in body["model_error"]

        body, content_type = image_upload(real_crop_bytes, "a.png")
        predict = server.request(
            "POST", "/api/predict", body=body, headers={"Content-Type": content_type}
        )
        assert predict.status == 503, predict.body[:300]
        assert predict.json()["error"]["code"] == "model_unavailable"
        log = server.logs()
        assert "model not loaded, the service will not be ready" in log
        assert reason in log
        assert "model.tflite" in log
    finally:
        server.stop()
