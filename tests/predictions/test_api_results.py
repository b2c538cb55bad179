"""GET /api/results and /api/results/{message_id}: who sees what."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from predictions.models import Prediction
from predictions.selectors import SESSION_KEY
from tests.conftest import client_for
from tests.factories import PredictionFactory, UserFactory

pytestmark = pytest.mark.django_db
LIST = "/api/results"


def ids(response) -> list[str]:
    return [r["message_id"] for r in response.json()["results"]]


@pytest.fixture
def rows(patient, other_patient):
    mine = PredictionFactory(owner=patient, risk_level="high", risk_score=0.9)
    theirs = PredictionFactory(owner=other_patient, risk_level="low", risk_score=0.1)
    anonymous = PredictionFactory(owner=None)
    return {"mine": mine, "theirs": theirs, "anonymous": anonymous}


def test_anonymous_listing_is_refused(api_client, rows):
    response = api_client.get(LIST)
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_patient_lists_only_their_own_results(patient, rows):
    response = client_for(patient).get(LIST)
    assert response.status_code == 200
    assert ids(response) == [rows["mine"].message_id]


def test_another_patient_lists_only_theirs(other_patient, rows):
    assert ids(client_for(other_patient).get(LIST)) == [rows["theirs"].message_id]


def test_a_user_without_the_permission_sees_only_their_own_even_if_staff(db, rows):
    clerk = UserFactory(username="clerk", is_staff=True)
    assert ids(client_for(clerk).get(LIST)) == []


def test_staff_with_view_permission_see_all_newest_first(staff, rows):
    now = timezone.now()
    for i, row in enumerate(rows.values()):
        Prediction.objects.filter(pk=row.pk).update(created_at=now - dt.timedelta(hours=i))
    response = client_for(staff).get(LIST)
    assert ids(response) == [r.message_id for r in rows.values()]
    assert response.json()["count"] == 3


def test_it_filters_by_risk_level(staff, rows):
    assert ids(client_for(staff).get(LIST, {"risk_level": "high"})) == [rows["mine"].message_id]


def test_it_rejects_an_unknown_risk_level_filter(staff, rows):
    response = client_for(staff).get(LIST, {"risk_level": "extreme"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_it_filters_by_date_range(staff, rows):
    old = rows["theirs"]
    Prediction.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    got = ids(client_for(staff).get(LIST, {"created_after": since}))
    assert old.message_id not in got and len(got) == 2
    until = (timezone.now() - dt.timedelta(days=5)).isoformat()
    assert ids(client_for(staff).get(LIST, {"created_before": until})) == [old.message_id]


def test_it_paginates(staff):
    PredictionFactory.create_batch(25)
    page1 = client_for(staff).get(LIST).json()
    assert page1["count"] == 25 and len(page1["results"]) == 20 and page1["next"]
    page2 = client_for(staff).get(LIST, {"page": 2}).json()
    assert len(page2["results"]) == 5


def test_the_list_query_count_does_not_grow_with_rows(staff, django_assert_max_num_queries):
    PredictionFactory.create_batch(20)
    client = client_for(staff)
    # 4 to read the page, 5 to audit it (tests/audit/test_access_log.py): one INSERT of
    # the ACCESS entries, then lock, read, link and update the hash chain's head.
    with django_assert_max_num_queries(9):
        assert client.get(LIST).status_code == 200


@pytest.mark.parametrize("who", ["anonymous", "other_patient"])
def test_others_cannot_open_a_patients_result(who, request, rows):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    response = client_for(user).get(f"{LIST}/{rows['mine'].message_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_owner_opens_their_result(patient, rows):
    response = client_for(patient).get(f"{LIST}/{rows['mine'].message_id}")
    assert response.status_code == 200
    assert response.json()["risk_level"] == "high"


def test_staff_open_any_result(staff, rows):
    assert client_for(staff).get(f"{LIST}/{rows['theirs'].message_id}").status_code == 200


def test_an_anonymous_session_opens_only_the_results_it_created(api_client, rows):
    session = api_client.session
    session[SESSION_KEY] = [rows["anonymous"].message_id, rows["mine"].message_id]
    session.save()
    assert api_client.get(f"{LIST}/{rows['anonymous'].message_id}").status_code == 200
    # A session cannot claim a signed-in patient's result by knowing its id.
    assert api_client.get(f"{LIST}/{rows['mine'].message_id}").status_code == 404


def test_an_unknown_id_is_404_in_the_error_shape(staff):
    response = client_for(staff).get(f"{LIST}/pred_doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_results_are_in_the_browsable_api(staff, rows):
    response = client_for(staff).get(LIST, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Result" in response.content
