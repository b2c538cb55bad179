"""Audit exports: CSV, JSON Lines and FHIR R4 AuditEvent, by API, command and filters."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from django.utils import timezone
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from predictions.audit.export import ACTION_NAMES, COLUMNS
from predictions.models import AuditChainLink
from tests.audit.conftest import ROLES
from tests.conftest import client_for
from tests.factories import PredictionFactory, UserFactory

pytestmark = pytest.mark.django_db
EXPORT = "/api/audit/export"


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def trail(clinical_staff):
    """Creations, staff reads (with actor and cid) and a group change."""
    predictions = PredictionFactory.create_batch(3)
    client_for(clinical_staff).get("/api/results", HTTP_X_REQUEST_ID="req-export-0001")
    UserFactory.create(username="newcomer").groups.add(clinical_staff.groups.get())
    return predictions


def ids_of(response) -> list[int]:
    return [json.loads(line)["id"] for line in body(response).splitlines()]


def db_rows(queryset=None) -> list[LogEntry]:
    qs = queryset if queryset is not None else LogEntry.objects.all()
    return list(qs.select_related("actor", "content_type").order_by("timestamp", "pk"))


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 401),
        ("patient", 403),
        ("clinical_staff", 403),
        ("compliance_officer", 200),
        ("superuser", 200),
    ],
)
def test_each_role_against_the_export_endpoint(role, status, user_for, trail):
    response = client_for(user_for(role)).get(EXPORT)
    assert response.status_code == status or (role == "anonymous" and response.status_code == 403)
    if status != 200:
        assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")
        assert not LogEntry.objects.filter(object_pk="export").exists()


def test_all_roles_are_covered():
    assert ROLES == ["anonymous", "patient", "clinical_staff", "compliance_officer", "superuser"]


def test_a_csv_export_parses_back_to_the_database_rows(compliance_officer, trail):
    response = client_for(compliance_officer).get(EXPORT, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="auditlog-')
    parsed = list(csv.DictReader(io.StringIO(body(response))))
    entries = db_rows()
    links = dict(AuditChainLink.objects.values_list("entry_id", "hash"))
    assert len(parsed) == len(entries) >= 8
    for row, entry in zip(parsed, entries, strict=True):
        assert list(row) == COLUMNS
        assert int(row["id"]) == entry.pk
        assert dt.datetime.fromisoformat(row["timestamp"]) == entry.timestamp
        assert row["action"] == ACTION_NAMES[entry.action]
        assert row["object_type"] == f"{entry.content_type.app_label}.{entry.content_type.model}"
        assert (row["object_pk"], row["object_repr"]) == (entry.object_pk, entry.object_repr)
        assert row["actor"] == (entry.actor.username if entry.actor else "")
        assert row["actor_email"] == (entry.actor_email or "")
        assert row["cid"] == (entry.cid or "")
        assert row["remote_addr"] == (entry.remote_addr or "")
        assert (json.loads(row["changes"]) if row["changes"] else None) == entry.changes
        assert (
            json.loads(row["additional_data"]) if row["additional_data"] else None
        ) == entry.additional_data
        assert row["chain_hash"] == links[entry.pk]


def test_a_jsonl_export_has_one_object_per_entry(compliance_officer, trail):
    response = client_for(compliance_officer).get(EXPORT, {"format": "jsonl"})
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in body(response).splitlines()]
    assert [line["id"] for line in lines] == [e.pk for e in db_rows()]
    assert all(set(line) == set(COLUMNS) for line in lines)


def test_a_fhir_export_is_a_valid_r4_bundle_of_audit_events(compliance_officer, trail):
    response = client_for(compliance_officer).get(EXPORT, {"format": "fhir"})
    assert response["Content-Type"].startswith("application/fhir+json")
    document = json.loads(body(response))
    bundle = Bundle.model_validate(document)  # raises on any invalid element
    events = [AuditEvent.model_validate(e["resource"]) for e in document["entry"]]
    assert bundle.type == "collection" and len(events) == len(db_rows())
    assert [e.id for e in events] == [str(e.pk) for e in db_rows()]
    # Field checks on the JSON itself (the models' attributes are all Optional).
    access = [
        e["resource"]
        for e in document["entry"]
        if e["resource"]["action"] == "R" and e["resource"]["type"]["code"] == "110110"
    ]
    assert access, "staff reads map to Patient Record / read"
    event = access[0]
    assert event["agent"][0]["who"]["identifier"]["value"] == "clinician"
    assert event["agent"][0]["requestor"] is True
    assert event["subtype"][0]["code"] == "read"
    details = {d["type"]: d["valueString"] for d in event["entity"][0]["detail"]}
    assert details["correlation-id"] == "req-export-0001"
    assert ":" in details["chain-hash"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "access"}, lambda qs: qs.filter(action=LogEntry.Action.ACCESS)),
        ({"actor": "clinician"}, lambda qs: qs.filter(actor__username="clinician")),
        (
            {"object_type": "auth.user"},
            lambda qs: qs.filter(content_type__app_label="auth", content_type__model="user"),
        ),
    ],
)
def test_it_filters_by_action_actor_and_object_type(params, expected, compliance_officer, trail):
    wanted = [e.pk for e in db_rows(expected(LogEntry.objects.all()))]
    assert wanted
    response = client_for(compliance_officer).get(EXPORT, {"format": "jsonl", **params})
    got = [json.loads(line)["id"] for line in body(response).splitlines()]
    # The export's own ACCESS entry (written first) matches some filters too.
    assert [i for i in got if i in wanted] == wanted
    assert set(got) - set(wanted) <= set(
        LogEntry.objects.filter(object_pk="export").values_list("pk", flat=True)
    )


def test_it_filters_by_object(compliance_officer, trail):
    target = trail[0]
    response = client_for(compliance_officer).get(
        EXPORT, {"format": "jsonl", "object": target.message_id}
    )
    got = [json.loads(line) for line in body(response).splitlines()]
    assert {g["object_repr"] for g in got} == {target.message_id}
    assert {g["action"] for g in got} == {"create", "access"}


def test_it_filters_by_date_range(compliance_officer, trail):
    old = LogEntry.objects.order_by("pk").first()
    LogEntry.objects.filter(pk=old.pk).update(timestamp=timezone.now() - dt.timedelta(days=30))
    client = client_for(compliance_officer)
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    recent = ids_of(client.get(EXPORT, {"format": "jsonl", "since": since}))
    assert old.pk not in recent and recent
    until = (timezone.now() - dt.timedelta(days=20)).date().isoformat()
    older = ids_of(client.get(EXPORT, {"format": "jsonl", "until": until}))
    assert older == [old.pk]


@pytest.mark.parametrize(
    "params",
    [
        {"format": "xml"},
        {"since": "yesterday"},
        {"action": "read"},
        {"object_type": "predictions"},
        {"since": "2026-02-01", "until": "2026-01-01"},
    ],
)
def test_it_rejects_bad_filters_with_the_error_shape(params, compliance_officer):
    response = client_for(compliance_officer).get(EXPORT, params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not LogEntry.objects.filter(object_pk="export").exists()


def test_every_export_is_itself_an_access_entry(compliance_officer, trail):
    response = client_for(compliance_officer).get(
        EXPORT, {"format": "csv", "action": "create"}, HTTP_X_REQUEST_ID="req-exp-000000001"
    )
    body(response)
    entry = LogEntry.objects.get(object_pk="export")
    assert entry.action == LogEntry.Action.ACCESS
    assert (entry.actor, entry.cid) == (compliance_officer, "req-exp-000000001")
    assert entry.additional_data == {
        "via": "api",
        "format": "csv",
        "filters": {"action": "create"},
    }
    assert AuditChainLink.objects.filter(entry_id=entry.pk).exists()


def test_the_command_exports_to_a_file_and_is_audited(trail, tmp_path):
    out = tmp_path / "audit.jsonl"
    call_command("export_auditlog", "--format=jsonl", "--action=create", f"--output={out}")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines and {x["action"] for x in lines} == {"create"}
    entry = LogEntry.objects.get(object_pk="export")
    assert entry.actor is None and entry.cid.startswith("cmd-export_auditlog-")
    assert entry.additional_data["via"] == "command"


def test_the_command_writes_fhir_to_stdout(trail):
    stdout = io.StringIO()
    call_command("export_auditlog", "--format=fhir", "--since=2000-01-01", stdout=stdout)
    Bundle.model_validate(json.loads(stdout.getvalue()))


def test_the_command_rejects_bad_filters(db):
    with pytest.raises(CommandError, match="since"):
        call_command("export_auditlog", "--since=not-a-date")
