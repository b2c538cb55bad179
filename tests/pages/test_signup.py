"""Sign-up and password reset (Django's forms and views, our templates), throttled."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from tests.pages.conftest import csrf_token_from, logged_in, text_of

pytestmark = pytest.mark.django_db
SIGNUP = "/accounts/signup/"
RESET = "/accounts/password_reset/"
PASSWORD = "correct horse battery staple"


def signup_post(client, **fields):
    token = csrf_token_from(client, SIGNUP)
    data = {"username": "amina", "password1": PASSWORD, "password2": PASSWORD, **fields}
    return client.post(SIGNUP, {**data, "csrfmiddlewaretoken": token})


def test_the_sign_up_page_has_labelled_fields(client):
    response = client.get(SIGNUP)

    assert response.status_code == 200
    html = response.content.decode()
    for name in ("username", "email", "password1", "password2"):
        assert f'<label for="id_{name}">' in html
    assert html.count('autocomplete="new-password"') == 2
    assert 'id="id_email"' in html and "E-mail address (optional)" in text_of(response)


def test_a_visitor_signs_up_without_an_email_and_lands_on_my_results(client):
    response = signup_post(client)

    assert response.status_code == 302
    assert response["Location"] == "/history"
    user = User.objects.get(username="amina")
    assert user.email == ""
    assert client.session[AUTH_SESSION_KEY] == str(user.pk)
    assert "Your account is ready" in text_of(client.get("/history"))


def test_sign_up_keeps_an_email_when_given(client):
    signup_post(client, username="bea", email="bea@example.org")

    assert User.objects.get(username="bea").email == "bea@example.org"


def test_sign_up_refuses_a_weak_or_mismatched_password_in_words(client):
    response = signup_post(client, password1="123", password2="123")

    assert response.status_code == 200
    assert not User.objects.filter(username="amina").exists()
    assert "This password is too short" in text_of(response)
    assert 'aria-invalid="true"' in response.content.decode()

    response = signup_post(client, password2="something else entirely")
    assert "password fields didn\u2019t match" in text_of(response)


def test_sign_up_refuses_a_taken_username(client, patient):
    response = signup_post(client, username="patient")

    assert response.status_code == 200
    assert "already exists" in text_of(response)


def test_sign_up_needs_the_csrf_token(client):
    client.get(SIGNUP)
    response = client.post(SIGNUP, {"username": "x", "password1": PASSWORD, "password2": PASSWORD})

    assert response.status_code == 403
    assert not User.objects.filter(username="x").exists()


def test_a_signed_in_patient_is_sent_to_their_results(patient):
    response = logged_in(patient).get(SIGNUP)

    assert response.status_code == 302
    assert response["Location"] == "/history"


def test_the_pages_offer_sign_up_and_reset(client):
    assert 'href="/accounts/signup/"' in client.get("/").content.decode()
    login_page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in login_page


def test_password_reset_mails_a_link_that_sets_a_new_password(client, patient, settings):
    assert settings.EMAIL_BACKEND.endswith("locmem.EmailBackend")  # pytest-django's outbox
    token = csrf_token_from(client, RESET)
    response = client.post(RESET, {"email": patient.email, "csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    [message] = mail.outbox
    assert message.to == [patient.email]
    assert "Reset your HealthGuard Vision password" in message.subject
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", str(message.body))
    assert link, message.body

    confirm = client.get(link.group(1), follow=True)  # Django swaps the token for a session key
    assert "Choose a new password" in text_of(confirm)
    url = confirm.redirect_chain[-1][0]
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', confirm.content)
    assert found
    done = client.post(
        url,
        {"new_password1": "a brand new horse", "new_password2": "a brand new horse",
         "csrfmiddlewaretoken": found.group(1).decode()},
    )
    assert done["Location"] == "/accounts/reset/done/"
    patient.refresh_from_db()
    assert patient.check_password("a brand new horse")


def test_password_reset_says_the_same_for_an_unknown_address(client, patient):
    token = csrf_token_from(client, RESET)
    response = client.post(RESET, {"email": "nobody@example.org", "csrfmiddlewaretoken": token})

    assert response["Location"] == "/accounts/password_reset/done/"  # no account enumeration
    assert mail.outbox == []


def test_a_used_reset_link_is_refused_in_words(client):
    response = client.get("/accounts/reset/MQ/set-password/")

    assert "This link is not valid any more" in text_of(response)


@pytest.fixture
def rate(settings):
    def set_rate(scope: str, value: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                scope: value,
            },
        }

    return set_rate


def test_sign_ups_are_throttled_per_address(rate):
    rate("signup", "2/hour")
    # A fresh browser each time (a signed-up one is signed in), all from one address.
    codes = [signup_post(Client(enforce_csrf_checks=True), username=f"user-{i}").status_code
             for i in range(3)]

    assert codes[:2] == [302, 302]
    assert codes[2] == 429
    assert User.objects.filter(username__startswith="user-").count() == 2
    refused = signup_post(Client(enforce_csrf_checks=True), username="user-9")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Too many accounts were created from here" in text_of(refused)


def test_reset_requests_are_throttled_and_send_nothing_past_the_rate(client, patient, rate):
    rate("password_reset", "1/hour")
    token = csrf_token_from(client, RESET)
    first = client.post(RESET, {"email": patient.email, "csrfmiddlewaretoken": token})
    second = client.post(RESET, {"email": patient.email, "csrfmiddlewaretoken": token})

    assert (first.status_code, second.status_code) == (302, 429)
    assert len(mail.outbox) == 1
    assert "Too many password reset requests" in text_of(second)


def test_sign_up_and_sign_in_are_counted_apart(client, patient, rate):
    rate("login", "1/minute")
    rate("signup", "5/hour")
    token = csrf_token_from(client, "/accounts/login/")
    client.post(
        "/accounts/login/", {"username": "x", "password": "y", "csrfmiddlewaretoken": token}
    )

    assert signup_post(client, username="newcomer").status_code == 302


def test_email_settings_come_from_the_environment():
    import subprocess
    import sys

    code = (
        "import healthguard.settings as s;"
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS)"
    )
    base = {"SECRET_KEY": "x", "PATH": "/usr/bin:/bin"}
    console = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True,
                             text=True, check=True).stdout.split()
    assert console == ["django.core.mail.backends.console.EmailBackend", "587", "True"]
    smtp = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "EMAIL_HOST": "smtp.example.org", "EMAIL_PORT": "2525", "EMAIL_USE_TLS": "0"},
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert smtp == ["django.core.mail.backends.smtp.EmailBackend", "smtp.example.org", "2525",
                    "False"]
    bad = subprocess.run([sys.executable, "-c", code], env={**base, "EMAIL_PORT": "many"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "EMAIL_PORT must be an integer" in bad.stderr
