"""Staff reads of predictions (API and admin) are ACCESS entries with actor and cid."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from predictions.selectors import SESSION_KEY
from tests.audit.conftest import ROLES, access_entries, browser_for
from tests.conftest import client_for
from tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db
LIST = "/api/results"


def test_a_staff_listing_logs_one_access_per_result_shown(clinical_staff):
    shown = PredictionFactory.create_batch(3)
    response = client_for(clinical_staff).get(LIST, HTTP_X_REQUEST_ID="req-list-00000001")
    assert response.status_code == 200
    entries = list(access_entries())
    assert sorted(e.object_repr for e in entries) == sorted(p.message_id for p in shown)
    assert {e.actor for e in entries} == {clinical_staff}
    assert {e.cid for e in entries} == {"req-list-00000001"}
    assert {e.additional_data["via"] for e in entries} == {"api"}


def test_only_the_page_shown_is_logged(clinical_staff):
    PredictionFactory.create_batch(25)
    client_for(clinical_staff).get(LIST, {"page": 2})
    assert access_entries().count() == 5


def test_a_staff_retrieve_logs_one_access(clinical_staff):
    prediction = PredictionFactory.create()
    response = client_for(clinical_staff).get(f"{LIST}/{prediction.message_id}")
    assert response.status_code == 200
    [entry] = access_entries()
    assert (entry.object_pk, entry.actor, entry.cid) == (
        str(prediction.pk),
        clinical_staff,
        response["X-Request-ID"],
    )


def test_a_token_authenticated_staff_read_has_the_actor(clinical_staff):
    prediction = PredictionFactory.create()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=clinical_staff).key}")
    assert client.get(f"{LIST}/{prediction.message_id}").status_code == 200
    assert access_entries().get().actor == clinical_staff


def test_patients_reading_their_own_results_are_not_logged(patient):
    mine = PredictionFactory.create(owner=patient)
    client = client_for(patient)
    assert client.get(LIST).status_code == 200
    assert client.get(f"{LIST}/{mine.message_id}").status_code == 200
    assert not access_entries().exists()


def test_an_anonymous_session_reading_its_result_is_not_logged(api_client):
    prediction = PredictionFactory.create(owner=None)
    session = api_client.session
    session[SESSION_KEY] = [prediction.message_id]
    session.save()
    assert api_client.get(f"{LIST}/{prediction.message_id}").status_code == 200
    assert not access_entries().exists()


def test_a_refused_read_is_not_logged_as_an_access(patient, other_patient):
    theirs = PredictionFactory.create(owner=other_patient)
    assert client_for(patient).get(f"{LIST}/{theirs.message_id}").status_code == 404
    assert not access_entries().exists()


@pytest.mark.parametrize("rows", [2, 20])
def test_the_audited_list_query_count_does_not_grow_with_rows(
    rows, clinical_staff, django_assert_num_queries
):
    PredictionFactory.create_batch(rows)
    client = client_for(clinical_staff)
    client.get(LIST)  # warms the content type and the user's permission caches
    # count, page; then the audit (linking inline, as in tests): INSERT the entries,
    # lock the chain head, INSERT the links (sealed and linked from the saved entries,
    # not read back), UPDATE the head.
    with django_assert_num_queries(6):
        assert client.get(LIST).status_code == 200


def test_opening_a_prediction_in_the_admin_is_an_access(clinical_staff):
    prediction = PredictionFactory.create()
    response = browser_for(clinical_staff).get(
        f"/admin/predictions/prediction/{prediction.pk}/change/",
        HTTP_X_REQUEST_ID="req-admin-0000001",
    )
    assert response.status_code == 200
    [entry] = access_entries()
    assert (entry.object_repr, entry.actor, entry.cid) == (
        prediction.message_id,
        clinical_staff,
        "req-admin-0000001",
    )
    assert entry.additional_data == {"via": "admin"}


def test_the_admin_list_logs_the_rows_shown(clinical_staff):
    shown = PredictionFactory.create_batch(3)
    response = browser_for(clinical_staff).get("/admin/predictions/prediction/")
    assert response.status_code == 200
    assert sorted(e.object_repr for e in access_entries()) == sorted(p.message_id for p in shown)
    assert access_entries().filter(actor=clinical_staff).count() == 3


def test_access_entries_carry_no_clinical_content(clinical_staff):
    prediction = PredictionFactory.create(risk_level="high", recommendation="See a doctor soon.")
    client_for(clinical_staff).get(f"{LIST}/{prediction.message_id}")
    entry = access_entries().get()
    assert entry.changes is None
    assert entry.action == LogEntry.Action.ACCESS
    assert "high" not in str(entry.additional_data)


# role: (list status, sees all results, reads are logged)
RESULTS_MATRIX = {
    "anonymous": (401, False, False),
    "patient": (200, False, False),
    "clinical_staff": (200, True, True),
    "compliance_officer": (200, False, False),  # audit logs only, no health data
    "superuser": (200, True, True),
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_against_the_results_endpoints(role, user_for):
    status, sees_all, logged = RESULTS_MATRIX[role]
    others = PredictionFactory.create_batch(2)
    client = client_for(user_for(role))
    listing = client.get(LIST)
    assert listing.status_code == status or (role == "anonymous" and listing.status_code == 403)
    if status == 200:
        shown = {r["message_id"] for r in listing.json()["results"]}
        assert shown == ({p.message_id for p in others} if sees_all else set())
    detail = client.get(f"{LIST}/{others[0].message_id}")
    assert detail.status_code == (200 if sees_all else 404)
    assert access_entries().exists() == logged
    if logged:
        assert access_entries().count() == 3  # the page of two, then the one opened
