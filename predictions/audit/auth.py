"""Entries for credentials handed out: `POST /api/token` (issued or refused)."""

from __future__ import annotations

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType

from predictions.audit.chain import entries_write
from predictions.audit.trail import entry_build


def token_requested(
    *, user: AbstractBaseUser | None, remote_addr: str | None, created: bool = False
) -> LogEntry:
    """One ACCESS entry on the user account: a token was issued (user given) or the
    credentials were refused (user None; the username tried is not recorded, since it
    may be someone's password typed in the wrong field)."""
    entry = entry_build(
        action=LogEntry.Action.ACCESS,
        content_type=ContentType.objects.get_for_model(get_user_model()),
        object_pk=str(user.pk) if user is not None else "",
        object_id=user.pk if user is not None else None,
        object_repr="api token",
        actor=user,
        remote_addr=remote_addr,
        additional_data={
            "via": "api",
            "event": "token_issued" if user is not None else "token_refused",
            **({"token_created": created} if user is not None else {}),
        },
    )
    return entries_write(entries=[entry])[0]
