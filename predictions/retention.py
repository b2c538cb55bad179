"""Retention: deleting predictions (GDPR storage limitation) and old audit entries.

Deleting a prediction writes a DELETE audit entry that names it (message_id) but
does not copy its content: auditlog's own delete entry would keep the clinical
result in the audit log after the record itself was purged. Purging the audit log
removes a prefix of the hash chain and records where the retained chain now starts,
so `verify_auditlog` still passes, and the purge itself is an audit entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Min, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from predictions import audit
from predictions.models import AuditChainLink, Prediction

BATCH = 1000


def predictions_delete(
    *, queryset: QuerySet[Prediction], reason: str, request: HttpRequest | None = None
) -> int:
    """Delete predictions in batches, each with a content-free DELETE audit entry."""
    actor = audit.request_actor(request) if request is not None else None
    remote = audit.remote_addr_of(request) if request is not None else None
    content_type = ContentType.objects.get_for_model(Prediction)
    deleted = 0
    while True:
        batch = list(queryset.order_by("pk").values_list("pk", "message_id")[:BATCH])
        if not batch:
            return deleted
        now = timezone.now()
        entries = [
            LogEntry(
                content_type=content_type,
                object_pk=str(pk),
                object_id=pk,
                object_repr=message_id,
                action=LogEntry.Action.DELETE,
                actor=actor,
                actor_email=(getattr(actor, "email", None) or None) if actor else None,
                cid=audit.current_cid(),
                remote_addr=remote,
                additional_data={"reason": reason},
                timestamp=now,
            )
            for pk, message_id in batch
        ]
        with transaction.atomic(), disable_auditlog():
            Prediction.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
            audit.entries_write(entries=entries)
        deleted += len(batch)


def prediction_purge(*, older_than_days: int) -> int:
    """Delete predictions created more than `older_than_days` days ago."""
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    return predictions_delete(
        queryset=Prediction.objects.filter(created_at__lt=cutoff),
        reason=f"retention: older than {older_than_days} days",
    )


class AuditChainBroken(Exception):
    """The audit chain does not verify; nothing was purged."""


@dataclass(frozen=True)
class AuditPurgeResult:
    entries: int
    through_seq: int
    cutoff: dt.datetime


def auditlog_purge(*, older_than_days: int) -> AuditPurgeResult:
    """Delete audit entries older than the cutoff, as a prefix of the chain.

    The purge stops at the first chained entry that is still young, so the retained
    chain stays contiguous; its new start (seq and hash) is recorded on the head row
    under the same lock that appends take.
    """
    # A purge must not erase the evidence of earlier tampering with the entries it
    # removes: it only runs on a chain that verifies.
    report = audit.chain_verify()
    if report.first_break is not None:
        raise AuditChainBroken(str(report.first_break))
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    with transaction.atomic():
        state = audit.chain_state_locked(audit.chain_key())
        first_young = AuditChainLink.objects.filter(
            seq__gt=state.base_seq,
            entry_id__in=LogEntry.objects.filter(timestamp__gte=cutoff).values("pk"),
        ).aggregate(seq=Min("seq"))["seq"]
        through = (first_young - 1) if first_young is not None else state.head_seq
        entries = 0
        if through > state.base_seq:
            last = AuditChainLink.objects.get(seq=through)
            doomed = AuditChainLink.objects.filter(seq__gt=state.base_seq, seq__lte=through)
            entries, _ = LogEntry.objects.filter(pk__in=doomed.values("entry_id")).delete()
            doomed.delete()
            state.base_seq, state.base_hash = through, last.hash
            state.save(update_fields=["base_seq", "base_hash", "key_fingerprint", "updated_at"])
    details: dict[str, Any] = {
        "reason": f"retention: older than {older_than_days} days",
        "cutoff": cutoff.isoformat(),
        "purged_entries": entries,
        "chain_starts_after_seq": through if entries else None,
    }
    LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(LogEntry),
        object_pk="retention",
        object_repr="audit log retention purge",
        action=LogEntry.Action.DELETE,
        cid=audit.current_cid(),
        additional_data=details,
    )
    return AuditPurgeResult(entries=entries, through_seq=through, cutoff=cutoff)
