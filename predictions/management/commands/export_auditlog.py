"""Export audit entries as CSV, JSON Lines or a FHIR R4 AuditEvent bundle."""

from __future__ import annotations

import getpass
import shlex
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictions.audit import export as audit_export
from predictions.audit.access import export_logged
from predictions.audit.trail import audit_context


class Command(BaseCommand):
    help = (
        "Stream audit entries (oldest first) to stdout or --output, filtered by date "
        "range, actor, action and object. The export is itself an audit entry, which "
        "records the operating-system user and the command line, and the account "
        "named by --as (optional)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", default="csv", choices=sorted(audit_export.FORMATS))
        parser.add_argument("--since", help="ISO 8601 date or instant (inclusive, UTC if naive)")
        parser.add_argument("--until", help="ISO 8601 date or instant (exclusive)")
        parser.add_argument("--actor", help="username")
        parser.add_argument("--action", choices=sorted(audit_export.ACTIONS))
        parser.add_argument("--object-type", help="app_label.model, e.g. predictions.prediction")
        parser.add_argument("--object", help="object primary key or id (message_id)")
        parser.add_argument("--output", "-o", help="file to write (default: stdout)")
        parser.add_argument(
            "--as",
            dest="as_user",
            metavar="USERNAME",
            help="the account of the person exporting, recorded as the entry's actor "
            "(the OS user and the command line are recorded in any case)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        raw = {
            name: options[name]
            for name in ("format", "since", "until", "actor", "action", "object_type", "object")
            if options.get(name) is not None
        }
        params = audit_export.ExportParams(data=raw)
        if not params.is_valid():
            errors = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in params.errors.items())
            raise CommandError(errors)
        data = params.validated_data
        filters = audit_export.filters_of(data)
        actor = None
        if options.get("as_user"):
            actor = get_user_model().objects.filter(username=options["as_user"]).first()
            if actor is None:
                raise CommandError(f"--as: no account named {options['as_user']!r}")
        with audit_context(name="export_auditlog"):
            export_logged(
                actor=actor,
                export_format=data["format"],
                filters=filters,
                via="command",
                extra={"os_user": _os_user(), "command": shlex.join(sys.argv)},
            )
            chunks = audit_export.export_stream(
                audit_export.audit_entries(**filters), export_format=data["format"]
            )
            if options.get("output"):
                with open(options["output"], "w", encoding="utf-8", newline="") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
            else:
                for chunk in chunks:
                    self.stdout.write(chunk, ending="")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        return "unknown"
