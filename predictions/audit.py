"""The audit trail: what django-auditlog records, who the actor is, and the hash chain.

- `register()` (called from the app's `ready()`) registers `Prediction`, users and groups
  (with their membership and permission changes) with django-auditlog, minus the fields
  that must not reach a log: the owner's raw user id, password hashes, and the owner
  fingerprint, which is masked.
- `AuditActorMiddleware` replaces auditlog's middleware: the actor is read from
  `request.user` when an entry is written, not when the request arrives, so a DRF
  token-authenticated user (known only inside the view) is the actor too.
- The correlation id (`cid`) of every entry is the request id, or a per-command id
  for management commands (`audit_context`).
- Every entry is chained: its HMAC covers the entry's content and the previous
  link's hash (`chain_append`), so `chain_verify` finds an edited, deleted or inserted
  row. Reads of predictions by staff are ACCESS entries (`predictions_accessed`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models.signals import post_save, pre_save
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.request import Request

from predictions.models import GENESIS_HASH, AuditChainLink, AuditChainState, Prediction
from predictions.selectors import can_view_all

logger = logging.getLogger(__name__)

MASK = "[masked]"

# The LogEntry columns an entry's hash covers (all of them but the actor, whose id is
# taken from the chain link: see AuditChainLink).
HASHED_FIELDS: tuple[str, ...] = (
    "id",
    "timestamp",
    "action",
    "content_type_id",
    "object_pk",
    "object_id",
    "object_repr",
    "serialized_data",
    "changes",
    "changes_text",
    "additional_data",
    "cid",
    "remote_addr",
    "remote_port",
    "actor_email",
)

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
    mask = "predictions.audit.mask_value"
    auditlog.register(Prediction, include_fields=list(PREDICTION_AUDITED_FIELDS),
                      mask_fields=["owner_hash"], mask_callable=mask)
    auditlog.register(
        get_user_model(),
        exclude_fields=["password", "last_login"],
        m2m_fields={"groups", "user_permissions"},
    )
    auditlog.register(Group, m2m_fields={"permissions"})
    pre_save.connect(_fill_actor, sender=LogEntry, dispatch_uid="audit_fill_actor")
    post_save.connect(_chain_saved_entry, sender=LogEntry, dispatch_uid="audit_chain_entry")


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


def request_actor(request: HttpRequest | Request | None) -> AbstractBaseUser | None:
    user = getattr(request, "user", None) if request is not None else None
    if isinstance(user, get_user_model()) and user.is_authenticated:
        return user
    return None


def _fill_actor(sender: type[LogEntry], instance: LogEntry, **kwargs: Any) -> None:
    if instance.actor_id is None:
        user = request_actor(_current_request.get())
        if user is not None:
            instance.actor = user
            instance.actor_email = getattr(user, "email", None) or None


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


# --- The hash chain -----------------------------------------------------------------


def chain_key() -> bytes:
    return str(settings.AUDITLOG_CHAIN_KEY).encode()


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"healthguard-audit-chain:" + key).hexdigest()[:16]


def entry_digest(
    *, row: Mapping[str, Any], seq: int, actor_id: int | None, prev_hash: str, key: bytes
) -> str:
    """HMAC-SHA256 of the previous hash and a canonical JSON of the entry.

    `row` comes from `LogEntry.objects.values(*HASHED_FIELDS)` both when the link is
    written and when it is verified, so values are typed the same way both times
    (JSON keys are sorted: PostgreSQL's jsonb does not keep their order).
    """
    content = {name: row[name] for name in HASHED_FIELDS}
    content["timestamp"] = row["timestamp"].astimezone(dt.UTC).isoformat()
    content["actor_id"] = actor_id
    content["seq"] = seq
    payload = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hmac.new(key, f"{prev_hash}\n{payload}".encode(), hashlib.sha256).hexdigest()


def chain_state_locked(key: bytes) -> AuditChainState:
    state = AuditChainState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        # Normally created by the migration; a flushed test database has none.
        AuditChainState.objects.get_or_create(pk=1)
        state = AuditChainState.objects.select_for_update().get(pk=1)
    if not state.key_fingerprint:
        state.key_fingerprint = key_fingerprint(key)
    return state


def chain_append(*, entry_ids: Sequence[int]) -> list[AuditChainLink]:
    """Link entries (already saved) to the end of the chain, in id order.

    The head row is locked for the rest of the surrounding transaction, which
    serialises appends: two writers cannot both link to the same predecessor.
    """
    if not entry_ids:
        return []
    key = chain_key()
    # No savepoint: a failed append must fail the surrounding transaction anyway.
    with transaction.atomic(savepoint=False):
        state = chain_state_locked(key)
        rows = LogEntry.objects.filter(pk__in=entry_ids).order_by("pk")
        links = []
        seq, prev = state.head_seq, state.head_hash
        for row in rows.values(*HASHED_FIELDS, "actor_id"):
            seq += 1
            digest = entry_digest(
                row=row, seq=seq, actor_id=row["actor_id"], prev_hash=prev, key=key
            )
            links.append(
                AuditChainLink(
                    seq=seq,
                    entry_id=row["id"],
                    actor_id=row["actor_id"],
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        AuditChainLink.objects.bulk_create(links)
        state.head_seq, state.head_hash = seq, prev
        state.save(update_fields=["head_seq", "head_hash", "key_fingerprint", "updated_at"])
    return links


def _chain_saved_entry(
    sender: type[LogEntry], instance: LogEntry, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if created and not raw:
        chain_append(entry_ids=[instance.pk])


def entries_write(*, entries: Sequence[LogEntry]) -> list[LogEntry]:
    """Write several entries at once (one INSERT) and chain them, atomically."""
    with transaction.atomic(savepoint=False):
        created = LogEntry.objects.bulk_create(entries)
        chain_append(entry_ids=[e.pk for e in created])
    return created


@dataclass(frozen=True)
class ChainBreak:
    seq: int | None
    entry_id: int | None
    reason: str

    def __str__(self) -> str:
        where = []
        if self.seq is not None:
            where.append(f"link #{self.seq}")
        if self.entry_id is not None:
            where.append(f"entry id {self.entry_id}")
        return f"{', '.join(where) or 'chain'}: {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_seq: int
    head_hash: str
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _existing_user_ids(ids: Iterable[int]) -> set[int]:
    wanted = set(ids)
    if not wanted:
        return set()
    return set(get_user_model().objects.filter(pk__in=wanted).values_list("pk", flat=True))


def chain_verify(*, batch_size: int = 2000, grace_seconds: int = 60) -> ChainReport:
    """Walk the chain from its retained start to the head; report the first break.

    Memory stays constant: links are read in keyset-paginated batches and their
    entries fetched per batch. Entries younger than `grace_seconds` that have no link
    yet are not reported (an entry is committed a moment before its link is).
    """
    key = chain_key()
    started = timezone.now()
    state = AuditChainState.objects.filter(pk=1).first()
    if state is None:
        if AuditChainLink.objects.exists() or LogEntry.objects.exists():
            return ChainReport(0, 0, GENESIS_HASH, ChainBreak(None, None, "chain head row missing"))
        return ChainReport(0, 0, GENESIS_HASH, None)
    report = lambda checked, brk: ChainReport(  # noqa: E731
        checked, state.head_seq, state.head_hash, brk
    )
    if state.key_fingerprint and state.key_fingerprint != key_fingerprint(key):
        return report(0, ChainBreak(None, None, (
            "the chain key differs from the one the chain was written with "
            "(AUDITLOG_CHAIN_KEY, or SECRET_KEY when it is unset, was changed)"
        )))

    expected, prev, checked = state.base_seq + 1, state.base_hash, 0
    while expected <= state.head_seq:
        links = list(
            AuditChainLink.objects.filter(seq__gte=expected, seq__lte=state.head_seq)
            .order_by("seq")[:batch_size]
        )
        if not links:
            break
        rows = {
            row["id"]: row
            for row in LogEntry.objects.filter(pk__in=[link.entry_id for link in links]).values(
                *HASHED_FIELDS, "actor_id"
            )
        }
        gone_actors = {
            link.actor_id
            for link in links
            if link.actor_id is not None
            and link.entry_id in rows
            and rows[link.entry_id]["actor_id"] is None
        }
        still_there = _existing_user_ids(a for a in gone_actors if a is not None)
        for link in links:
            if link.seq != expected:
                return report(checked, ChainBreak(
                    expected, None, f"link missing (the next link found is #{link.seq})"
                ))
            if link.prev_hash != prev:
                return report(checked, ChainBreak(
                    link.seq, link.entry_id, "does not point to the previous link's hash"
                ))
            row = rows.get(link.entry_id)
            if row is None:
                return report(checked, ChainBreak(link.seq, link.entry_id, "entry deleted"))
            if row["actor_id"] != link.actor_id and (
                row["actor_id"] is not None or link.actor_id in still_there
            ):
                return report(checked, ChainBreak(link.seq, link.entry_id, "actor changed"))
            digest = entry_digest(
                row=row, seq=link.seq, actor_id=link.actor_id, prev_hash=prev, key=key
            )
            if not hmac.compare_digest(digest, link.hash):
                return report(checked, ChainBreak(
                    link.seq, link.entry_id, "entry or link modified (hash mismatch)"
                ))
            prev, expected, checked = link.hash, expected + 1, checked + 1

    if expected - 1 != state.head_seq:
        return report(checked, ChainBreak(
            expected, None, f"chain ends before the head (#{state.head_seq}): links removed"
        ))
    if prev != state.head_hash:
        return report(checked, ChainBreak(state.head_seq, None, "head hash does not match"))
    unlinked = (
        LogEntry.objects.filter(timestamp__lt=started - dt.timedelta(seconds=grace_seconds))
        .exclude(models.Exists(AuditChainLink.objects.filter(entry_id=models.OuterRef("pk"))))
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if unlinked is not None:
        return report(checked, ChainBreak(
            None, unlinked, "entry is not in the chain (inserted outside the application?)"
        ))
    return report(checked, None)


def chain_backfill() -> int:
    """Chain entries that have no link yet (entries written before the chain existed)."""
    total = 0
    while True:
        ids = list(
            LogEntry.objects.exclude(
                models.Exists(AuditChainLink.objects.filter(entry_id=models.OuterRef("pk")))
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:2000]
        )
        if not ids:
            return total
        chain_append(entry_ids=ids)
        total += len(ids)


# --- Access logging -----------------------------------------------------------------


def _access_entry(
    *,
    content_type: ContentType,
    object_pk: str,
    object_id: int | None,
    object_repr: str,
    actor: AbstractBaseUser | None,
    remote_addr: str | None,
    additional_data: dict[str, Any] | None = None,
) -> LogEntry:
    return LogEntry(
        content_type=content_type,
        object_pk=object_pk,
        object_id=object_id,
        object_repr=object_repr,
        action=LogEntry.Action.ACCESS,
        actor=actor,
        actor_email=(getattr(actor, "email", None) or None) if actor is not None else None,
        cid=current_cid(),
        remote_addr=remote_addr,
        additional_data=additional_data,
        timestamp=timezone.now(),
    )


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
        _access_entry(
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
) -> LogEntry:
    """The ACCESS entry that every export of the audit log writes before it streams."""
    user = actor if isinstance(actor, get_user_model()) and actor.is_authenticated else None
    entry = _access_entry(
        content_type=ContentType.objects.get_for_model(LogEntry),
        object_pk="export",
        object_id=None,
        object_repr="audit log export",
        actor=user,
        remote_addr=remote_addr,
        additional_data={
            "via": via,
            "format": export_format,
            "filters": {
                k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                for k, v in filters.items()
                if v not in (None, "")
            },
        },
    )
    return entries_write(entries=[entry])[0]
