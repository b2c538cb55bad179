"""Regressions for what scripts/fuzz_api.py (schemathesis) and the fault tests found."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django.test import Client

from devtools.multipart import image_part, multipart
from predictions.models import Prediction
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "query",
    [
        "created_after=0580-07-22T02:03:43%2B19:18",
        "created_before=2026-01-01T00:00:00-15:30",
    ],
)
def test_a_utc_offset_postgresql_cannot_store_is_a_400_not_a_503(staff, query):
    response = client_for(staff).get(f"/api/results?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "invalid"
    assert "UTC offset" in body["error"]["message"]


@pytest.mark.parametrize(
    "query", ["created_after=2026-01-01T00:00:00%2B14:00", "created_before=2026-01-01T00:00-12:00"]
)
def test_real_time_zone_offsets_are_accepted(staff, query):
    assert client_for(staff).get(f"/api/results?{query}").status_code == 200


def test_the_list_documents_its_400(client: Client):
    schema = client.get("/api/schema/?format=json").json()
    assert "400" in schema["paths"]["/api/results"]["get"]["responses"]
    assert "422" in schema["paths"]["/api/predict"]["post"]["responses"]


def test_a_session_write_that_fails_after_the_prediction_rolls_it_back(
    real_crop_bytes, monkeypatch
):
    # The anonymous session is saved by SessionMiddleware after the view has stored the
    # prediction; if the database fails there, the client must not get a 500 and the
    # row must not stay behind (the client would retry and store it twice).
    def fail(self, must_create=False):
        raise OperationalError("server closed the connection unexpectedly")

    client = Client(raise_request_exception=False)
    client.get("/")  # a patient's browser: it holds the CSRF cookie, so a session is kept
    monkeypatch.setattr(SessionStore, "save", fail)
    body, ctype = multipart([image_part(real_crop_bytes, b"a.png", b"image/png")])
    response = client.generic("POST", "/api/predict", body, content_type=ctype)

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "database_unavailable"
    assert b"Traceback" not in response.content and b"OperationalError" not in response.content
    assert Prediction.objects.count() == 0


def test_a_successful_upload_is_committed_with_its_session(client: Client, real_crop_bytes):
    client.get("/")  # a patient's browser: it holds the CSRF cookie, so a session is kept
    body, ctype = multipart([image_part(real_crop_bytes, b"a.png", b"image/png")])
    response = client.generic("POST", "/api/predict", body, content_type=ctype)
    assert response.status_code == 201
    message_id = response.json()["message_id"]
    assert Prediction.objects.filter(message_id=message_id).exists()
    assert client.get(f"/api/results/{message_id}").status_code == 200
