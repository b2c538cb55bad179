"""POST /api/predict with an Idempotency-Key (predictions/idempotency.py), real model.

Runs on SQLite and on PostgreSQL (DATABASE_URL); the concurrent cases, which need a
database that lets two connections write at once, are in test_idempotency_concurrent.py.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

import cv2
import numpy as np
import pytest
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from ops.metrics import PREDICTIONS
from predictions import idempotency
from predictions.models import IdempotencyKey, Prediction
from tests.conftest import client_for

URL = "/api/predict"
pytestmark = pytest.mark.django_db


def post(client: APIClient, image: bytes, key: str | None, **extra: Any):
    headers: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    upload = SimpleUploadedFile("eyelid.png", image, content_type="image/png")
    return client.post(URL, {"image": upload}, format="multipart", **headers, **extra)


def predictions_counted() -> float:
    return sum(
        sample.value
        for metric in PREDICTIONS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.fixture
def other_crop_bytes(real_crop_bytes: bytes) -> bytes:
    """The same eyelid, re-encoded one pixel smaller: another upload (another SHA-256)."""
    rgba = cv2.imdecode(np.frombuffer(real_crop_bytes, np.uint8), cv2.IMREAD_UNCHANGED)
    ok, buf = cv2.imencode(".png", rgba[:-1, :-1])
    assert ok and buf.tobytes() != real_crop_bytes
    return buf.tobytes()


def test_it_replays_the_original_result_for_the_same_key_and_upload(real_crop_bytes):
    client = APIClient()
    key = str(uuid.uuid4())
    first = post(client, real_crop_bytes, key)
    assert first.status_code == 201, first.content
    assert idempotency.REPLAYED_HEADER not in first
    entries, counted = LogEntry.objects.count(), predictions_counted()

    again = post(client, real_crop_bytes, key)

    assert again.status_code == 200, again.content
    assert again[idempotency.REPLAYED_HEADER] == "true"
    assert again.json()["message_id"] == first.json()["message_id"]
    assert again.json()["risk_score"] == first.json()["risk_score"]
    assert Prediction.objects.count() == 1
    assert LogEntry.objects.count() == entries  # no second audit entry
    assert predictions_counted() == counted  # no second metric count
    stored = IdempotencyKey.objects.get().prediction
    assert stored is not None and stored.message_id == first.json()["message_id"]


def test_without_a_key_the_same_upload_is_stored_twice(real_crop_bytes):
    client = APIClient()
    ids = {post(client, real_crop_bytes, None).json()["message_id"] for _ in range(2)}
    assert len(ids) == 2 and Prediction.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


def test_it_refuses_the_same_key_for_a_different_upload(real_crop_bytes, other_crop_bytes):
    client = APIClient()
    key = str(uuid.uuid4())
    assert post(client, real_crop_bytes, key).status_code == 201
    entries = LogEntry.objects.count()

    response = post(client, other_crop_bytes, key)

    assert_error(response, 422, "idempotency_key_reused")
    assert Prediction.objects.count() == 1 and LogEntry.objects.count() == entries


def test_the_upload_fingerprint_covers_the_image_and_the_site(real_crop_bytes):
    same = idempotency.upload_fingerprint(image_bytes=real_crop_bytes, site="conjunctiva")
    assert same == idempotency.upload_fingerprint(image_bytes=real_crop_bytes, site="conjunctiva")
    assert same != idempotency.upload_fingerprint(image_bytes=real_crop_bytes, site="fingernail")
    longer = real_crop_bytes + b"x"
    assert same != idempotency.upload_fingerprint(image_bytes=longer, site="conjunctiva")


def test_cookie_less_clients_are_scoped_by_their_address(real_crop_bytes):
    key = str(uuid.uuid4())
    first = post(APIClient(), real_crop_bytes, key, REMOTE_ADDR="10.0.0.1")
    same_address = post(APIClient(), real_crop_bytes, key, REMOTE_ADDR="10.0.0.1")
    other_address = post(APIClient(), real_crop_bytes, key, REMOTE_ADDR="10.0.0.2")

    assert (first.status_code, same_address.status_code, other_address.status_code) == (
        201,
        200,
        201,
    )
    assert same_address.json()["message_id"] == first.json()["message_id"]
    assert other_address.json()["message_id"] != first.json()["message_id"]
    assert Prediction.objects.count() == 2
    scopes = set(IdempotencyKey.objects.values_list("scope", flat=True))
    assert len(scopes) == 2 and all(s.startswith("addr:") for s in scopes)
    assert not any("10.0.0" in s for s in scopes)  # a digest, not the address


def test_anonymous_browsers_are_scoped_by_their_cookies(real_crop_bytes):
    browser = APIClient()
    browser.get("/")  # our page: a CSRF cookie, so results are remembered in a session
    first = post(browser, real_crop_bytes, "photo-1")
    assert first.status_code == 201 and "sessionid" in browser.cookies
    # The same browser, now with a session too, from another address: still its scope
    # (the first upload's session did not change it), so the resend is a replay.
    resent = post(browser, real_crop_bytes, "photo-1", REMOTE_ADDR="10.8.8.8")
    # Another browser on the same address has its own keys.
    other_browser = APIClient()
    other_browser.get("/")
    neighbour = post(other_browser, real_crop_bytes, "photo-1")
    # A client that kept only the session cookie is known by it.
    session_only = APIClient()
    session_only.cookies["sessionid"] = browser.cookies["sessionid"].value
    second = post(session_only, real_crop_bytes, "photo-2")
    second_again = post(session_only, real_crop_bytes, "photo-2", REMOTE_ADDR="10.7.7.7")

    assert (resent.status_code, neighbour.status_code) == (200, 201)
    assert resent.json()["message_id"] == first.json()["message_id"]
    assert neighbour.json()["message_id"] != first.json()["message_id"]
    assert (second.status_code, second_again.status_code) == (201, 200)
    # The replay is remembered once in the session, and the result opens.
    assert browser.session["prediction_ids"].count(first.json()["message_id"]) == 1
    assert browser.get(f"/api/results/{first.json()['message_id']}").status_code == 200
    kinds = sorted(s.split(":")[0] for s in IdempotencyKey.objects.values_list("scope", flat=True))
    assert kinds == ["browser", "browser", "browser"]


def test_signed_in_users_are_scoped_by_their_account(patient, other_patient, real_crop_bytes):
    key = str(uuid.uuid4())
    first = post(client_for(patient), real_crop_bytes, key, REMOTE_ADDR="10.0.0.1")
    # The same account from another network (a phone that changed cell): a replay.
    replay = post(client_for(patient), real_crop_bytes, key, REMOTE_ADDR="10.0.0.7")
    other = post(client_for(other_patient), real_crop_bytes, key, REMOTE_ADDR="10.0.0.1")

    assert (first.status_code, replay.status_code, other.status_code) == (201, 200, 201)
    assert replay.json()["message_id"] == first.json()["message_id"]
    assert Prediction.objects.filter(owner=patient).count() == 1
    assert Prediction.objects.filter(owner=other_patient).count() == 1


def claim_row(image: bytes, key: str, *, age_seconds: float, address: str = "127.0.0.1"):
    """A claim in flight, as a request that is still working (or died) leaves it."""
    from django.test import RequestFactory

    request = RequestFactory().post(URL, REMOTE_ADDR=address)
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    at = timezone.now() - dt.timedelta(seconds=age_seconds)
    return IdempotencyKey.objects.create(
        scope=idempotency.caller_scope(request),
        key=key,
        fingerprint=idempotency.upload_fingerprint(image_bytes=image, site="conjunctiva"),
        claim_token="0" * 32,
        claimed_at=at,
        created_at=at,
    )


def test_a_key_still_in_flight_is_a_409(real_crop_bytes):
    claim_row(real_crop_bytes, "busy", age_seconds=1)

    response = post(APIClient(), real_crop_bytes, "busy")

    assert_error(response, 409, "idempotency_key_in_flight")
    assert response.json()["error"]["details"] == {"retry_after_seconds": 1}
    assert not Prediction.objects.exists()


def test_a_stale_claim_left_by_a_dead_request_is_taken_over(real_crop_bytes, settings):
    settings.IDEMPOTENCY_TAKEOVER_SECONDS = 30
    stale = claim_row(real_crop_bytes, "orphan", age_seconds=31)

    response = post(APIClient(), real_crop_bytes, "orphan")

    assert response.status_code == 201, response.content
    stale.refresh_from_db()
    assert stale.prediction is not None
    assert stale.prediction.message_id == response.json()["message_id"]
    assert stale.claim_token != "0" * 32
    assert post(APIClient(), real_crop_bytes, "orphan").status_code == 200


def test_a_request_whose_claim_was_taken_over_stores_nothing(real_crop_bytes, monkeypatch):
    # The original was slow past the takeover window and another request took its
    # claim: its own row and audit entry must roll back, or the key would have two.
    from predictions import malware

    screen = malware.upload_scan

    def taken_over_meanwhile(**kwargs):
        IdempotencyKey.objects.update(claim_token="f" * 32)
        return screen(**kwargs)

    monkeypatch.setattr(malware, "upload_scan", taken_over_meanwhile)
    entries = LogEntry.objects.count()

    response = post(APIClient(), real_crop_bytes, "slow")

    assert_error(response, 409, "idempotency_key_in_flight")
    assert not Prediction.objects.exists()
    assert LogEntry.objects.count() == entries
    assert IdempotencyKey.objects.get().claim_token == "f" * 32  # the new owner's claim


def test_a_failed_upload_frees_its_key(real_crop_bytes):
    client = APIClient()
    refused = post(client, b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "retry-me")
    assert refused.status_code == 400, refused.content
    assert not IdempotencyKey.objects.exists()

    # The same key with the photo the patient meant: analysed, not "reused".
    assert post(client, real_crop_bytes, "retry-me").status_code == 201


def test_an_expired_key_is_free_again_and_purged(real_crop_bytes, other_crop_bytes):
    client = APIClient()
    first = post(client, real_crop_bytes, "yesterday")
    assert first.status_code == 201
    day_ago = timezone.now() - idempotency.KEY_TTL - dt.timedelta(minutes=1)
    IdempotencyKey.objects.update(created_at=day_ago, claimed_at=day_ago)

    # Past 24 h the key is forgotten: another upload with it is a new prediction.
    again = post(client, other_crop_bytes, "yesterday")
    assert again.status_code == 201, again.content
    assert again.json()["message_id"] != first.json()["message_id"]

    post(client, real_crop_bytes, "fresh")
    IdempotencyKey.objects.filter(key="yesterday").update(created_at=day_ago)
    out = io.StringIO()
    call_command("purge_predictions", "--older-than", "30", stdout=out)
    assert "deleted 1 idempotency keys older than 24 hours" in out.getvalue()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]
    assert Prediction.objects.count() == 3  # keys go, the results stay


@pytest.mark.parametrize(
    "key",
    ["", "   ", "a" * 256, "two words", "é-accent", 'quote"inside', "semi;colon", "\\x"],
)
def test_it_refuses_an_invalid_key(real_crop_bytes, key):
    response = post(APIClient(), real_crop_bytes, key)

    assert_error(response, 400, "idempotency_key_invalid")
    assert not Prediction.objects.exists() and not IdempotencyKey.objects.exists()


def test_it_accepts_the_drafts_quoted_form_as_the_same_key(real_crop_bytes):
    client = APIClient()
    key = str(uuid.uuid4())
    assert post(client, real_crop_bytes, f'"{key}"').status_code == 201
    assert post(client, real_crop_bytes, key).status_code == 200
    assert post(client, real_crop_bytes, "a" * 255).status_code == 201
    assert IdempotencyKey.objects.filter(key=key).exists()


def test_the_form_without_javascript_stores_one_result_for_a_resent_page(
    client, real_crop_bytes
):
    page = client.get("/").content.decode()
    assert 'name="idempotency_key"' in page
    key = page.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    assert key != client.get("/").content.decode().split('name="idempotency_key" value="')[1][:36]

    def send():
        upload = SimpleUploadedFile("eyelid.png", real_crop_bytes, content_type="image/png")
        return client.post("/analyse", {"image": upload, "idempotency_key": key})

    first, resent = send(), send()

    assert first.status_code == resent.status_code == 302
    assert first["Location"] == resent["Location"]
    assert Prediction.objects.count() == 1
    assert client.get(first["Location"]).status_code == 200


def test_the_form_refuses_a_stale_page_key_for_another_photo(
    client, real_crop_bytes, other_crop_bytes
):
    client.get("/")  # the page, and its CSRF cookie, as a browser has them
    for image, expected in ((real_crop_bytes, 302), (other_crop_bytes, 400)):
        upload = SimpleUploadedFile("eyelid.png", image, content_type="image/png")
        response = client.post("/analyse", {"image": upload, "idempotency_key": "page-1"})
        assert response.status_code == expected
    assert "did not arrive correctly" in response.content.decode()
    assert Prediction.objects.count() == 1


def test_the_schema_documents_the_header_and_its_answers(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/predict"]["post"]
    header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and not header.get("required", False)
    assert {"200", "201", "409", "422"} <= set(operation["responses"])
    assert "idempotency_key_reused" in operation["responses"]["422"]["description"]
