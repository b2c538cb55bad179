"""Delete predictions older than N days (GDPR storage limitation), audited."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictions.audit.trail import audit_context
from predictions.idempotency import idempotency_keys_purge
from predictions.retention import prediction_purge


class Command(BaseCommand):
    help = (
        "Delete predictions created more than --older-than DAYS ago. Each deletion is a "
        "DELETE audit entry naming the prediction (message_id) without its content. "
        "Idempotency keys older than 24 hours are deleted too."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        days: int = options["older_than"]
        if days < 1:
            raise CommandError("--older-than must be at least 1 day")
        with audit_context(name="purge_predictions") as cid:
            deleted = prediction_purge(older_than_days=days)
        self.stdout.write(
            self.style.SUCCESS(f"deleted {deleted} predictions older than {days} days (cid {cid})")
        )
        # Keys are only kept 24 h whatever the predictions' retention (not audited: a
        # key holds no clinical data, only a digest of its caller and upload).
        keys = idempotency_keys_purge()
        self.stdout.write(
            self.style.SUCCESS(f"deleted {keys} idempotency keys older than 24 hours")
        )
