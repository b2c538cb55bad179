"""Erasing results on the pages (confirm, then POST with CSRF), forgetting this device,
and the anonymous session that ends with the browser. Rights: anonymous browser,
patient, another patient, staff."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.test import Client

from predictions.models import Prediction
from predictions.selectors import SESSION_KEY
from tests.factories import PredictionFactory
from tests.pages.conftest import csrf_token_from, logged_in, remember_in_session, text_of

pytestmark = pytest.mark.django_db


def delete_url(prediction) -> str:
    return f"/results/{prediction.message_id}/delete"


def post_with_token(client: Client, url: str, page: str = "/history"):
    return client.post(url, {"csrfmiddlewaretoken": csrf_token_from(client, page)})


def test_a_patient_confirms_then_deletes_one_of_their_results(patient):
    mine, kept = PredictionFactory.create(owner=patient), PredictionFactory.create(owner=patient)
    client = logged_in(patient)

    confirm = client.get(delete_url(mine))
    assert confirm.status_code == 200
    assert "Delete this result?" in text_of(confirm)
    assert Prediction.objects.filter(pk=mine.pk).exists()  # a GET changes nothing

    response = post_with_token(client, delete_url(mine))

    assert response.status_code == 302 and response["Location"] == "/history"
    assert list(Prediction.objects.values_list("pk", flat=True)) == [kept.pk]
    assert "The result was deleted." in text_of(client.get("/history"))
    assert client.get(f"/results/{mine.message_id}").status_code == 404


def test_the_deletion_is_audited_without_the_content(patient):
    mine = PredictionFactory.create(owner=patient, risk_level="high", recommendation="Go.")
    client = logged_in(patient)
    client.post(
        delete_url(mine),
        {"csrfmiddlewaretoken": csrf_token_from(client, "/history")},
        HTTP_X_REQUEST_ID="req-erase-0000001",
    )

    entry = LogEntry.objects.get(action=LogEntry.Action.DELETE)
    assert (entry.object_repr, entry.actor, entry.cid) == (
        mine.message_id, patient, "req-erase-0000001"
    )
    assert entry.remote_addr == "127.0.0.1"
    assert entry.changes is None
    assert entry.additional_data == {"reason": "erasure requested by the patient"}


def test_deleting_needs_the_csrf_token(patient):
    mine = PredictionFactory.create(owner=patient)
    client = logged_in(patient)
    client.get("/history")

    assert client.post(delete_url(mine)).status_code == 403
    assert Prediction.objects.filter(pk=mine.pk).exists()


@pytest.mark.parametrize("who", ["other_patient", "staff", "anonymous"])
def test_nobody_else_may_delete_a_patients_result(who, request, patient):
    mine = PredictionFactory.create(owner=patient)
    client = Client(enforce_csrf_checks=True) if who == "anonymous" else logged_in(
        request.getfixturevalue(who)
    )

    assert client.get(delete_url(mine)).status_code == 404
    assert post_with_token(client, delete_url(mine)).status_code == 404
    assert Prediction.objects.filter(pk=mine.pk).exists()


def test_staff_reading_a_result_get_no_owner_controls(staff, patient):
    theirs = PredictionFactory.create(owner=patient)
    html = logged_in(staff).get(f"/results/{theirs.message_id}").content.decode()

    assert "Delete this result" not in html
    assert "result-label" not in html and 'name="label"' not in html


def test_the_owner_gets_the_controls_on_the_result_page(patient):
    mine = PredictionFactory.create(owner=patient)
    html = logged_in(patient).get(f"/results/{mine.message_id}").content.decode()

    assert f'href="/results/{mine.message_id}/delete"' in html
    assert f'action="/results/{mine.message_id}/label"' in html


def test_a_patient_deletes_all_of_theirs_and_no_one_elses(patient, other_patient):
    PredictionFactory.create_batch(3, owner=patient)
    theirs = PredictionFactory.create(owner=other_patient)
    client = logged_in(patient)

    confirm = client.get("/history/delete")
    assert "3 results will be deleted for good" in text_of(confirm)
    response = post_with_token(client, "/history/delete")

    assert response["Location"] == "/history"
    assert list(Prediction.objects.values_list("pk", flat=True)) == [theirs.pk]
    assert LogEntry.objects.filter(action=LogEntry.Action.DELETE).count() == 3
    assert "All your results were deleted (3)." in text_of(client.get("/history"))


def test_an_anonymous_browser_deletes_what_its_session_checked(client):
    checked, other = PredictionFactory.create(owner=None), PredictionFactory.create(owner=None)
    remember_in_session(client, checked.message_id, other.message_id)

    post_with_token(client, delete_url(checked))

    assert not Prediction.objects.filter(pk=checked.pk).exists()
    assert client.session[SESSION_KEY] == [other.message_id]
    entry = LogEntry.objects.get(action=LogEntry.Action.DELETE)
    assert entry.actor is None and entry.object_repr == checked.message_id


def test_forgetting_this_device_ends_the_anonymous_session(client):
    checked = PredictionFactory.create(owner=None)
    remember_in_session(client, checked.message_id)
    assert 'id="forget-device"' in client.get("/history").content.decode()
    old_key = client.session.session_key

    response = post_with_token(client, "/history/forget")

    assert response["Location"] == "/history"
    assert client.session.session_key != old_key
    assert SESSION_KEY not in client.session
    page = client.get("/history")
    assert page.context["rows"] == []
    assert "This device no longer shows your results." in text_of(page)
    assert client.get(f"/results/{checked.message_id}").status_code == 404
    assert Prediction.objects.filter(pk=checked.pk).exists()  # forgotten, not erased


def test_forgetting_needs_a_post_with_the_csrf_token(client):
    checked = PredictionFactory.create(owner=None)
    remember_in_session(client, checked.message_id)
    client.get("/history")

    assert client.get("/history/forget").status_code == 405
    assert client.post("/history/forget").status_code == 403
    assert client.session[SESSION_KEY] == [checked.message_id]


def test_signed_in_patients_are_not_offered_forget_this_device(patient):
    PredictionFactory.create(owner=patient)

    assert 'id="forget-device"' not in logged_in(patient).get("/history").content.decode()


def test_an_anonymous_result_makes_a_session_that_ends_with_the_browser(client, real_crop_bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    token = csrf_token_from(client, "/")
    response = client.post(
        "/analyse",
        {"image": SimpleUploadedFile("eye.png", real_crop_bytes, "image/png"),
         "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302
    cookie = client.cookies["sessionid"]
    assert cookie["max-age"] == "" and cookie["expires"] == ""  # a browser-session cookie
    assert client.session.get_expire_at_browser_close() is True


def test_a_signed_in_patients_session_keeps_its_lifetime(patient, settings):
    client = logged_in(patient)

    assert client.session.get_expire_at_browser_close() is False
    assert settings.SESSION_COOKIE_AGE == 1209600
