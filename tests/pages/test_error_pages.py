"""The error pages: plain words in the patient's language, never a stack trace."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from predictions import handlers as errors
from tests.pages.conftest import text_of

pytestmark = pytest.mark.django_db


def test_an_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert "404.html" in [t.name for t in response.templates]
    assert response.context["message"] == "Nothing was found at this address."
    text = text_of(response)
    assert "Page not found" in text
    assert "Nothing was found at this address." in text
    assert "Back to the start" in text


def test_the_404_page_speaks_french():
    response = Client(headers={"accept-language": "fr"}).get("/no-such-page")

    text = text_of(response)
    assert "Page introuvable" in text
    assert "Nothing was found" not in text


def test_a_stale_form_gets_a_friendly_403(client):
    client.get("/")

    response = client.post("/analyse", {})

    assert response.status_code == 403
    assert "403.html" in [t.name for t in response.templates]
    assert "Reload the page and try again." in text_of(response)


@pytest.mark.parametrize("status", [400, 403, 404])
def test_each_handler_renders_its_template(rf: RequestFactory, status):
    from django.contrib.auth.models import AnonymousUser

    request = rf.get("/somewhere")
    request.user = AnonymousUser()
    response = getattr(errors, f"handler{status}")(request, Exception())

    assert response.status_code == status
    assert b"Back to the start" in response.content


def test_the_500_page_does_not_touch_the_account(rf: RequestFactory):
    # No request.user at all: the 500 page must render even when the database is down.
    request = rf.get("/somewhere")

    response = errors.handler500(request)

    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content
    assert b"Sign in" not in response.content
