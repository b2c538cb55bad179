"""Purging old audit entries (storage limitation) without breaking the chain.

Purging removes a prefix of the hash chain and records where the retained chain now
starts, so `verify_auditlog` still passes, and the purge itself is an audit entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from predictions.audit.chain import chain_key, chain_state_locked, chain_verify
from predictions.audit.trail import entry_build
from predictions.models import AuditChainLink


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
    report = chain_verify()
    if report.first_break is not None:
        raise AuditChainBroken(str(report.first_break))
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    with transaction.atomic():
        state = chain_state_locked(chain_key())
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
    # Saved one by one: the post_save receiver chains it like any other entry.
    entry_build(
        action=LogEntry.Action.DELETE,
        content_type=ContentType.objects.get_for_model(LogEntry),
        object_pk="retention",
        object_id=None,
        object_repr="audit log retention purge",
        additional_data=details,
    ).save()
    return AuditPurgeResult(entries=entries, through_seq=through, cutoff=cutoff)
