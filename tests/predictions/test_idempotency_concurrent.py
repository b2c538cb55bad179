"""Two requests with the same Idempotency-Key at once, on PostgreSQL (real connections).

Each thread has its own database connection, as two gunicorn workers do, so the
claim's unique constraint and its commit before the work are what is tested. SQLite
serialises writers on one file, which would test nothing here.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient

from predictions import malware
from predictions.models import IdempotencyKey, Prediction
from tests.optional import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/predict"


@pytest.fixture(autouse=True)
def _postgres() -> None:
    require_postgres()


def post(image: bytes, key: str):
    upload = SimpleUploadedFile("eyelid.png", image, content_type="image/png")
    try:
        return APIClient().post(
            URL, {"image": upload}, format="multipart", HTTP_IDEMPOTENCY_KEY=key
        )
    finally:
        connection.close()  # this thread's own connection, or the test database stays busy


def test_a_second_request_while_the_first_works_is_409_then_a_replay(
    real_crop_bytes, monkeypatch
):
    entered, release = threading.Event(), threading.Event()
    screen = malware.upload_scan

    def held(**kwargs):
        if threading.current_thread().name == "first":
            entered.set()
            assert release.wait(30)
        return screen(**kwargs)

    monkeypatch.setattr(malware, "upload_scan", held)
    key = str(uuid.uuid4())
    answers: dict[str, Any] = {}
    first = threading.Thread(
        target=lambda: answers.update(first=post(real_crop_bytes, key)), name="first"
    )
    first.start()
    try:
        assert entered.wait(30)
        # The claim is committed before the work: another connection sees it in flight.
        claim = IdempotencyKey.objects.get(key=key)
        assert claim.prediction_id is None
        second = post(real_crop_bytes, key)
    finally:
        release.set()
        first.join(60)

    assert second.status_code == 409, second.content
    assert second.json()["error"]["code"] == "idempotency_key_in_flight"
    assert answers["first"].status_code == 201
    replay = post(real_crop_bytes, key)
    assert replay.status_code == 200
    assert replay.json()["message_id"] == answers["first"].json()["message_id"]
    assert Prediction.objects.count() == 1


def test_eight_simultaneous_requests_with_one_key_store_one_row(real_crop_bytes):
    key = str(uuid.uuid4())
    barrier = threading.Barrier(8)
    answers = []
    lock = threading.Lock()

    def client() -> None:
        barrier.wait(30)
        response = post(real_crop_bytes, key)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    statuses = sorted(a.status_code for a in answers)
    assert len(statuses) == 8 and statuses.count(201) == 1, statuses
    assert set(statuses) <= {200, 201, 409}, statuses
    ids = {a.json()["message_id"] for a in answers if a.status_code in (200, 201)}
    assert len(ids) == 1
    assert list(Prediction.objects.values_list("message_id", flat=True)) == list(ids)
    assert LogEntry.objects.filter(object_repr__in=ids).count() == 1
    stored = IdempotencyKey.objects.get(key=key).prediction
    assert stored is not None and stored.message_id in ids
