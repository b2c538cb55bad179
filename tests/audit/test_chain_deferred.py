"""Deferred linking: writers seal their entries with one INSERT and no lock; the linker
links them. Unlinked entries are checked too, and one left unlinked is reported."""

from __future__ import annotations

import datetime as dt
import threading
import time
from io import StringIO
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from predictions.audit import chain, linker
from predictions.audit import trail as audit
from predictions.models import AuditChainLink, AuditChainState
from tests.audit.conftest import db_thread
from tests.factories import PredictionFactory, UserFactory
from tests.optional import unavailable

pytestmark = pytest.mark.django_db


@pytest.fixture
def deferred(settings):
    settings.AUDITLOG_CHAIN_LINKING = "deferred"


def verify(grace: int = 0) -> str:
    out = StringIO()
    call_command("verify_auditlog", f"--grace-seconds={grace}", stdout=out)
    return out.getvalue()


def broken(grace: int = 0) -> str:
    with pytest.raises(CommandError) as exc:
        verify(grace)
    return str(exc.value)


def chain_statements(queries: list[dict[str, str]]) -> list[str]:
    return [q["sql"] for q in queries if "auditchain" in q["sql"]]


def test_a_deferred_write_seals_with_one_insert_and_takes_no_lock(deferred):
    PredictionFactory.create()  # content types, caches
    with CaptureQueriesContext(connection) as ctx:
        PredictionFactory.create()
    statements = chain_statements(ctx.captured_queries)
    assert len(statements) == 1 and statements[0].startswith("INSERT INTO")
    # The head row (the one lock every inline writer waits for) is not even read.
    assert not any("auditchainstate" in q["sql"] for q in ctx.captured_queries)
    link = AuditChainLink.objects.order_by("-entry_id")[0]
    assert link.seq is None and len(link.seal) == 64 and link.hash == ""


def test_an_inline_write_locks_the_head_and_links_at_once(settings):
    settings.AUDITLOG_CHAIN_LINKING = "inline"
    PredictionFactory.create()
    with CaptureQueriesContext(connection) as ctx:
        PredictionFactory.create()
    statements = chain_statements(ctx.captured_queries)
    # lock the head, insert the link (sealed and placed), move the head
    assert len(statements) == 3 and "auditchainstate" in statements[0]
    if connection.vendor == "postgresql":
        assert "FOR UPDATE" in statements[0]
    assert AuditChainLink.objects.filter(seq__isnull=True).count() == 0


def test_unlinked_entries_verify_within_the_grace_and_link_in_one_pass(deferred):
    PredictionFactory.create_batch(4)
    UserFactory.create(username="someone")
    total = LogEntry.objects.count()
    assert "audit chain OK: 0 links verified" in verify(grace=60)
    assert f"{total} sealed entries not linked yet" in verify(grace=60)
    result = chain.chain_link_pending()
    assert (result.linked, result.refused, result.busy) == (total, 0, False)
    assert f"{total} links verified" in verify()
    state = AuditChainState.objects.get()
    assert state.head_seq == total


def test_an_entry_left_unlinked_past_the_grace_is_reported(deferred):
    PredictionFactory.create()
    entry = LogEntry.objects.get()
    LogEntry.objects.filter(pk=entry.pk).update(timestamp=timezone.now() - dt.timedelta(hours=1))
    # The timestamp is hashed: re-seal it as the app would have, to isolate the age check.
    row = chain._batch_rows([entry.pk])[entry.pk]
    AuditChainLink.objects.filter(entry_id=entry.pk).update(
        seal=chain.entry_seal(row=row, actor_id=None, key=chain.chain_key())
    )
    assert "still not linked after the grace period (is a linker running?" in broken(grace=60)
    chain.chain_link_pending()
    assert "1 links verified" in verify(grace=60)


def test_an_entry_edited_before_it_was_linked_is_refused_and_reported(deferred):
    PredictionFactory.create_batch(3)
    victim = LogEntry.objects.order_by("pk")[1]
    LogEntry.objects.filter(pk=victim.pk).update(object_repr="pred_forged")
    result = chain.chain_link_pending()
    assert (result.linked, result.refused) == (2, 1)
    message = broken(grace=60)
    assert (
        f"entry id {victim.pk}: entry or link modified (seal mismatch) before it was linked"
        in message
    )
    # It is refused again at every pass, never linked.
    assert chain.chain_link_pending().refused == 1
    assert AuditChainLink.objects.get(entry_id=victim.pk).seq is None


def test_an_entry_deleted_before_it_was_linked_is_reported(deferred):
    PredictionFactory.create_batch(2)
    victim = LogEntry.objects.order_by("pk").first()
    LogEntry.objects.filter(pk=victim.pk).delete()
    assert f"entry id {victim.pk}: entry deleted before it was linked" in broken(grace=60)


