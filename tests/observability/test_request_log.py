"""One JSON log line per request, with the keys operators search by, and nothing
personal in it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ops.request_log import level_for
from tests.observability.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db

REQUIRED = {
    "timestamp",
    "level",
    "name",
    "message",
    "method",
    "route",
    "status",
    "duration_ms",
    "request_id",
    "service",
}


def upload(data: bytes):
    return SimpleUploadedFile("eyelid.png", data, content_type="image/png")


def test_each_request_logs_one_json_line_with_the_required_keys(client, json_logs):
    response = client.get("/health", HTTP_X_REQUEST_ID="probe-request-0001")

    lines = json_logs.requests()
    assert len(lines) == 1
    line = lines[0]
    assert set(line) >= REQUIRED
    assert line["method"] == "GET"
    assert line["route"] == "health"
    assert line["status"] == response.status_code == 200
    assert isinstance(line["duration_ms"], float) and 0 < line["duration_ms"] < 10_000
    assert line["request_id"] == "probe-request-0001"
    assert line["timestamp"].endswith("+00:00")


def test_a_prediction_line_has_its_risk_level_and_model_version(
    api_client, patient, json_logs, real_crop_bytes
):
    api_client.force_authenticate(user=patient)
    body = api_client.post(
        "/api/predict", {"image": upload(real_crop_bytes)}, format="multipart"
    ).json()

    [line] = json_logs.requests()
    assert line["route"] == "predict" and line["status"] == 201
    assert line["risk_level"] == body["risk_level"]
    assert line["model_version"] == body["model_version"]
    assert line["request_id"] == body["request_id"]


def test_no_log_line_carries_image_bytes_or_who_the_user_is(
    api_client, patient, json_logs, real_crop_bytes
):
    api_client.force_authenticate(user=patient)
    api_client.post("/api/predict", {"image": upload(real_crop_bytes)}, format="multipart")

    raw = json_logs.stream.getvalue()
    assert raw, "nothing was logged"
    assert len(raw) < 8_000  # a few short lines, not an image
    assert "PNG" not in raw and "IHDR" not in raw
    assert patient.username not in raw and patient.email not in raw
    for line in json_logs.lines():
        assert not {"user", "user_id", "owner", "owner_id", "username", "email"} & set(line)
        assert "image" not in line and "path" not in line


def test_an_other_request_has_no_prediction_fields(client, json_logs):
    client.get("/health/live")
    [line] = json_logs.requests()
    assert "risk_level" not in line and "model_version" not in line


def test_a_refused_upload_is_logged_as_a_warning_with_its_route(api_client, json_logs):
    api_client.post("/api/predict", {"image": upload(b"GIF89a" + b"\x00" * 32)}, format="multipart")
    [line] = json_logs.requests()
    assert (line["level"], line["route"], line["status"]) == ("WARNING", "predict", 415)


def test_the_raw_path_of_an_unmatched_request_is_not_logged(client, json_logs):
    client.get("/api/results/pred_secretcapability123/../../etc/passwd")
    [line] = json_logs.requests()
    assert line["route"] == "unmatched"
    assert "secretcapability" not in json.dumps(line)


def test_levels_follow_the_outcome_and_probes_stay_quiet():
    assert level_for(status=201, route="predict") == logging.INFO
    assert level_for(status=302, route="home") == logging.INFO
    assert level_for(status=200, route="health-ready") == logging.DEBUG
    assert level_for(status=200, route="metrics") == logging.DEBUG
    assert level_for(status=503, route="health-ready") == logging.ERROR
    assert level_for(status=404, route="unmatched") == logging.WARNING


SCRIPT = """
import django
django.setup()
from django.test import Client
Client().get("/health/live", HTTP_X_REQUEST_ID="format-switch-0001")
Client().get("/api/nothing-here", HTTP_X_REQUEST_ID="format-switch-0002")
"""


def run_with(env: dict[str, str]) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "LOG_FORMAT", "LOG_LEVEL"}}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "healthguard.settings",
            "SECRET_KEY": "x" * 50,
            "ALLOWED_HOSTS": "testserver",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if "format-switch-000" in line]


def test_log_format_json_writes_one_json_object_per_line():
    lines = run_with({"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"})
    parsed = [json.loads(line) for line in lines]
    requests = [p for p in parsed if p["name"] == "healthguard.requests"]
    assert [(p["route"], p["status"]) for p in requests] == [
        ("health-live", 200),
        ("unmatched", 404),
    ]


def test_log_format_text_writes_readable_lines_for_development():
    lines = run_with({"LOG_FORMAT": "text", "LOG_LEVEL": "DEBUG"})
    assert any("[format-switch-0001] healthguard.requests: GET health-live 200" in x for x in lines)
    assert not any(line.startswith("{") for line in lines)


def test_debug_defaults_to_text_and_production_to_json():
    assert run_with({"DEBUG": "1", "LOG_LEVEL": "DEBUG"})[0].startswith("20")
    assert run_with({"LOG_LEVEL": "DEBUG"})[0].startswith("{")


def test_log_level_warning_keeps_only_failed_requests():
    lines = run_with({"LOG_FORMAT": "json", "LOG_LEVEL": "WARNING"})
    requests = [json.loads(x) for x in lines if "healthguard.requests" in x]
    assert [(r["route"], r["level"]) for r in requests] == [("unmatched", "WARNING")]


def test_a_client_error_is_logged_once_without_its_raw_path(client, json_logs):
    client.get("/api/results/pred_capability00000000", HTTP_X_REQUEST_ID="one-line-0001")
    lines = [line for line in json_logs.lines() if line["level"] != "DEBUG"]
    assert [(line["name"], line["status"]) for line in lines] == [("healthguard.requests", 404)]
    assert "pred_capability" not in json_logs.stream.getvalue()
