"""Walk the audit hash chain and report the first broken link (exit 1 if any)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictions.audit.chain import chain_verify


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain: every entry unchanged, none deleted or "
        "inserted, and those not linked yet as they were sealed. Prints the head (seq "
        "and hash: keep it somewhere else to detect a rewrite of the whole chain) and "
        "exits non-zero on the first broken link."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument(
            "--grace-seconds",
            type=int,
            default=60,
            help=(
                "Entries younger than this may still wait for the linker (their seal is "
                "checked); an older one not linked, or with no link row, is a break."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = chain_verify(
            batch_size=options["batch_size"], grace_seconds=options["grace_seconds"]
        )
        if report.first_break is not None:
            raise CommandError(
                f"audit chain broken at {report.first_break} "
                f"({report.checked} links verified before it)"
            )
        waiting = (
            f"; {report.unlinked} sealed entries not linked yet (seals verified)"
            if report.unlinked
            else ""
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"audit chain OK: {report.checked} links verified; "
                f"head #{report.head_seq} {report.head_hash}{waiting}"
            )
        )
