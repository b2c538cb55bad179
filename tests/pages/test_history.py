"""GET /history: a patient's own results, or this browser session's."""

from __future__ import annotations

import pytest

from tests.factories import PredictionFactory
from tests.pages.conftest import logged_in, remember_in_session, text_of

pytestmark = pytest.mark.django_db
URL = "/history"


def shown(response) -> list[str]:
    return [p.message_id for p, *_ in response.context["rows"]]


@pytest.fixture
def rows(patient, other_patient, staff):
    return {
        "mine": PredictionFactory(owner=patient, risk_level="high"),
        "theirs": PredictionFactory(owner=other_patient),
        "staffs": PredictionFactory(owner=staff),
        "this_session": PredictionFactory(owner=None, risk_level="low"),
        "other_session": PredictionFactory(owner=None),
    }


def test_anonymous_browsers_see_their_session_results_only(client, rows):
    remember_in_session(client, rows["this_session"].message_id)

    response = client.get(URL)

    assert response.status_code == 200
    assert "predictions/history.html" in [t.name for t in response.templates]
    assert "no-store" in response["Cache-Control"]
    assert shown(response) == [rows["this_session"].message_id]
    text = text_of(response)
    assert "only the results checked in this browser session" in text
    assert "Low risk" in text


def test_a_patient_sees_their_own_results_only(patient, rows):
    response = logged_in(patient).get(URL)

    assert shown(response) == [rows["mine"].message_id]
    assert f'href="/results/{rows["mine"].message_id}"' in response.content.decode()
    assert "High risk" in text_of(response)


def test_another_patient_does_not_see_them(other_patient, rows):
    assert shown(logged_in(other_patient).get(URL)) == [rows["theirs"].message_id]


def test_staff_see_only_their_own_history_here(staff, rows):
    # Staff read everyone's results through the API and the admin, not their history page.
    assert shown(logged_in(staff).get(URL)) == [rows["staffs"].message_id]


def test_it_says_when_there_is_nothing_yet(client):
    response = client.get(URL)

    assert shown(response) == []
    assert "No results yet." in text_of(response)


def test_it_pages_newest_first_in_a_fixed_number_of_queries(
    patient, django_assert_num_queries
):
    made = [PredictionFactory(owner=patient) for _ in range(25)]
    client = logged_in(patient)
    client.get("/")  # the session and the user are loaded once per request, counted below

    # session, user, count, page, the chart's series (no permission checks: this page
    # shows the caller's own results whoever they are).
    with django_assert_num_queries(5):
        first = client.get(URL)
    second = client.get(URL, {"page": 2})

    newest_first = [p.message_id for p in reversed(made)]
    assert shown(first) == newest_first[:20]
    assert shown(second) == newest_first[20:]
    assert "Page 1 of 2" in text_of(first)
