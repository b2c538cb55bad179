"""The hash chain: verify passes on an untouched log and names the first broken link."""

from __future__ import annotations

import itertools
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from predictions.audit import chain
from predictions.audit import trail as audit
from predictions.models import AuditChainLink, AuditChainState
from tests.audit.conftest import db_thread
from tests.factories import PredictionFactory, UserFactory
from tests.optional import unavailable

pytestmark = pytest.mark.django_db


def verify() -> str:
    out = StringIO()
    call_command("verify_auditlog", "--grace-seconds=0", stdout=out)
    return out.getvalue()


def broken() -> str:
    with pytest.raises(CommandError) as exc:
        verify()
    return str(exc.value)


@pytest.fixture(params=["inline", "deferred"])
def trail(request, db, settings):
    """A few entries of different kinds, all chained: linked by their writers (inline)
    or sealed by them and linked afterwards by the linker (deferred)."""
    settings.AUDITLOG_CHAIN_LINKING = request.param
    PredictionFactory.create_batch(3)
    user = UserFactory.create(username="reviewer")
    user.groups.add(*Group.objects.all())
    if request.param == "deferred":
        assert not AuditChainLink.objects.filter(seq__isnull=False).exists()
        assert chain.chain_link_pending().linked == LogEntry.objects.count()
    links = list(AuditChainLink.objects.order_by("seq"))
    assert len(links) == LogEntry.objects.count() >= 5
    return links


def test_every_entry_gets_a_link_to_the_previous_one(trail):
    for before, after in itertools.pairwise(trail):
        assert after.prev_hash == before.hash and after.seq == before.seq + 1
    state = AuditChainState.objects.get()
    assert (state.head_seq, state.head_hash) == (trail[-1].seq, trail[-1].hash)


def test_verify_passes_on_an_untouched_log(trail):
    out = verify()
    assert f"{len(trail)} links verified" in out
    assert trail[-1].hash in out


def test_it_detects_an_edited_entry(trail):
    LogEntry.objects.filter(pk=trail[2].entry_id).update(object_repr="pred_forged")
    assert f"link #{trail[2].seq}, entry id {trail[2].entry_id}" in broken()
    assert "modified" in broken()


def test_it_detects_an_edited_timestamp(trail):
    LogEntry.objects.filter(pk=trail[1].entry_id).update(timestamp=timezone.now())
    assert f"link #{trail[1].seq}" in broken()


def test_it_detects_a_deleted_entry(trail):
    LogEntry.objects.filter(pk=trail[3].entry_id).delete()
    assert f"link #{trail[3].seq}, entry id {trail[3].entry_id}: entry deleted" in broken()


def test_it_detects_a_deleted_entry_and_its_link(trail):
    LogEntry.objects.filter(pk=trail[3].entry_id).delete()
    AuditChainLink.objects.filter(seq=trail[3].seq).delete()
    assert f"link #{trail[3].seq}: link missing" in broken()


def test_it_detects_a_rewritten_link_hash(trail):
    AuditChainLink.objects.filter(seq=trail[1].seq).update(hash="f" * 64)
    assert f"link #{trail[1].seq}" in broken()


def test_it_detects_entries_removed_from_the_end(trail):
    last = trail[-1]
    LogEntry.objects.filter(pk=last.entry_id).delete()
    AuditChainLink.objects.filter(seq=last.seq).delete()
    assert "links removed" in broken()


def test_it_detects_an_entry_inserted_outside_the_application(trail):
    forged = LogEntry.objects.bulk_create(  # bulk_create sends no signal: no link
        [LogEntry(content_type_id=LogEntry.objects.first().content_type_id, object_pk="1",
                  object_repr="pred_forged", action=LogEntry.Action.ACCESS)]
    )[0]
    assert f"entry id {forged.pk}: entry is not in the chain" in broken()
    # The linker never links it either: it links sealed entries only.
    assert chain.chain_link_pending().linked == 0


def test_it_detects_an_entry_inserted_with_a_forged_link_row(trail):
    forged = LogEntry.objects.bulk_create(
        [LogEntry(content_type_id=LogEntry.objects.first().content_type_id, object_pk="1",
                  object_repr="pred_forged", action=LogEntry.Action.ACCESS)]
    )[0]
    AuditChainLink.objects.create(entry_id=forged.pk, seal="0" * 64)  # no key: no seal
    assert chain.chain_link_pending().refused == 1
    assert (
        f"entry id {forged.pk}: entry or link modified (seal mismatch) before it was linked"
        in broken()
    )


def test_it_detects_two_entries_swapped(trail):
    """Reordering: the entries' contents change places, their links stay."""
    first, second = (LogEntry.objects.get(pk=link.entry_id) for link in trail[1:3])
    for entry, other in ((first, second), (second, first)):
        LogEntry.objects.filter(pk=entry.pk).update(
            object_repr=other.object_repr, timestamp=other.timestamp, changes=other.changes
        )
    assert f"link #{trail[1].seq}" in broken()


def test_it_detects_an_actor_rewritten_by_hand(trail):
    actor = UserFactory.create(username="actor")
    entry = LogEntry.objects.get(pk=trail[0].entry_id)
    AuditChainLink.objects.filter(seq=trail[0].seq).update(actor_id=actor.pk)
    # The entry says "no actor" while its link remembers one who still exists.
    assert entry.actor_id is None
    assert "link #" in broken()


def test_deleting_an_actors_account_keeps_the_chain_valid(db):
    user = UserFactory.create(username="leaver")
    with audit.audit_context(name="test"):
        LogEntry.objects.create(
            content_type_id=LogEntry.objects.first().content_type_id, object_pk="1",
            object_repr="x", action=LogEntry.Action.ACCESS, actor=user,
        )
    user.delete()  # auditlog's FK sets actor to NULL: allowed, the user is gone
    assert "links verified" in verify()


def test_it_reports_a_changed_chain_key(trail, settings):
    settings.AUDITLOG_CHAIN_KEY = "another key"
    assert "chain key differs" in broken()


def test_the_chain_head_row_is_recreated_when_missing_on_an_empty_log(db):
    AuditChainState.objects.all().delete()
    PredictionFactory.create()
    assert "1 links verified" in verify()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_append_one_after_another():
    if connection.vendor != "postgresql":
        unavailable("row locks need PostgreSQL in DATABASE_URL")
    errors: list[BaseException] = []
    threads = [db_thread(lambda: PredictionFactory.create_batch(10), errors) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    entries = LogEntry.objects.count()  # 60, and those of the roles fixture's groups
    assert AuditChainLink.objects.count() == entries >= 60
    assert f"{entries} links verified" in verify()
