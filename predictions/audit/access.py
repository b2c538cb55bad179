"""ACCESS entries: staff reading predictions, and every export of the audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest

from predictions.audit.chain import entries_write
from predictions.audit.trail import entry_build, remote_addr_of, request_actor, user_or_none
from predictions.models import Prediction

if TYPE_CHECKING:  # DRF's Request in type hints only: no DRF import at run time
    from rest_framework.request import Request
from predictions.selectors import can_view_all


def predictions_accessed(
    *,
    request: HttpRequest | Request,
    predictions: Iterable[Prediction],
    via: str,
) -> list[LogEntry]:
    """One ACCESS entry per prediction shown to staff (in one INSERT).

    Patients reading their own results are not logged: the trail is about staff
    reading other people's health data.
    """
    predictions = list(predictions)
    if not predictions or not can_view_all(request.user):
        return []
    actor = request_actor(request)
    content_type = ContentType.objects.get_for_model(Prediction)
    remote = remote_addr_of(request)
    entries = [
        entry_build(
            action=LogEntry.Action.ACCESS,
            content_type=content_type,
            object_pk=str(p.pk),
            object_id=p.pk,
            object_repr=str(p),
            actor=actor,
            remote_addr=remote,
            additional_data={"via": via},
        )
        for p in predictions
    ]
    return entries_write(entries=entries)


def export_logged(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    export_format: str,
    filters: Mapping[str, Any],
    via: str,
    remote_addr: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> LogEntry:
    """The ACCESS entry that every export of the audit log writes before it streams.

    `extra` adds facts about the caller (the command's OS user and command line)."""
    entry = entry_build(
        action=LogEntry.Action.ACCESS,
        content_type=ContentType.objects.get_for_model(LogEntry),
        object_pk="export",
        object_id=None,
        object_repr="audit log export",
        actor=user_or_none(actor),
        remote_addr=remote_addr,
        additional_data={
            "via": via,
            "format": export_format,
            "filters": {
                k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                for k, v in filters.items()
                if v not in (None, "")
            },
            **(extra or {}),
        },
    )
    return entries_write(entries=[entry])[0]


def predictions_exported(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    filters: str,
    via: str,
    remote_addr: str | None = None,
) -> LogEntry:
    """The ACCESS entry for an export of predictions (written before it streams): who,
    from where, and the filters (the admin's query string), not the rows."""
    entry = entry_build(
        action=LogEntry.Action.ACCESS,
        content_type=ContentType.objects.get_for_model(Prediction),
        object_pk="export",
        object_id=None,
        object_repr="predictions export",
        actor=user_or_none(actor),
        remote_addr=remote_addr,
        additional_data={"via": via, "format": "csv", "filters": filters},
    )
    return entries_write(entries=[entry])[0]
