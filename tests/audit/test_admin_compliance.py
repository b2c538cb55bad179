"""The compliance officer's audit list: export everything that matches (any size),
selection without the TooManyFieldsSent crash, date-range and actor filters, the
channel and IP columns, and the command's actor."""

from __future__ import annotations

import datetime as dt
import getpass

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.utils import timezone

from predictions.audit.trail import channel_of
from tests.audit.conftest import ROLES, browser_for
from tests.factories import PredictionFactory, UserFactory

pytestmark = pytest.mark.django_db

AUDITLOG = "/admin/auditlog/logentry/"
EXPORT_ALL = "/admin/auditlog/logentry/export/{}/"


def body_of(response) -> str:
    return b"".join(response.streaming_content).decode()


def exports() -> list[LogEntry]:
    return list(LogEntry.objects.filter(object_pk="export", object_repr="audit log export"))


@pytest.mark.parametrize("role", ROLES)
def test_each_role_against_export_all(role, user_for):
    PredictionFactory.create()
    response = browser_for(user_for(role)).get(EXPORT_ALL.format("csv"))
    if role in ("compliance_officer", "superuser"):
        assert response.status_code == 200
        assert len(exports()) == 1
    elif role in ("anonymous", "patient"):
        assert response.status_code == 302
    else:
        assert response.status_code == 403
        assert exports() == []


def test_export_all_streams_every_matching_entry_past_the_field_limit(compliance_officer):
    PredictionFactory.create_batch(120)  # 120 CREATE entries: more than any POST could name
    before = LogEntry.objects.count()
    creates = LogEntry.objects.filter(action=0).count()
    assert creates > 120
    response = browser_for(compliance_officer).get(EXPORT_ALL.format("jsonl"), {"action": "0"})
    assert response.status_code == 200 and response.streaming
    lines = body_of(response).splitlines()
    assert len(lines) == creates
    assert LogEntry.objects.count() == before + 1  # the export's own entry
    [entry] = exports()
    assert entry.additional_data["filters"] == {"admin_filter": "action=0"}


def test_export_all_follows_the_date_and_actor_filters(compliance_officer):
    nurse = UserFactory.create(username="nurse")
    old = PredictionFactory.create()
    LogEntry.objects.get_for_object(old).update(
        timestamp=timezone.now() - dt.timedelta(days=30)
    )
    recent = PredictionFactory.create()
    LogEntry.objects.get_for_object(recent).update(actor=nurse)
    today = timezone.localdate().isoformat()
    response = browser_for(compliance_officer).get(
        EXPORT_ALL.format("csv"), {"from": today, "to": today, "actor": "nurse"}
    )
    body = body_of(response)
    assert len(body.strip().splitlines()) == 2
    assert f",{recent.message_id}," in body and f",{old.message_id}," not in body


def test_the_list_filters_by_date_range_and_actor(compliance_officer):
    nurse = UserFactory.create(username="nurse")
    a, b = PredictionFactory.create_batch(2)
    LogEntry.objects.get_for_object(a).update(
        timestamp=timezone.now() - dt.timedelta(days=10)
    )
    LogEntry.objects.get_for_object(b).update(actor=nurse)
    browser = browser_for(compliance_officer)
    since = (timezone.localdate() - dt.timedelta(days=11)).isoformat()
    until = (timezone.localdate() - dt.timedelta(days=9)).isoformat()
    dated = browser.get(AUDITLOG, {"from": since, "to": until}).context["cl"].result_list
    assert [e.object_repr for e in dated] == [a.message_id]
    by_actor = browser.get(AUDITLOG, {"actor": "nurse"}).context["cl"].result_list
    assert [e.object_repr for e in by_actor] == [b.message_id]


def test_selecting_a_whole_page_no_longer_crashes(compliance_officer):
    PredictionFactory.create_batch(60)
    browser = browser_for(compliance_officer)
    page = browser.get(AUDITLOG).context["cl"]
    ids = [e.pk for e in page.result_list]
    assert len(ids) == 40  # list_per_page: a page's selection stays under the limit
    response = browser.post(
        AUDITLOG,
        {"action": "export_csv", "_selected_action": ids, "index": "0", "select_across": "0"},
    )
    assert response.status_code == 200
    assert len(body_of(response).strip().splitlines()) == 41


def test_the_list_shows_channel_and_ip(compliance_officer, client):
    PredictionFactory.create()
    browser = browser_for(compliance_officer)
    browser.get("/admin/predictions/prediction/")  # not allowed: 403, no entry
    page = browser.get(AUDITLOG, REMOTE_ADDR="10.1.2.3").content.decode()
    assert "<th" in page and "Channel" in page and "Remote addr" in page


def test_entries_record_their_channel(compliance_officer, clinical_staff):
    prediction = PredictionFactory.create()
    browser_for(clinical_staff).get(
        f"/admin/predictions/prediction/{prediction.pk}/change/", REMOTE_ADDR="10.9.8.7"
    )
    admin_read = LogEntry.objects.filter(action=LogEntry.Action.ACCESS).latest("pk")
    assert channel_of(admin_read) == "admin"
    assert admin_read.remote_addr == "10.9.8.7"
    call_command("export_auditlog", "--output", "/dev/null")
    assert channel_of(LogEntry.objects.latest("pk")) == "command"
    legacy = LogEntry(additional_data=None, cid="cmd-purge-abc")
    assert channel_of(legacy) == "command"
    assert channel_of(LogEntry(additional_data=None, cid="req-1")) == "unknown"


def test_the_command_records_the_os_user_and_the_command_line():
    call_command("export_auditlog", "--format", "jsonl", "--output", "/dev/null")
    [entry] = exports()
    assert entry.actor is None
    assert entry.additional_data["os_user"] == getpass.getuser()
    assert "export_auditlog" in entry.additional_data["command"] or entry.additional_data[
        "command"
    ]
    assert entry.additional_data["via"] == "command"


def test_the_command_records_the_account_named_by_as(compliance_officer):
    call_command("export_auditlog", "--as", "officer", "--output", "/dev/null")
    [entry] = exports()
    assert entry.actor == compliance_officer


def test_the_command_refuses_an_unknown_account():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no account named"):
        call_command("export_auditlog", "--as", "nobody", "--output", "/dev/null")
    assert exports() == []
