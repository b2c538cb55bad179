"""Retention: deleting predictions (GDPR storage limitation).

Deleting a prediction writes a DELETE audit entry that names it (message_id) but
does not copy its content: auditlog's own delete entry would keep the clinical
result in the audit log after the record itself was purged. (Purging old audit
entries is `predictions.audit.retention`.)
"""

from __future__ import annotations

import datetime as dt

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from predictions.audit.chain import entries_write
from predictions.audit.trail import entry_build, remote_addr_of, request_actor
from predictions.models import Prediction

BATCH = 1000


def predictions_delete(
    *, queryset: QuerySet[Prediction], reason: str, request: HttpRequest | None = None
) -> int:
    """Delete predictions in batches, each with a content-free DELETE audit entry."""
    actor = request_actor(request) if request is not None else None
    remote = remote_addr_of(request) if request is not None else None
    content_type = ContentType.objects.get_for_model(Prediction)
    deleted = 0
    while True:
        batch = list(queryset.order_by("pk").values_list("pk", "message_id")[:BATCH])
        if not batch:
            return deleted
        now = timezone.now()
        entries = [
            entry_build(
                action=LogEntry.Action.DELETE,
                content_type=content_type,
                object_pk=str(pk),
                object_id=pk,
                object_repr=message_id,
                actor=actor,
                remote_addr=remote,
                additional_data={"reason": reason},
                timestamp=now,
            )
            for pk, message_id in batch
        ]
        with transaction.atomic(), disable_auditlog():
            Prediction.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
            entries_write(entries=entries)
        deleted += len(batch)


def prediction_purge(*, older_than_days: int) -> int:
    """Delete predictions created more than `older_than_days` days ago."""
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    return predictions_delete(
        queryset=Prediction.objects.filter(created_at__lt=cutoff),
        reason=f"retention: older than {older_than_days} days",
    )
