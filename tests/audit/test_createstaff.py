"""createstaff: a staff account in one role group, audited."""

from __future__ import annotations

from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_it_creates_a_clinical_staff_member_with_a_password_from_the_env(monkeypatch):
    monkeypatch.setenv("HEALTHGUARD_STAFF_PASSWORD", "a long unusual passphrase 42")
    out = StringIO()
    call_command(
        "createstaff", "dr-lee", "--group=clinical_staff", "--email=lee@example.org",
        "--noinput", stdout=out,
    )
    user = get_user_model().objects.get(username="dr-lee")
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["clinical_staff"]
    assert user.check_password("a long unusual passphrase 42")
    assert user.has_perm("predictions.view_prediction")
    assert not user.has_perm("predictions.export_auditlog")
    assert "Created staff user dr-lee in clinical_staff" in out.getvalue()


def test_a_compliance_officer_can_export_but_not_read_predictions(monkeypatch):
    monkeypatch.delenv("HEALTHGUARD_STAFF_PASSWORD", raising=False)
    out = StringIO()
    call_command("createstaff", "auditor", "--group=compliance_officer", "--noinput", stdout=out)
    user = get_user_model().objects.get(username="auditor")
    assert not user.has_usable_password()
    assert "changepassword auditor" in out.getvalue()
    assert user.has_perm("predictions.export_auditlog")
    assert user.has_perm("auditlog.view_logentry")
    assert not user.has_perm("predictions.view_prediction")


def test_it_adds_an_existing_user_to_a_group_and_the_change_is_audited(django_user_model):
    user = django_user_model.objects.create_user("existing", password="x" * 20)
    call_command("createstaff", "existing", "--group=clinical_staff", "--noinput",
                 stdout=StringIO())
    user.refresh_from_db()
    assert user.is_staff and user.check_password("x" * 20)
    membership = [
        e for e in LogEntry.objects.get_for_object(user) if "groups" in (e.changes or {})
    ]
    assert membership[0].changes["groups"]["objects"] == ["clinical_staff"]
    assert membership[0].cid.startswith("cmd-createstaff-")


def test_it_rejects_an_unknown_group():
    with pytest.raises(CommandError):
        call_command("createstaff", "x", "--group=admins", "--noinput")


def test_it_rejects_a_weak_password(monkeypatch):
    monkeypatch.setenv("HEALTHGUARD_STAFF_PASSWORD", "password")
    with pytest.raises(CommandError, match="too common"):
        call_command("createstaff", "weak", "--group=clinical_staff", "--noinput")
    assert not get_user_model().objects.filter(username="weak").exists()
