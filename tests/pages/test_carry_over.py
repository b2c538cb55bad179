"""The results a browser checked anonymously become the account's at sign-in and
sign-up, audited; nobody else's come along."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.test import Client

from predictions.audit.trail import MASK
from predictions.models import Prediction
from predictions.selectors import SESSION_KEY
from predictions.services import owner_hash_for
from tests.factories import PredictionFactory
from tests.pages.conftest import csrf_token_from, remember_in_session

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def sign_in(client: Client, username: str) -> None:
    token = csrf_token_from(client, "/accounts/login/")
    response = client.post(
        "/accounts/login/",
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        HTTP_X_REQUEST_ID="req-claim-0000001",
    )
    assert response.status_code == 302
    assert response["Location"] == "/history"


def test_the_result_checked_before_signing_in_is_in_my_results(client, patient):
    checked = PredictionFactory.create(owner=None)
    remember_in_session(client, checked.message_id)

    sign_in(client, "patient")

    checked.refresh_from_db()
    assert checked.owner_id == patient.pk
    assert checked.owner_hash == owner_hash_for(patient.pk)
    history = client.get("/history")
    assert [p.message_id for p, *_ in history.context["rows"]] == [checked.message_id]
    assert client.get(f"/results/{checked.message_id}").status_code == 200
    assert SESSION_KEY not in client.session


def test_the_owner_change_is_audited_without_the_raw_user_id(client, patient):
    checked = PredictionFactory.create(owner=None)
    remember_in_session(client, checked.message_id)

    sign_in(client, "patient")

    entry = LogEntry.objects.get(action=LogEntry.Action.UPDATE, object_pk=str(checked.pk))
    assert entry.object_repr == checked.message_id
    assert entry.actor == patient
    assert entry.cid == "req-claim-0000001"
    assert entry.remote_addr == "127.0.0.1"
    assert entry.changes == {"owner_hash": ["", MASK]}
    assert entry.additional_data == {"reason": "anonymous result claimed at sign-in"}
    assert str(patient.pk) not in str(entry.changes)


def test_sign_up_carries_the_session_results_too(client):
    checked = PredictionFactory.create_batch(2, owner=None)
    remember_in_session(client, *[p.message_id for p in checked])
    token = csrf_token_from(client, "/accounts/signup/")

    client.post(
        "/accounts/signup/",
        {"username": "newcomer", "password1": PASSWORD, "password2": PASSWORD,
         "csrfmiddlewaretoken": token},
    )

    owners = set(Prediction.objects.values_list("owner__username", flat=True))
    assert owners == {"newcomer"}
    reasons = LogEntry.objects.filter(action=LogEntry.Action.UPDATE).values_list(
        "additional_data", flat=True
    )
    assert list(reasons) == [{"reason": "anonymous result claimed at sign-up"}] * 2


def test_a_result_that_already_has_an_owner_is_never_taken(client, patient, other_patient):
    theirs = PredictionFactory.create(owner=other_patient)
    remember_in_session(client, theirs.message_id)  # e.g. a session cookie replayed

    sign_in(client, "patient")

    theirs.refresh_from_db()
    assert theirs.owner_id == other_patient.pk
    assert not LogEntry.objects.filter(action=LogEntry.Action.UPDATE).exists()


def test_other_anonymous_results_do_not_come_along(client, patient):
    mine = PredictionFactory.create(owner=None)
    strangers = PredictionFactory.create(owner=None)
    remember_in_session(client, mine.message_id)

    sign_in(client, "patient")

    strangers.refresh_from_db()
    assert strangers.owner_id is None


def test_the_signed_in_session_no_longer_ends_with_the_browser(client, patient):
    checked = PredictionFactory.create(owner=None)
    remember_in_session(client, checked.message_id)
    session = client.session
    session.set_expiry(0)
    session.save()

    sign_in(client, "patient")

    assert client.session.get_expire_at_browser_close() is False
    assert client.cookies["sessionid"]["max-age"] != ""
