"""A prediction is counted just before its commit; when that commit fails, nothing is
stored and the count is balanced by healthguard_prediction_commit_failures_total, so
stored rows = predictions counted - commit failures (what the fault run checks)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection

from ops import metrics
from predictions.models import Prediction

pytestmark = pytest.mark.django_db(transaction=True)  # real commits, no test transaction


def predictions_counted() -> float:
    return sum(
        sample.value
        for family in metrics.PREDICTIONS.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def commit_failures() -> float:
    return metrics.PREDICTION_COMMIT_FAILURES._value.get()


@pytest.fixture
def commit_fails_with_a_prediction(monkeypatch):
    """Every commit that would store a prediction fails, as when the database goes away
    while the commit is on the wire."""
    real_commit = connection.commit

    def commit() -> None:
        if Prediction.objects.exists():  # inside the transaction: sees the new row
            raise OperationalError("server closed the connection unexpectedly")
        real_commit()

    monkeypatch.setattr(connection, "commit", commit)


@pytest.mark.parametrize("key", [None, "retry-key-1"], ids=["request transaction", "idempotent"])
def test_a_failed_commit_stores_nothing_and_balances_the_count(
    api_client, real_crop_bytes, commit_fails_with_a_prediction, key
):
    counted, failed = predictions_counted(), commit_failures()
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    response = api_client.post(
        "/api/predict",
        {"image": SimpleUploadedFile("e.png", real_crop_bytes, content_type="image/png")},
        format="multipart",
        **headers,
    )
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "database_unavailable"
    assert Prediction.objects.count() == 0
    assert predictions_counted() - counted == 1  # counted before the commit
    assert commit_failures() - failed == 1  # and balanced when it failed


def test_a_commit_that_succeeds_is_not_a_failure(api_client, real_crop_bytes):
    counted, failed = predictions_counted(), commit_failures()
    response = api_client.post(
        "/api/predict",
        {"image": SimpleUploadedFile("e.png", real_crop_bytes, content_type="image/png")},
        format="multipart",
    )
    assert response.status_code == 201
    assert Prediction.objects.count() == 1
    assert (predictions_counted() - counted, commit_failures() - failed) == (1, 0)
