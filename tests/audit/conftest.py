"""Users for each role of the audit issue, and helpers to read the audit trail."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.db import connections
from django.test import Client

from tests.factories import UserFactory

ROLES = ["anonymous", "patient", "clinical_staff", "compliance_officer", "superuser"]
_roles_migration = importlib.import_module(
    "predictions.migrations.0003_roles_and_audit_chain_head"
)


@pytest.fixture(autouse=True)
def _roles(db) -> None:
    # The data migration made the groups; a transactional test elsewhere may have
    # flushed them since, so put them back the same way (same permission list).
    for name, perms in _roles_migration.ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            [
                Permission.objects.get(
                    content_type__app_label=app, content_type__model=model, codename=codename
                )
                for app, model, codename in perms
            ]
        )


def _in_group(username: str, group: str):
    user = UserFactory.create(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def clinical_staff(db):
    return _in_group("clinician", "clinical_staff")


@pytest.fixture
def compliance_officer(db):
    return _in_group("officer", "compliance_officer")


@pytest.fixture
def superuser(db):
    return UserFactory.create(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def user_for(request, db):
    """user_for(role) -> the user of that role (None for anonymous)."""

    def get(role: str):
        if role == "anonymous":
            return None
        return request.getfixturevalue(role)

    return get


def browser_for(user) -> Client:
    """A Django test client with a real session login (the admin's way in)."""
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def access_entries():
    return LogEntry.objects.filter(action=LogEntry.Action.ACCESS).order_by("pk")


def db_thread(target: Callable[[], object], errors: list[BaseException]) -> threading.Thread:
    """A thread (not started) running `target` on its own database connections, closed
    at the end; what it raises is appended to `errors` for the test to assert on."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # pragma: no cover - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    return threading.Thread(target=run)
