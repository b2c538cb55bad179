"""The request id round trip: header in, header out, body, database, every log line."""

from __future__ import annotations

import re

import pytest
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile

from predictions.models import Prediction

pytestmark = pytest.mark.django_db


def upload(data: bytes):
    return SimpleUploadedFile("eyelid.png", data, content_type="image/png")


def test_a_sane_request_id_goes_round_trip(api_client, json_logs, real_crop_bytes):
    request_id = "lb-2f9c1e7a-0001"
    response = api_client.post(
        "/api/predict",
        {"image": upload(real_crop_bytes)},
        format="multipart",
        HTTP_X_REQUEST_ID=request_id,
    )

    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == request_id
    assert response.json()["request_id"] == request_id
    prediction = Prediction.objects.get(message_id=response.json()["message_id"])
    assert prediction.request_id == request_id
    # The audit trail's correlation id is the same id.
    entries = LogEntry.objects.get_for_object(prediction)
    assert entries.exists() and {e.cid for e in entries} == {request_id}
    lines = json_logs.lines()
    names = {line["name"] for line in lines}
    assert {"healthguard.requests", "predictions.services"} <= names
    assert all(line["request_id"] == request_id for line in lines), lines


@pytest.mark.parametrize(
    "bad",
    ["short", "has spaces in it", "x" * 200, "inject\nnewline-0001", "<script>alert(1)</script>"],
)
def test_an_insane_request_id_is_replaced_everywhere(client, json_logs, bad):
    response = client.get("/api/nothing-here", HTTP_X_REQUEST_ID=bad)
    generated = response["X-Request-ID"]
    assert generated != bad and re.fullmatch(r"[0-9a-f]{32}", generated)
    assert response.json()["error"]["code"] == "not_found"
    lines = json_logs.lines()
    assert lines and all(line["request_id"] == generated for line in lines)


def test_each_request_without_an_id_gets_its_own(client, json_logs):
    first = client.get("/health/live")["X-Request-ID"]
    second = client.get("/health/live")["X-Request-ID"]
    assert first != second
    assert [line["request_id"] for line in json_logs.requests()] == [first, second]


def test_an_error_body_is_logged_under_the_callers_request_id(api_client, json_logs):
    response = api_client.get("/api/results", HTTP_X_REQUEST_ID="caller-id-00000042")
    assert response.status_code in (401, 403)
    assert response["X-Request-ID"] == "caller-id-00000042"
    assert {line["request_id"] for line in json_logs.lines()} == {"caller-id-00000042"}
