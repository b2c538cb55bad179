"""Sign in and sign out (Django's auth views, our templates)."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY

from tests.pages.conftest import csrf_token_from, logged_in, text_of

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
PASSWORD = "correct horse battery staple"


def test_the_sign_in_page_has_labelled_fields(client):
    response = client.get(LOGIN)

    assert response.status_code == 200
    assert "registration/login.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    assert 'autocomplete="current-password"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_a_patient_signs_in_with_the_form(client, patient):
    token = csrf_token_from(client, LOGIN)

    response = client.post(
        LOGIN, {"username": "patient", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert response["Location"] == "/history"  # lands on "My results" (issue 17)
    assert client.session[AUTH_SESSION_KEY] == str(patient.pk)


def test_a_wrong_password_is_said_in_words(client, patient):
    token = csrf_token_from(client, LOGIN)

    response = client.post(
        LOGIN, {"username": "patient", "password": "wrong", "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 200
    assert 'role="status"' in response.content.decode()
    assert "correct username and password" in text_of(response)


def test_sign_in_refuses_a_post_without_csrf_token(client, patient):
    client.get(LOGIN)

    response = client.post(LOGIN, {"username": "patient", "password": PASSWORD})

    assert response.status_code == 403
    assert AUTH_SESSION_KEY not in client.session


def test_signed_in_pages_offer_sign_out_as_a_form(patient):
    html = logged_in(patient).get("/").content.decode()

    assert '<form action="/accounts/logout/" method="post">' in html
    assert 'href="/accounts/login/"' not in html


def test_sign_out_needs_a_post_with_csrf_token(patient):
    client = logged_in(patient)
    token = csrf_token_from(client)

    assert client.get(LOGOUT).status_code == 405
    assert client.post(LOGOUT).status_code == 403
    assert AUTH_SESSION_KEY in client.session

    response = client.post(LOGOUT, {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert AUTH_SESSION_KEY not in client.session
