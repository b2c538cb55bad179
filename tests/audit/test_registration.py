"""What django-auditlog records, and who it says did it."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from predictions.audit.trail import MASK
from predictions.models import Prediction
from predictions.services import owner_hash_for
from tests.factories import PredictionFactory, UserFactory

pytestmark = pytest.mark.django_db


def entries_for(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("pk"))


def test_it_logs_a_prediction_creation_without_the_raw_owner_id(patient):
    prediction = PredictionFactory.create(owner=patient, owner_hash=owner_hash_for(patient.pk))
    [entry] = entries_for(prediction)
    assert entry.action == LogEntry.Action.CREATE
    assert entry.object_repr == prediction.message_id
    assert "owner" not in entry.changes
    assert entry.changes["owner_hash"] == ["None", MASK]
    assert prediction.owner_hash not in str(entry.changes)
    assert entry.changes["risk_level"] == ["None", "medium"]


def test_it_logs_group_membership_changes(db):
    user = UserFactory.create(username="nurse")
    group = Group.objects.get(name="clinical_staff")
    user.groups.add(group)
    user.groups.remove(group)
    changes = [e.changes["groups"] for e in entries_for(user) if "groups" in (e.changes or {})]
    assert [(c["operation"], c["objects"]) for c in changes] == [
        ("add", ["clinical_staff"]),
        ("delete", ["clinical_staff"]),
    ]


def test_it_never_logs_password_hashes(db):
    user = UserFactory.create(username="someone")
    user.set_password("another correct horse")
    user.save()
    for entry in entries_for(user):
        assert "password" not in (entry.changes or {})
        assert "pbkdf2" not in str(entry.changes)


def test_the_actor_is_set_for_token_authenticated_api_calls(patient, real_crop_bytes):
    token = Token.objects.create(user=patient)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post("/api/predict", {"image": _upload(real_crop_bytes)})
    assert response.status_code == 201
    prediction = Prediction.objects.get(message_id=response.json()["message_id"])
    [entry] = entries_for(prediction)
    # The entry is written inside the view, after DRF authenticated the token:
    # auditlog's own middleware alone would have recorded no actor here.
    assert entry.actor == patient
    assert entry.actor_email == patient.email
    assert entry.cid == response["X-Request-ID"]


def test_the_actor_is_set_for_session_authenticated_api_calls(patient, real_crop_bytes):
    client = APIClient()
    client.force_login(patient)
    response = client.post("/api/predict", {"image": _upload(real_crop_bytes)})
    assert response.status_code == 201
    [entry] = entries_for(Prediction.objects.get(message_id=response.json()["message_id"]))
    assert entry.actor == patient


def test_anonymous_predictions_have_no_actor(api_client, real_crop_bytes):
    response = api_client.post(
        "/api/predict", {"image": _upload(real_crop_bytes)}, HTTP_X_REQUEST_ID="req-anon-00000001"
    )
    assert response.status_code == 201
    [entry] = entries_for(Prediction.objects.get(message_id=response.json()["message_id"]))
    assert entry.actor is None
    assert entry.cid == "req-anon-00000001"


def test_entries_written_outside_a_request_have_no_stale_correlation_id(api_client, staff):
    api_client.get("/health/live", HTTP_X_REQUEST_ID="req-earlier-0000001")
    prediction = PredictionFactory.create()
    [entry] = entries_for(prediction)
    assert entry.cid is None


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("eye.png", data, content_type="image/png")