def test_an_actor_rewritten_before_linking_is_reported(deferred):
    actor = UserFactory.create(username="actor")
    PredictionFactory.create()
    entry = LogEntry.objects.order_by("-pk").first()
    LogEntry.objects.filter(pk=entry.pk).update(actor=actor)
    assert "actor changed before it was linked" in broken(grace=60)
    assert chain.chain_link_pending().refused == 1


def test_a_late_commit_with_a_smaller_id_is_linked_in_the_next_pass(deferred):
    PredictionFactory.create_batch(2)
    older, newer = LogEntry.objects.order_by("pk")
    # As if `older`'s transaction committed after `newer` was linked: only newer is pending.
    AuditChainLink.objects.filter(entry_id=older.pk).update(seq=-1)
    assert chain.chain_link_pending().linked == 1
    AuditChainLink.objects.filter(entry_id=older.pk).update(seq=None)
    assert chain.chain_link_pending().linked == 1
    order = list(AuditChainLink.objects.order_by("seq").values_list("entry_id", flat=True))
    assert order == [newer.pk, older.pk]
    assert "2 links verified" in verify()


def test_entries_of_every_kind_seal_as_the_database_reads_them_back(deferred):
    """The seal is computed from the saved instance, not read back: JSON with tuples
    and int keys, an IPv6 address, a port, an actor with an email."""
    user = UserFactory.create(username="sealer", email="sealer@example.org")
    ct = ContentType.objects.get_for_model(LogEntry)
    extra: dict[Any, Any] = {"list": (1, 2), 3: "int key", "nested": {"b": 1, "a": [None]}}
    with audit.audit_context(name="test"):
        chain.entries_write(entries=[
            audit.entry_build(
                action=LogEntry.Action.ACCESS, content_type=ct, object_pk="7", object_id=7,
                object_repr="x", actor=user, remote_addr="2001:DB8:0:0::1",
                additional_data=extra,
            )
        ])
    LogEntry.objects.create(
        content_type=ct, object_pk=12, object_repr="pk given as an int",
        action=LogEntry.Action.ACCESS, remote_addr="10.0.0.1", remote_port=443,
    )
    assert chain.chain_link_pending() == chain.LinkPass(
        linked=LogEntry.objects.count(), refused=0, busy=False,
        oldest=LogEntry.objects.order_by("timestamp").first().timestamp,
    )
    assert "links verified" in verify()


def test_link_auditlog_links_and_says_how_many(deferred):
    PredictionFactory.create_batch(2)
    out = StringIO()
    call_command("link_auditlog", stdout=out)
    assert out.getvalue().strip() == f"linked {LogEntry.objects.count()} entries"


def test_the_linker_thread_links_within_its_interval_and_on_stop(deferred, transactional_db):
    worker = linker.Linker(interval_s=0.05)
    worker.start()
    try:
        PredictionFactory.create()
        deadline = time.monotonic() + 10
        while AuditChainLink.objects.filter(seq__isnull=True).exists():
            assert time.monotonic() < deadline, "the linker did not link within 10 s"
            time.sleep(0.02)
        PredictionFactory.create()
    finally:
        worker.stop()  # its last pass links the second one
    assert not AuditChainLink.objects.filter(seq__isnull=True).exists()
    assert f"{LogEntry.objects.count()} links verified" in verify()


def test_a_failing_pass_is_counted_and_the_next_one_retries(deferred, monkeypatch):
    from ops import metrics

    before = metrics.AUDIT_LINK_FAILURES._value.get()
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database went away")
        return real(**kwargs)

    real = chain.chain_link_pending
    monkeypatch.setattr(linker, "chain_link_pending", flaky)
    PredictionFactory.create()
    assert linker.link_pass() is None
    assert metrics.AUDIT_LINK_FAILURES._value.get() == before + 1
    retried = linker.link_pass()
    assert retried is not None and retried.linked == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_and_two_linkers_make_one_chain_that_verifies(settings):
    if connection.vendor != "postgresql":
        unavailable("advisory locks and concurrent writers need PostgreSQL in DATABASE_URL")
    settings.AUDITLOG_CHAIN_LINKING = "deferred"
    errors: list[BaseException] = []
    busy: list[bool] = []
    done = threading.Event()

    def linking() -> None:
        while not done.is_set():
            busy.append(chain.chain_link_pending().busy)

    linkers = [db_thread(linking, errors) for _ in range(2)]
    writers = [db_thread(lambda: PredictionFactory.create_batch(15), errors) for _ in range(6)]
    for t in linkers + writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in linkers:
        t.join()
    assert not errors
    chain.chain_link_pending()
    entries = LogEntry.objects.count()  # 90, and those of the roles fixture's groups
    assert AuditChainLink.objects.filter(seq__isnull=False).count() == entries >= 90
    assert f"{entries} links verified" in verify()
    assert busy  # the linkers ran while the writers wrote

