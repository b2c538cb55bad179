"""GET /results/<message_id>: who sees what, and what the page says."""

from __future__ import annotations

from typing import cast

import pytest
from django.test import Client
from django.utils import translation

from ml.risk import RECOMMENDATIONS as ML_RECOMMENDATIONS
from ml.risk import RiskLevel
from predictions.models import Prediction
from predictions.patient_copy import DISCLAIMER, RECOMMENDATIONS
from predictions.serializers import DISCLAIMER as API_DISCLAIMER
from tests.factories import PredictionFactory, UserFactory
from tests.pages.conftest import csrf_token_from, logged_in, remember_in_session, text_of

pytestmark = pytest.mark.django_db


def url(prediction) -> str:
    return f"/results/{prediction.message_id}"


@pytest.fixture
def anonymous_result():
    return PredictionFactory(owner=None, risk_level="high", risk_score=0.876)


@pytest.fixture
def patient_result(patient):
    return PredictionFactory(owner=patient, risk_level="low", risk_score=0.1)


def test_the_creating_session_sees_its_anonymous_result(client, anonymous_result):
    remember_in_session(client, anonymous_result.message_id)

    response = client.get(url(anonymous_result))

    assert response.status_code == 200
    assert "predictions/result.html" in [t.name for t in response.templates]
    assert response.context["prediction"] == anonymous_result
    assert "no-store" in response["Cache-Control"]  # health data stays off shared phones


def test_another_browser_cannot_see_an_anonymous_result(client, anonymous_result):
    response = client.get(url(anonymous_result))

    assert response.status_code == 404
    assert "404.html" in [t.name for t in response.templates]


def test_a_session_cannot_claim_a_patients_result(client, patient_result):
    remember_in_session(client, patient_result.message_id)

    assert client.get(url(patient_result)).status_code == 404


def test_the_owner_sees_their_result(patient, patient_result):
    assert logged_in(patient).get(url(patient_result)).status_code == 200


def test_another_patient_cannot_see_it(other_patient, patient_result):
    assert logged_in(other_patient).get(url(patient_result)).status_code == 404


def test_staff_with_the_view_permission_see_any_result(staff, patient_result, anonymous_result):
    client = logged_in(staff)

    assert client.get(url(patient_result)).status_code == 200
    assert client.get(url(anonymous_result)).status_code == 200


def test_staff_without_the_permission_do_not(patient_result):
    staff = UserFactory(username="staff-without-permission", is_staff=True)

    assert logged_in(staff).get(url(patient_result)).status_code == 404


def test_an_unknown_id_is_not_found(client):
    assert client.get("/results/pred_doesnotexist").status_code == 404


@pytest.mark.parametrize(
    ("level", "label"), [("low", "Low risk"), ("medium", "Medium risk"), ("high", "High risk")]
)
def test_it_shows_the_level_in_words_and_colour(client, level, label):
    prediction = cast(Prediction, PredictionFactory(owner=None, risk_level=level))
    remember_in_session(client, prediction.message_id)

    response = client.get(url(prediction))

    html = response.content.decode()
    assert f'class="card result risk-{level}"' in html
    assert label in text_of(response)
    assert response.context["recommendation"] == RECOMMENDATIONS[level]


def test_it_shows_everything_a_patient_needs(client, anonymous_result):
    remember_in_session(client, anonymous_result.message_id)

    response = client.get(url(anonymous_result))

    text = text_of(response)
    assert "High risk" in text
    assert "0.88" in text and "0.876" not in text
    assert ML_RECOMMENDATIONS[RiskLevel.HIGH] in text
    assert anonymous_result.model_version in text
    assert anonymous_result.created_at.strftime("%Y") in text
    assert "UTC" in text
    assert "blood test" in text
    assert "What to do next" in text
    assert "The outline you drew" in text  # the factory's segmentation is "provided"
    assert API_DISCLAIMER in text
    assert response.context["confidence_percent"] == 60


def test_the_english_texts_match_the_models_and_the_apis():
    with translation.override("en"):
        for level, text in ML_RECOMMENDATIONS.items():
            assert str(RECOMMENDATIONS[level.value]) == text
        assert str(DISCLAIMER) == API_DISCLAIMER


def test_it_speaks_french(anonymous_result):
    client = Client(headers={"accept-language": "fr"})
    remember_in_session(client, anonymous_result.message_id)

    response = client.get(url(anonymous_result))

    text = text_of(response)
    assert '<html lang="fr">' in response.content.decode()
    assert "Risque élevé" in text
    assert "0,88" in text
    assert "prise de sang" in text
    assert ML_RECOMMENDATIONS[RiskLevel.HIGH] not in text


def test_the_page_only_answers_get(staff, patient_result):
    client = logged_in(staff)
    token = csrf_token_from(client)

    assert client.post(url(patient_result), {"csrfmiddlewaretoken": token}).status_code == 405


def test_staff_reads_are_audited_and_patients_own_reads_are_not(staff, patient, patient_result):
    from auditlog.models import LogEntry

    logged_in(patient).get(url(patient_result))
    assert not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()

    logged_in(staff).get(url(patient_result))

    entry = LogEntry.objects.get(action=LogEntry.Action.ACCESS)
    assert entry.object_pk == str(patient_result.pk)
    assert entry.actor_id == staff.pk
    assert entry.additional_data == {"via": "page"}
