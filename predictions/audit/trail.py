"""What django-auditlog records, who the actor is, and each entry's correlation id.

- `register()` (called from the app's `ready()`) registers `Prediction`, users and groups
  (with their membership and permission changes) with django-auditlog, minus the fields
  that must not reach a log: the owner's raw user id, password hashes, and the owner
  fingerprint, which is masked.
- `AuditActorMiddleware` replaces auditlog's middleware: the actor is read from
  `request.user` when an entry is written, not when the request arrives, so a DRF
  token-authenticated user (known only inside the view) is the actor too.
- The correlation id (`cid`) of every entry is the request id, or a per-command id
  for management commands (`audit_context`).
- `entry_build` is the one place an entry is built by hand (ACCESS entries, the
  content-free DELETE entries of retention).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_save, pre_save
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from predictions.audit import chain
from predictions.models import Prediction

if TYPE_CHECKING:  # DRF's Request in type hints only: no DRF import at run time
    from rest_framework.request import Request

MASK = "[masked]"

_current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "audit_request", default=None
)
_command_cid: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "audit_command_cid", default=None
)


# --- Registration -------------------------------------------------------------------


def mask_value(value: str) -> str:
    """AUDITLOG mask callable: hide the whole value (half an HMAC still links rows)."""
    return MASK if value not in ("", "None") else value


# What a prediction's audit entry records: who/what/when, never the clinical content
# (score, level, confidence, recommendation, Hb estimate) nor the patient's label, which
# live only in the row itself, so an erased or purged result leaves no health data in
# the longer-kept trail. An allow-list: a field added later stays out until listed.
PREDICTION_AUDITED_FIELDS: tuple[str, ...] = (
    "message_id",
    "created_at",
    "condition",
    "site",
    "segmentation",
    "image_sha256",
    "image_size_bytes",
    "image_width",
    "image_height",
    "processing_time_ms",
    "model_version",
    "request_id",
    "owner_hash",
)


def register() -> None:
    """Register the audited models and connect the chain's receivers (idempotent)."""
    mask = "predictions.audit.trail.mask_value"
    auditlog.register(Prediction, include_fields=list(PREDICTION_AUDITED_FIELDS),
                      mask_fields=["owner_hash"], mask_callable=mask)
    auditlog.register(
        get_user_model(),
        exclude_fields=["password", "last_login"],
        m2m_fields={"groups", "user_permissions"},
    )
    auditlog.register(Group, m2m_fields={"permissions"})
    pre_save.connect(_fill_actor, sender=LogEntry, dispatch_uid="audit_fill_actor")
    post_save.connect(
        chain.chain_saved_entry, sender=LogEntry, dispatch_uid="audit_chain_entry"
    )


# --- Actor and correlation id -------------------------------------------------------


class AuditActorMiddleware(AuditlogMiddleware):
    """auditlog's middleware, plus the request kept at hand for the actor and the cid.

    auditlog resolves the actor before the view runs; DRF authenticates tokens inside
    the view (and then sets `request.user` on the Django request), so `_fill_actor`
    looks at `request.user` again when each entry is saved.
    """

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current_request.set(request)
        try:
            return super().__call__(request)
        finally:
            _current_request.reset(token)


def user_or_none(user: Any) -> AbstractBaseUser | None:
    """`user` when it is a signed-in account, else None (anonymous, missing)."""
    if isinstance(user, get_user_model()) and user.is_authenticated:
        return user
    return None


def request_actor(request: HttpRequest | Request | None) -> AbstractBaseUser | None:
    return user_or_none(getattr(request, "user", None) if request is not None else None)


def _email_of(user: AbstractBaseUser | None) -> str | None:
    return (getattr(user, "email", None) or None) if user is not None else None


def _fill_actor(sender: type[LogEntry], instance: LogEntry, **kwargs: Any) -> None:
    request = _current_request.get()
    if instance.actor_id is None:
        user = request_actor(request)
        if user is not None:
            instance.actor = user
            instance.actor_email = _email_of(user)
    # The channel of entries auditlog writes itself (a prediction created, a user
    # changed), so that every entry says where it came from (see channel_of).
    via = _via_of_path(request.path) if request is not None else (
        "command" if _command_cid.get() else None
    )
    if via is not None:
        extra = instance.additional_data if isinstance(instance.additional_data, dict) else {}
        if "via" not in extra:
            instance.additional_data = {**extra, "via": via}


CHANNELS = ("page", "api", "admin", "command")


def _via_of_path(path: str) -> str:
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "page"


def channel_of(entry: LogEntry) -> str:
    """page, api, admin or command: the entry's own `via`, else (entries written before
    the channel was recorded) what its cid tells: a command's cid starts with "cmd-"."""
    extra = entry.additional_data if isinstance(entry.additional_data, dict) else {}
    via = extra.get("via")
    if via in CHANNELS:
        return str(via)
    if (entry.cid or "").startswith("cmd-"):
        return "command"
    return "unknown"


def current_cid() -> str | None:
    """AUDITLOG_CID_GETTER: the request id inside a request, a command's own id in a
    management command, else None."""
    request = _current_request.get()
    if request is not None:
        return getattr(request, "request_id", None)
    return _command_cid.get()


@contextlib.contextmanager
def audit_context(*, name: str) -> Iterator[str]:
    """Give the audit entries written inside (by a management command) one cid."""
    cid = f"cmd-{name}-{uuid.uuid4().hex[:12]}"
    token = _command_cid.set(cid)
    try:
        yield cid
    finally:
        _command_cid.reset(token)


def remote_addr_of(request: HttpRequest | Request) -> str | None:
    return AuditlogMiddleware._get_remote_addr(request)


# --- Entries built by hand ----------------------------------------------------------


def entry_build(
    *,
    action: int,
    content_type: ContentType,
    object_pk: str,
    object_id: int | None,
    object_repr: str,
    actor: AbstractBaseUser | None = None,
    remote_addr: str | None = None,
    additional_data: dict[str, Any] | None = None,
    timestamp: dt.datetime | None = None,
) -> LogEntry:
    """An unsaved entry with the actor's email, the current cid and (unless given) the
    time now."""
    return LogEntry(
        content_type=content_type,
        object_pk=object_pk,
        object_id=object_id,
        object_repr=object_repr,
        action=action,
        actor=actor,
        actor_email=_email_of(actor),
        cid=current_cid(),
        remote_addr=remote_addr,
        additional_data=additional_data,
        timestamp=timestamp or timezone.now(),
    )
