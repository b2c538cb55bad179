"""Delete audit entries past the retention period, keeping the chain verifiable."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictions.audit.retention import AuditChainBroken, auditlog_purge
from predictions.audit.trail import audit_context


class Command(BaseCommand):
    help = (
        "Delete audit entries older than AUDITLOG_RETENTION_DAYS (or --older-than DAYS). "
        "The retained chain's new start is recorded so verify_auditlog still passes; "
        "the purge is itself an audit entry."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, metavar="DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        days: int = options["older_than"] or settings.AUDITLOG_RETENTION_DAYS
        if days < 1:
            raise CommandError("--older-than must be at least 1 day")
        with audit_context(name="purge_auditlog"):
            try:
                result = auditlog_purge(older_than_days=days)
            except AuditChainBroken as exc:
                raise CommandError(
                    f"refusing to purge: the audit chain is broken at {exc} "
                    "(run verify_auditlog and investigate first)"
                ) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"deleted {result.entries} audit entries older than {days} days "
                f"(before {result.cutoff.isoformat()})"
            )
        )
