"""Retention: purge_predictions (GDPR storage limit) and the audit log's own purge."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from django.utils import timezone

from predictions.models import AuditChainLink, AuditChainState, Prediction
from tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


def age(obj_or_qs, days: int) -> None:
    qs = obj_or_qs if hasattr(obj_or_qs, "update") else type(obj_or_qs).objects.filter(
        pk=obj_or_qs.pk
    )
    qs.update(created_at=timezone.now() - dt.timedelta(days=days))


def verify() -> str:
    out = StringIO()
    call_command("verify_auditlog", "--grace-seconds=0", stdout=out)
    return out.getvalue()


def test_purge_predictions_deletes_only_the_old_ones_and_audits_each(db):
    old = PredictionFactory.create_batch(3, risk_level="high")
    young = PredictionFactory.create()
    age(Prediction.objects.filter(pk__in=[p.pk for p in old]), 400)
    out = StringIO()
    call_command("purge_predictions", "--older-than=365", stdout=out)
    assert "deleted 3 predictions" in out.getvalue()
    assert list(Prediction.objects.values_list("pk", flat=True)) == [young.pk]
    deletes = LogEntry.objects.filter(action=LogEntry.Action.DELETE)
    assert sorted(deletes.values_list("object_repr", flat=True)) == sorted(
        p.message_id for p in old
    )
    for entry in deletes:
        # The purge must not copy the clinical result into the log it keeps longer.
        assert entry.changes is None
        assert entry.additional_data == {"reason": "retention: older than 365 days"}
        assert entry.cid.startswith("cmd-purge_predictions-")
    assert "links verified" in verify()


def test_purge_predictions_needs_a_positive_age(db):
    with pytest.raises(CommandError):
        call_command("purge_predictions", "--older-than=0")


def test_purge_predictions_with_nothing_old_deletes_nothing(db):
    PredictionFactory.create()
    call_command("purge_predictions", "--older-than=30", stdout=StringIO())
    assert Prediction.objects.count() == 1


def test_purge_auditlog_removes_old_entries_and_the_chain_still_verifies(db, settings):
    settings.AUDITLOG_RETENTION_DAYS = 180
    PredictionFactory.create_batch(4)
    entries = list(LogEntry.objects.order_by("pk"))
    old = entries[:3]
    LogEntry.objects.filter(pk__in=[e.pk for e in old]).update(
        timestamp=timezone.now() - dt.timedelta(days=200)
    )
    _rechain()  # the update above changed hashed content: chain it afresh
    out = StringIO()
    call_command("purge_auditlog", stdout=out)
    assert "deleted 3 audit entries older than 180 days" in out.getvalue()
    assert not LogEntry.objects.filter(pk__in=[e.pk for e in old]).exists()
    state = AuditChainState.objects.get()
    assert state.base_seq == 3
    purge = LogEntry.objects.get(object_pk="retention")
    assert purge.additional_data["purged_entries"] == 3
    assert "links verified" in verify()


def test_purge_auditlog_keeps_young_entries_after_an_old_one_out_of_order(db):
    PredictionFactory.create_batch(3)
    first, second, third = LogEntry.objects.order_by("pk")
    # Only the second is old: the purge removes a prefix of the chain, so nothing goes.
    LogEntry.objects.filter(pk=second.pk).update(timestamp=timezone.now() - dt.timedelta(days=900))
    _rechain()
    call_command("purge_auditlog", "--older-than=30", stdout=StringIO())
    assert LogEntry.objects.filter(pk__in=[first.pk, second.pk, third.pk]).count() == 3
    assert "links verified" in verify()


def test_a_purge_refuses_to_run_on_a_broken_chain(db):
    PredictionFactory.create_batch(3)
    LogEntry.objects.update(timestamp=timezone.now() - dt.timedelta(days=900))
    _rechain()
    tampered = LogEntry.objects.order_by("pk")[1]
    tampered.delete()
    # Purging would delete the tampered entry's link too, and with it the evidence.
    with pytest.raises(CommandError, match="refusing to purge.*entry deleted"):
        call_command("purge_auditlog", "--older-than=30", stdout=StringIO())
    assert LogEntry.objects.count() == 2
    assert AuditChainLink.objects.count() == 3


def _rechain() -> None:
    """Rebuild the chain after a test moved timestamps (a test-only shortcut)."""
    from predictions.audit import chain as audit

    AuditChainLink.objects.all().delete()
    AuditChainState.objects.all().delete()
    audit.chain_backfill()
