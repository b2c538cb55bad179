"""The tamper-evident hash chain over the audit log.

Every entry gets a link row in its own transaction (`chain_record`), holding the entry's
seal: an HMAC of its content and actor under the chain key. Linking gives the row its
place: `seq`, and `hash`, an HMAC of the content and of the previous link's hash. So
`chain_verify` finds an edited, deleted, inserted or reordered entry, a truncated chain,
a rewritten actor and a changed key.

Linking is either inline (in the writer's transaction, under the head row's lock: every
writer of the fleet waits for the one before) or deferred (settings.AUDITLOG_CHAIN_LINKING):
the writer then pays one INSERT and takes no lock, and `chain_link_pending`, run by the
linker (predictions/audit/linker.py) every AUDITLOG_CHAIN_LINK_INTERVAL_MS, links what
was sealed since, in batches, one linker at a time (a PostgreSQL advisory lock). An entry
is unlinked for at most that interval plus one pass while a linker runs; `chain_verify`
checks the seals of unlinked entries too, and reports one still unlinked after its grace.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
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

# pg_try_advisory_xact_lock key of the linker: one linker links at a time, the others
# skip their pass instead of queueing ("hgAU" in ASCII).
LINKER_LOCK_ID = 0x68674155


def chain_key() -> bytes:
    return str(settings.AUDITLOG_CHAIN_KEY).encode()


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"healthguard-audit-chain:" + key).hexdigest()[:16]


def linking_deferred() -> bool:
    return bool(settings.AUDITLOG_CHAIN_LINKING == "deferred")


def _payload(row: Mapping[str, Any], *, actor_id: int | None, seq: int | None) -> str:
    content = {name: row[name] for name in HASHED_FIELDS}
    content["timestamp"] = row["timestamp"].astimezone(dt.UTC).isoformat()
    content["actor_id"] = actor_id
    if seq is not None:
        content["seq"] = seq
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def entry_digest(
    *, row: Mapping[str, Any], seq: int, actor_id: int | None, prev_hash: str, key: bytes
) -> str:
    """HMAC-SHA256 of the previous hash and a canonical JSON of the entry: the link hash.

    `row` is what `LogEntry.objects.values(*HASHED_FIELDS)` gives (or `entry_row` of the
    saved instance, typed the same way), so values are typed the same way when the link
    is written and when it is verified (JSON keys are sorted: PostgreSQL's jsonb does not
    keep their order).
    """
    payload = _payload(row, actor_id=actor_id, seq=seq)
    return hmac.new(key, f"{prev_hash}\n{payload}".encode(), hashlib.sha256).hexdigest()


def entry_seal(*, row: Mapping[str, Any], actor_id: int | None, key: bytes) -> str:
    """HMAC-SHA256 of the entry alone: written with the entry, before it has a place."""
    payload = _payload(row, actor_id=actor_id, seq=None)
    return hmac.new(key, f"seal\n{payload}".encode(), hashlib.sha256).hexdigest()


@cache
def _hashed_fields() -> tuple[models.Field[Any, Any], ...]:
    return tuple(LogEntry._meta.get_field(name) for name in HASHED_FIELDS)


def entry_row(entry: LogEntry) -> dict[str, Any]:
    """A saved entry's hashed values as the database gives them back (see entry_digest).

    JSON columns go through their own encoder and decoder (tuples become lists, keys
    strings), the others through the field's `to_python` (an IPv6 address normalised,
    a number given as text made an int): no round trip to read the row back.
    """
    row: dict[str, Any] = {}
    for field in _hashed_fields():
        value = getattr(entry, field.attname)
        if isinstance(field, models.JSONField):
            if value is not None:
                value = json.loads(json.dumps(value, cls=field.encoder), cls=field.decoder)
        elif value is not None:
            value = field.to_python(value)
        row[field.attname] = value
    return row


# --- Recording and linking ----------------------------------------------------------


def chain_state_locked(key: bytes) -> AuditChainState:
    state = AuditChainState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        # Normally created by the migration; a flushed test database has none.
        AuditChainState.objects.get_or_create(pk=1)
        state = AuditChainState.objects.select_for_update().get(pk=1)
    if not state.key_fingerprint:
        state.key_fingerprint = key_fingerprint(key)
    return state


def _state_save(state: AuditChainState) -> None:
    state.save(update_fields=["head_seq", "head_hash", "key_fingerprint", "updated_at"])


def _links_place(
    state: AuditChainState, pairs: Iterable[tuple[AuditChainLink, Mapping[str, Any]]], key: bytes
) -> None:
    """Give each link the next place after the head, in order, and move the head."""
    seq, prev = state.head_seq, state.head_hash
    for link, row in pairs:
        seq += 1
        link.seq, link.prev_hash = seq, prev
        link.hash = entry_digest(row=row, seq=seq, actor_id=link.actor_id, prev_hash=prev, key=key)
        prev = link.hash
    state.head_seq, state.head_hash = seq, prev


def chain_record(*, entries: Sequence[LogEntry]) -> list[AuditChainLink]:
    """Seal entries just saved, in their transaction; link them too when inline.

    Deferred: one INSERT and no lock. Inline: the head row is locked for the rest of the
    surrounding transaction, which serialises writers (two cannot both link to the same
    predecessor).
    """
    if not entries:
        return []
    key = chain_key()
    pairs = []
    for entry in sorted(entries, key=lambda e: e.pk):
        row = entry_row(entry)
        seal = entry_seal(row=row, actor_id=entry.actor_id, key=key)
        pairs.append((AuditChainLink(entry_id=entry.pk, actor_id=entry.actor_id, seal=seal), row))
    links = [link for link, _ in pairs]
    # No savepoint: a failed append must fail the surrounding transaction anyway.
    with transaction.atomic(savepoint=False):
        if linking_deferred():
            AuditChainLink.objects.bulk_create(links)
        else:
            state = chain_state_locked(key)
            _links_place(state, pairs, key)
            AuditChainLink.objects.bulk_create(links)
            _state_save(state)
    return links


def chain_saved_entry(
    sender: type[LogEntry], instance: LogEntry, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """post_save receiver on LogEntry: record every entry in the chain as it is written."""
    if created and not raw:
        chain_record(entries=[instance])


def entries_write(*, entries: Sequence[LogEntry]) -> list[LogEntry]:
    """Write several entries at once (one INSERT) and record them, atomically."""
    with transaction.atomic(savepoint=False):
        created = LogEntry.objects.bulk_create(entries)
        chain_record(entries=created)
    return created


def _linker_lock() -> bool:
    """This transaction's turn to link (PostgreSQL); elsewhere the head row's lock is it."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LINKER_LOCK_ID])
        return bool(cursor.fetchone()[0])


