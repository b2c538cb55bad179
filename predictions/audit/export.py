"""Audit log exports: filters, row streaming, and the CSV, JSON Lines and FHIR formats.

One path for the admin action, the `export_auditlog` command and the API endpoint:
`ExportParams` validates the filters, `audit_entries` selects, `export_stream` turns
the rows into text chunks. Rows are read with a server-side cursor in chunks
(`iterator(chunk_size=...)`) and written out in ~64 KiB pieces, so memory stays the
same whatever the number of entries.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from auditlog.models import LogEntry
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import StreamingHttpResponse
from rest_framework import serializers

from predictions.models import AuditChainLink

CHUNK_ROWS = 2000
FLUSH_BYTES = 64 * 1024

ACTIONS: dict[str, int] = {
    "create": LogEntry.Action.CREATE,
    "update": LogEntry.Action.UPDATE,
    "delete": LogEntry.Action.DELETE,
    "access": LogEntry.Action.ACCESS,
}
ACTION_NAMES = {code: name for name, code in ACTIONS.items()}

FORMATS: dict[str, tuple[str, str]] = {
    # format: (content type, file extension)
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
    "fhir": ("application/fhir+json; charset=utf-8", "fhir.json"),
}


class ExportParams(serializers.Serializer[Any]):
    """The export filters, validated the same way for the API and the command."""

    format = serializers.ChoiceField(choices=sorted(FORMATS), default="csv")
    since = serializers.DateTimeField(
        required=False, help_text="Entries at or after this instant (ISO 8601; UTC if naive)."
    )
    until = serializers.DateTimeField(
        required=False, help_text="Entries before this instant (exclusive)."
    )
    actor = serializers.CharField(
        required=False, max_length=150, help_text="Username of the actor."
    )
    action = serializers.ChoiceField(choices=sorted(ACTIONS), required=False)
    object_type = serializers.RegexField(
        r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$",
        required=False,
        help_text="app_label.model, e.g. predictions.prediction.",
    )
    object = serializers.CharField(
        required=False, max_length=255, help_text="Object primary key or its id (message_id)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since >= until:
            raise serializers.ValidationError({"until": "must be after since"})
        return attrs


def audit_entries(
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object: str | None = None,
) -> QuerySet[LogEntry]:
    """Audit entries matching the filters, oldest first."""
    qs = LogEntry.objects.all()
    if since is not None:
        qs = qs.filter(timestamp__gte=since)
    if until is not None:
        qs = qs.filter(timestamp__lt=until)
    if actor:
        qs = qs.filter(actor__username=actor)
    if action:
        qs = qs.filter(action=ACTIONS[action])
    if object_type:
        app_label, model = object_type.split(".", 1)
        qs = qs.filter(content_type__app_label=app_label, content_type__model=model)
    if object:
        qs = qs.filter(Q(object_pk=object) | Q(object_repr=object))
    return qs.order_by("timestamp", "pk")


class ExportRow(NamedTuple):
    """One audit entry as exported (a tuple: cheap to build a million of)."""

    id: int
    timestamp: str
    action: str
    object_type: str
    object_pk: str
    object_repr: str
    actor: str
    actor_email: str
    cid: str
    remote_addr: str
    changes: Any
    additional_data: Any
    chain_seq: int | None
    chain_hash: str

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


COLUMNS = list(ExportRow._fields)
_JSON_COLUMNS = {"changes", "additional_data"}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def export_rows(
    queryset: QuerySet[LogEntry], *, chunk_size: int = CHUNK_ROWS
) -> Iterator[ExportRow]:
    link = AuditChainLink.objects.filter(entry_id=OuterRef("pk"))
    values = queryset.annotate(
        chain_seq=Subquery(link.values("seq")[:1]),
        chain_hash=Subquery(link.values("hash")[:1]),
    ).values_list(
        "pk",
        "timestamp",
        "action",
        "content_type__app_label",
        "content_type__model",
        "object_pk",
        "object_repr",
        "actor__username",
        "actor_email",
        "cid",
        "remote_addr",
        "changes",
        "additional_data",
        "chain_seq",
        "chain_hash",
    )
    for (pk, ts, action, app, model, opk, orepr, username, email, cid, addr, changes, extra,
         seq, chash) in values.iterator(chunk_size=chunk_size):
        yield ExportRow(
            id=pk,
            timestamp=_iso(ts),
            action=ACTION_NAMES.get(action, str(action)),
            object_type=f"{app}.{model}",
            object_pk=opk,
            object_repr=orepr,
            actor=username or "",
            actor_email=email or "",
            cid=cid or "",
            remote_addr=addr or "",
            changes=changes,
            additional_data=extra,
            chain_seq=seq,
            chain_hash=chash or "",
        )


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _json(value: Any) -> str:
    return _ENCODER.encode(value)


class _Echo:
    """A file-like object whose write returns what it was given (for csv.writer)."""

    def write(self, value: str) -> str:
        return value


def _batched(pieces: Iterable[str]) -> Iterator[str]:
    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= FLUSH_BYTES:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def csv_pieces(rows: Iterable[ExportRow]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    json_at = [name in _JSON_COLUMNS for name in COLUMNS]
    for row in rows:
        yield writer.writerow(
            [
                ("" if v is None else _json(v)) if is_json else ("" if v is None else v)
                for is_json, v in zip(json_at, row, strict=True)
            ]
        )


def jsonl_pieces(rows: Iterable[ExportRow]) -> Iterator[str]:
    for row in rows:
        yield _json(row.as_dict()) + "\n"


# --- FHIR R4 AuditEvent -------------------------------------------------------------

DCM = "http://dicom.nema.org/resources/ontology/DCM"
_EVENT_TYPES: dict[str, dict[str, str]] = {
    "predictions.prediction": {"system": DCM, "code": "110110", "display": "Patient Record"},
    "auth.group": {"system": DCM, "code": "110136", "display": "Security Roles Changed"},
    "auth.user": {"system": DCM, "code": "110137", "display": "User Security Attributes Changed"},
    "auditlog.logentry": {"system": DCM, "code": "110101", "display": "Audit Log Used"},
}
_REST_EVENT = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_FHIR_ACTION = {"create": "C", "update": "U", "delete": "D", "access": "R"}
_INTERACTION = {"create": "create", "update": "update", "delete": "delete", "access": "read"}
_SOURCE = {
    "site": "healthguard-vision",
    "observer": {"display": "HealthGuard Vision API"},
    "type": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
            "code": "4",
            "display": "Application Server",
        }
    ],
}


def fhir_audit_event(row: ExportRow) -> dict[str, Any]:
    """One audit entry as a FHIR R4 AuditEvent resource (a dict ready for JSON)."""
    if row.actor:
        agent: dict[str, Any] = {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                        "code": "humanuser",
                        "display": "human user",
                    }
                ]
            },
            "who": {
                "identifier": {"system": "urn:healthguard:username", "value": row.actor},
                "display": row.actor,
            },
            "requestor": True,
        }
    else:
        agent = {"who": {"display": "HealthGuard Vision (system or anonymous)"}, "requestor": False}
    if row.remote_addr:
        agent["network"] = {"address": row.remote_addr, "type": "2"}  # 2 = IP address

    details = [{"type": "correlation-id", "valueString": row.cid}] if row.cid else []
    for name in ("changes", "additional_data"):
        value = getattr(row, name)
        if value:
            details.append({"type": name, "valueString": _json(value)})
    if row.chain_hash:
        details.append({"type": "chain-hash", "valueString": f"{row.chain_seq}:{row.chain_hash}"})
    entity: dict[str, Any] = {
        "what": {
            "identifier": {"system": f"urn:healthguard:{row.object_type}", "value": row.object_pk},
            "display": row.object_repr,
        },
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            "code": "2",
            "display": "System Object",
        },
    }
    if details:
        entity["detail"] = details
    return {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "type": _EVENT_TYPES.get(row.object_type, _REST_EVENT),
        "subtype": [
            {"system": "http://hl7.org/fhir/restful-interaction", "code": _INTERACTION[row.action]}
        ]
        if row.action in _INTERACTION
        else [],
        "action": _FHIR_ACTION.get(row.action, "E"),
        "recorded": row.timestamp,
        "outcome": "0",
        "agent": [agent],
        "source": _SOURCE,
        "entity": [entity],
    }


def fhir_pieces(rows: Iterable[ExportRow]) -> Iterator[str]:
    """A FHIR Bundle (type collection) of AuditEvents, written piece by piece."""
    yield '{"resourceType":"Bundle","type":"collection","entry":['
    first = True
    for row in rows:
        event = _json({"resource": fhir_audit_event(row)})
        yield event if first else "," + event
        first = False
    yield "]}\n"


_WRITERS = {"csv": csv_pieces, "jsonl": jsonl_pieces, "fhir": fhir_pieces}


def export_stream(
    queryset: QuerySet[LogEntry], *, export_format: str, chunk_size: int = CHUNK_ROWS
) -> Iterator[str]:
    """The export as text chunks of about 64 KiB, read lazily from the database."""
    return _batched(_WRITERS[export_format](export_rows(queryset, chunk_size=chunk_size)))


def filters_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """The filter arguments of `audit_entries` from validated ExportParams data."""
    names = ("since", "until", "actor", "action", "object_type", "object")
    return {name: params.get(name) for name in names}


def filename_for(export_format: str, *, now: dt.datetime) -> str:
    return f"auditlog-{now.strftime('%Y%m%dT%H%M%SZ')}.{FORMATS[export_format][1]}"


def export_response(
    queryset: QuerySet[LogEntry], *, export_format: str, now: dt.datetime
) -> StreamingHttpResponse:
    """The streamed export as a download (the admin action and the API endpoint)."""
    response = StreamingHttpResponse(
        export_stream(queryset, export_format=export_format),
        content_type=FORMATS[export_format][0],
    )
    filename = filename_for(export_format, now=now)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
