"""The tamper-evident hash chain over the audit log.

Every entry is chained: its HMAC covers the entry's content and the previous link's
hash (`chain_append`), so `chain_verify` finds an edited, deleted or inserted row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.utils import timezone

from predictions.models import GENESIS_HASH, AuditChainLink, AuditChainState

# The LogEntry columns an entry's hash covers (all of them but the actor, whose id is
# taken from the chain link: see AuditChainLink). Migration 0003 keeps its own copy.
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

KEY_CHANGED = (
    "the chain key differs from the one the chain was written with "
    "(AUDITLOG_CHAIN_KEY, or SECRET_KEY when it is unset, was changed)"
)


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


# --- Appending ----------------------------------------------------------------------


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


def chain_saved_entry(
    sender: type[LogEntry], instance: LogEntry, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """post_save receiver on LogEntry: chain every entry as it is written."""
    if created and not raw:
        chain_append(entry_ids=[instance.pk])


def entries_write(*, entries: Sequence[LogEntry]) -> list[LogEntry]:
    """Write several entries at once (one INSERT) and chain them, atomically."""
    with transaction.atomic(savepoint=False):
        created = LogEntry.objects.bulk_create(entries)
        chain_append(entry_ids=[e.pk for e in created])
    return created


def _unlinked_entries() -> models.QuerySet[LogEntry]:
    return LogEntry.objects.exclude(
        models.Exists(AuditChainLink.objects.filter(entry_id=models.OuterRef("pk")))
    ).order_by("pk")


def chain_backfill() -> int:
    """Chain entries that have no link yet (a chain rebuilt from scratch)."""
    total = 0
    while True:
        ids = list(_unlinked_entries().values_list("pk", flat=True)[:2000])
        if not ids:
            return total
        chain_append(entry_ids=ids)
        total += len(ids)


# --- Verifying ----------------------------------------------------------------------


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


@dataclass
class _Walk:
    """Where a verification walk stands: the next seq expected and the last hash."""

    expected: int
    prev: str
    checked: int = 0


def _existing_user_ids(ids: Iterable[int]) -> set[int]:
    wanted = set(ids)
    if not wanted:
        return set()
    return set(get_user_model().objects.filter(pk__in=wanted).values_list("pk", flat=True))


def _batch_rows(links: Sequence[AuditChainLink]) -> dict[int, dict[str, Any]]:
    """The linked entries of one batch, by id, as `entry_digest` reads them."""
    return {
        row["id"]: row
        for row in LogEntry.objects.filter(pk__in=[link.entry_id for link in links]).values(
            *HASHED_FIELDS, "actor_id"
        )
    }


def _actors_still_there(
    links: Sequence[AuditChainLink], rows: Mapping[int, Mapping[str, Any]]
) -> set[int]:
    """Of the actors whose entry now has none, those whose account still exists.

    Deleting a user sets its entries' actor to NULL (that verifies); a NULL set by
    hand while the account still exists does not.
    """
    gone = {
        link.actor_id
        for link in links
        if link.actor_id is not None
        and link.entry_id in rows
        and rows[link.entry_id]["actor_id"] is None
    }
    return _existing_user_ids(a for a in gone if a is not None)


def _link_break(
    link: AuditChainLink,
    row: Mapping[str, Any] | None,
    walk: _Walk,
    still_there: set[int],
    key: bytes,
) -> ChainBreak | None:
    """Why this link does not verify, or None when it does."""
    if link.seq != walk.expected:
        return ChainBreak(
            walk.expected, None, f"link missing (the next link found is #{link.seq})"
        )
    if link.prev_hash != walk.prev:
        return ChainBreak(link.seq, link.entry_id, "does not point to the previous link's hash")
    if row is None:
        return ChainBreak(link.seq, link.entry_id, "entry deleted")
    if row["actor_id"] != link.actor_id and (
        row["actor_id"] is not None or link.actor_id in still_there
    ):
        return ChainBreak(link.seq, link.entry_id, "actor changed")
    digest = entry_digest(
        row=row, seq=link.seq, actor_id=link.actor_id, prev_hash=walk.prev, key=key
    )
    if not hmac.compare_digest(digest, link.hash):
        return ChainBreak(link.seq, link.entry_id, "entry or link modified (hash mismatch)")
    return None


def _links_break(
    state: AuditChainState, walk: _Walk, key: bytes, batch_size: int
) -> ChainBreak | None:
    """Walk the links from the retained start to the head, batch by batch."""
    while walk.expected <= state.head_seq:
        links = list(
            AuditChainLink.objects.filter(seq__gte=walk.expected, seq__lte=state.head_seq)
            .order_by("seq")[:batch_size]
        )
        if not links:
            break
        rows = _batch_rows(links)
        still_there = _actors_still_there(links, rows)
        for link in links:
            brk = _link_break(link, rows.get(link.entry_id), walk, still_there, key)
            if brk is not None:
                return brk
            walk.prev, walk.expected, walk.checked = link.hash, walk.expected + 1, walk.checked + 1
    return None


def _head_break(state: AuditChainState, walk: _Walk) -> ChainBreak | None:
    """Whether the walk ended exactly at the head row's seq and hash."""
    if walk.expected - 1 != state.head_seq:
        return ChainBreak(
            walk.expected, None, f"chain ends before the head (#{state.head_seq}): links removed"
        )
    if walk.prev != state.head_hash:
        return ChainBreak(state.head_seq, None, "head hash does not match")
    return None


def _unlinked_break(before: dt.datetime) -> ChainBreak | None:
    """An entry older than `before` that is in no link (written behind the app's back)."""
    unlinked = (
        _unlinked_entries().filter(timestamp__lt=before).values_list("pk", flat=True).first()
    )
    if unlinked is None:
        return None
    return ChainBreak(
        None, unlinked, "entry is not in the chain (inserted outside the application?)"
    )


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
        missing = AuditChainLink.objects.exists() or LogEntry.objects.exists()
        brk = ChainBreak(None, None, "chain head row missing") if missing else None
        return ChainReport(0, 0, GENESIS_HASH, brk)
    walk = _Walk(expected=state.base_seq + 1, prev=state.base_hash)
    if state.key_fingerprint and state.key_fingerprint != key_fingerprint(key):
        brk = ChainBreak(None, None, KEY_CHANGED)
    else:
        brk = (
            _links_break(state, walk, key, batch_size)
            or _head_break(state, walk)
            or _unlinked_break(started - dt.timedelta(seconds=grace_seconds))
        )
    return ChainReport(walk.checked, state.head_seq, state.head_hash, brk)