def _pending_links(*, after: int, batch_size: int) -> list[AuditChainLink]:
    """The next batch of link rows not linked yet, in entry id order (keyset-paginated)."""
    return list(
        AuditChainLink.objects.filter(seq__isnull=True, entry_id__gt=after)
        .order_by("entry_id")[:batch_size]
    )


def _links_update(links: Sequence[AuditChainLink]) -> None:
    """Write the places of linked rows: one UPDATE ... FROM (VALUES ...) on PostgreSQL.

    (Django's bulk_update builds a CASE with a branch per row for every column, which
    PostgreSQL evaluates row by row: a pass of 500 entries took ~0.5 s that way.)
    """
    if not links:
        return
    if connection.vendor != "postgresql":
        AuditChainLink.objects.bulk_update(links, ["seq", "prev_hash", "hash"], batch_size=500)
        return
    table = AuditChainLink._meta.db_table
    for start in range(0, len(links), 1000):
        chunk = links[start : start + 1000]
        rows = ", ".join(["(%s::bigint, %s::bigint, %s, %s)"] * len(chunk))
        params: list[Any] = []
        for link in chunk:
            params += [link.entry_id, link.seq, link.prev_hash, link.hash]
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{table}" AS l SET seq = v.seq, prev_hash = v.prev_hash, '  # noqa: S608
                f"hash = v.hash FROM (VALUES {rows}) AS v(entry_id, seq, prev_hash, hash) "
                "WHERE l.entry_id = v.entry_id AND l.seq IS NULL",
                params,
            )
            if cursor.rowcount != len(chunk):
                # Only the linker holding the lock links; anything else is a bug to stop on.
                raise RuntimeError(
                    f"audit chain: {len(chunk) - cursor.rowcount} links changed under the linker"
                )


@dataclass(frozen=True)
class LinkPass:
    linked: int
    refused: int  # unlinked entries whose seal does not verify: left for verify to report
    busy: bool  # another linker held the lock: nothing was done
    oldest: dt.datetime | None = None  # timestamp of the oldest entry linked


