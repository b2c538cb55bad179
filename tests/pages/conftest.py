"""Helpers for the template pages: Django's test client, as a browser would use them."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from predictions.selectors import SESSION_KEY


@pytest.fixture
def client() -> Client:
    # Pages are tested with CSRF enforced, as browsers meet them.
    return Client(enforce_csrf_checks=True)


def logged_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_token_from(client: Client, url: str = "/") -> str:
    response = client.get(url)
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, "the page has no CSRF token field"
    return match.group(1).decode()


def remember_in_session(client: Client, *message_ids: str) -> None:
    session = client.session
    session[SESSION_KEY] = list(message_ids)
    session.save()


def html_part(pattern: str, html: str) -> str:
    match = re.search(pattern, html, re.S)
    assert match, f"{pattern!r} not found in the page"
    return match.group(0)


def text_of(response) -> str:
    """The page's visible words, tags removed and whitespace collapsed."""
    html = response.content.decode()
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
