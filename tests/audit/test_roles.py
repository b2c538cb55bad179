"""The roles data migration: two groups with exactly their permissions, idempotent."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db
migration = importlib.import_module("predictions.migrations.0003_roles_and_audit_chain_head")


def perms_of(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


def test_the_groups_have_exactly_their_permissions():
    assert perms_of("clinical_staff") == {"predictions.view_prediction"}
    assert perms_of("compliance_officer") == {
        "auditlog.view_logentry",
        "predictions.export_auditlog",
    }


def test_running_the_roles_migration_again_changes_nothing():
    Group.objects.get(name="clinical_staff").permissions.clear()  # drifted by hand
    migration.create_roles(apps, None)
    migration.create_roles(apps, None)
    assert Group.objects.filter(name__in=migration.ROLES).count() == 2
    assert perms_of("clinical_staff") == {"predictions.view_prediction"}


def test_running_the_chain_migration_again_changes_nothing(db):
    from predictions.models import AuditChainState
    from tests.factories import PredictionFactory

    PredictionFactory.create()
    before = AuditChainState.objects.values().get()
    migration.create_chain_head_and_backfill(apps, None)
    after = AuditChainState.objects.values().get()
    assert (after["head_seq"], after["head_hash"]) == (before["head_seq"], before["head_hash"])