def chain_link_pending(*, batch_size: int = 2000) -> LinkPass:
    """Link every sealed entry not linked yet, in entry id order, batch by batch.

    Entries committed late with a smaller id than one already linked are linked in the
    next pass: the chain's order is the order of linking. An entry whose seal does not
    verify (edited or forged before it was linked) is left unlinked for `chain_verify`.
    """
    key = chain_key()
    linked = refused = 0
    oldest: dt.datetime | None = None
    after = -1
    while True:
        with transaction.atomic():
            if not _linker_lock():
                return LinkPass(linked, refused, busy=True, oldest=oldest)
            state = chain_state_locked(key)
            pending = _pending_links(after=after, batch_size=batch_size)
            if not pending:
                return LinkPass(linked, refused, busy=False, oldest=oldest)
            rows = _batch_rows([link.entry_id for link in pending])
            still_there = _actors_still_there(pending, rows)
            # The same rule as verify's: linked only when the entry is as it was sealed.
            pairs = [
                (link, rows[link.entry_id])
                for link in pending
                if _entry_break(link, rows.get(link.entry_id), still_there, key) is None
            ]
            _links_place(state, pairs, key)
            _links_update([link for link, _ in pairs])
            _state_save(state)
        linked += len(pairs)
        refused += len(pending) - len(pairs)
        after = pending[-1].entry_id
        stamps = [row["timestamp"] for _, row in pairs] + ([oldest] if oldest else [])
        oldest = min(stamps, default=None)
        if len(pending) < batch_size:
            return LinkPass(linked, refused, busy=False, oldest=oldest)


def _unlinked_entries() -> models.QuerySet[LogEntry]:
    return LogEntry.objects.exclude(
        models.Exists(AuditChainLink.objects.filter(entry_id=models.OuterRef("pk")))
    ).order_by("pk")


def chain_backfill() -> int:
    """Record and link entries that have no link row (a chain rebuilt from scratch)."""
    total = 0
    while True:
        entries = list(_unlinked_entries()[:2000])
        if not entries:
            chain_link_pending()  # deferred: what was just recorded (inline: nothing left)
            return total
        with transaction.atomic():
            chain_record(entries=entries)
        total += len(entries)


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
    unlinked: int = 0  # sealed, seal checked, not linked yet (younger than the grace)

    @property
    def ok(self) -> bool:
        return self.first_break is None


@dataclass
class _Walk:
    """Where a verification walk stands: the next seq expected and the last hash."""

    expected: int
    prev: str
    checked: int = 0
    unlinked: int = 0


def _existing_user_ids(ids: Iterable[int]) -> set[int]:
    wanted = set(ids)
    if not wanted:
        return set()
    return set(get_user_model().objects.filter(pk__in=wanted).values_list("pk", flat=True))


def _batch_rows(entry_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The entries of one batch, by id, as `entry_digest` reads them."""
    return {
        row["id"]: row
        for row in LogEntry.objects.filter(pk__in=entry_ids).values(*HASHED_FIELDS, "actor_id")
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


def _entry_break(
    link: AuditChainLink, row: Mapping[str, Any] | None, still_there: set[int], key: bytes
) -> str | None:
    """Why this link's entry is not as it was sealed, or None when it is."""
    if row is None:
        return "entry deleted"
    if row["actor_id"] != link.actor_id and (
        row["actor_id"] is not None or link.actor_id in still_there
    ):
        return "actor changed"
    seal = entry_seal(row=row, actor_id=link.actor_id, key=key)
    if not hmac.compare_digest(seal, link.seal):
        return "entry or link modified (seal mismatch)"
    return None


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
    reason = _entry_break(link, row, still_there, key)
    if reason is not None:
        return ChainBreak(link.seq, link.entry_id, reason)
    assert row is not None
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
        rows = _batch_rows([link.entry_id for link in links])
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


def _pending_break(
    walk: _Walk, before: dt.datetime, key: bytes, batch_size: int
) -> ChainBreak | None:
    """Check the seal of every entry not linked yet; none may be older than `before`."""
    after = -1
    while True:
        links = _pending_links(after=after, batch_size=batch_size)
        if not links:
            return None
        rows = _batch_rows([link.entry_id for link in links])
        still_there = _actors_still_there(links, rows)
        for link in links:
            row = rows.get(link.entry_id)
            reason = _entry_break(link, row, still_there, key)
            if reason is not None:
                return ChainBreak(None, link.entry_id, f"{reason} before it was linked")
            assert row is not None
            if row["timestamp"] < before:
                return ChainBreak(
                    None,
                    link.entry_id,
                    "sealed but still not linked after the grace period (is a linker "
                    "running? AUDITLOG_CHAIN_LINKING=deferred needs gunicorn's workers "
                    "or `manage.py link_auditlog`)",
                )
            walk.unlinked += 1
        after = links[-1].entry_id


def _unlinked_break(before: dt.datetime) -> ChainBreak | None:
    """An entry older than `before` with no link row (written behind the app's back)."""
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
    entries fetched per batch. Entries not linked yet have their seal checked; one
    older than `grace_seconds` is a break (no linker ran), and so is an entry with no
    link row at all (the row is written in the entry's transaction; the grace covers
    a transaction still open when the walk started).
    """
    key = chain_key()
    started = timezone.now()
    before = started - dt.timedelta(seconds=grace_seconds)
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
            or _pending_break(walk, before, key, batch_size)
            or _unlinked_break(before)
        )
    return ChainReport(walk.checked, state.head_seq, state.head_hash, brk, walk.unlinked)
