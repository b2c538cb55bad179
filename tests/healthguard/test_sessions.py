"""healthguard/sessions.py: database sessions stored with one INSERT, no look-up first."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext

from healthguard import sessions
from healthguard.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_project_uses_it():
    assert settings.SESSION_ENGINE == "healthguard.sessions"


def test_a_new_session_is_stored_without_looking_its_key_up_first():
    store = SessionStore()
    store["results"] = ["pred_x"]
    with CaptureQueriesContext(connection) as queries:
        store.save()
    sql = [q["sql"] for q in queries.captured_queries]
    assert not any(s.lstrip().upper().startswith("SELECT") for s in sql), sql
    assert sum("INSERT" in s.upper() for s in sql) == 1
    assert SessionStore(store.session_key)["results"] == ["pred_x"]


def test_a_key_that_is_taken_is_drawn_again(monkeypatch):
    taken = SessionStore()
    taken["who"] = "first"
    taken.save()
    keys = iter([taken.session_key, "k" * 32])
    monkeypatch.setattr(sessions, "get_random_string", lambda *args: next(keys))

    store = SessionStore()
    store["who"] = "second"
    store.save()

    assert store.session_key == "k" * 32
    assert SessionStore(taken.session_key)["who"] == "first"  # untouched
    assert Session.objects.count() == 2
