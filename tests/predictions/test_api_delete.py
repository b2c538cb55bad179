"""DELETE /api/results/{message_id}: a signed-in owner erases their own result."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from predictions.models import Prediction
from predictions.selectors import SESSION_KEY
from tests.conftest import client_for
from tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


def url(prediction) -> str:
    return f"/api/results/{prediction.message_id}"


def test_the_owner_deletes_their_result(patient):
    mine = PredictionFactory.create(owner=patient, risk_level="high")
    token = Token.objects.create(user=patient)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.delete(url(mine), HTTP_X_REQUEST_ID="req-api-erase-001")

    assert response.status_code == 204
    assert not Prediction.objects.filter(pk=mine.pk).exists()
    assert client.get(url(mine)).status_code == 404
    entry = LogEntry.objects.get(action=LogEntry.Action.DELETE)
    assert (entry.object_repr, entry.actor, entry.cid) == (
        mine.message_id, patient, "req-api-erase-001"
    )
    assert entry.changes is None
    assert entry.additional_data == {"reason": "erasure requested by the patient"}
    assert "high" not in str(entry.additional_data)


def test_deleting_twice_is_a_404(patient):
    mine = PredictionFactory.create(owner=patient)
    client = client_for(patient)
    assert client.delete(url(mine)).status_code == 204

    response = client.delete(url(mine))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("who", ["other_patient", "staff"])
def test_someone_elses_result_is_a_404_even_for_staff(who, request, patient):
    mine = PredictionFactory.create(owner=patient)

    response = client_for(request.getfixturevalue(who)).delete(url(mine))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Prediction.objects.filter(pk=mine.pk).exists()
    assert not LogEntry.objects.filter(action=LogEntry.Action.DELETE).exists()


def test_staff_may_delete_their_own(staff):
    theirs = PredictionFactory.create(owner=staff)

    assert client_for(staff).delete(url(theirs)).status_code == 204


def test_anonymous_callers_are_refused_even_with_the_session(api_client):
    checked = PredictionFactory.create(owner=None)
    session = api_client.session
    session[SESSION_KEY] = [checked.message_id]
    session.save()

    response = api_client.delete(url(checked))

    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"
    assert Prediction.objects.filter(pk=checked.pk).exists()


def test_a_session_signed_in_delete_needs_the_csrf_token(patient):
    mine = PredictionFactory.create(owner=patient)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(patient)

    response = client.delete(url(mine))

    assert response.status_code == 403
    assert Prediction.objects.filter(pk=mine.pk).exists()


def test_the_schema_documents_the_delete(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/results/{message_id}"]["delete"]

    assert set(operation["responses"]) >= {"204", "401", "404"}
    assert "erase" in operation["description"].lower()
