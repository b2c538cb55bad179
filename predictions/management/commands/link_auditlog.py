"""Link sealed audit entries into the hash chain (deferred linking), once or in a loop."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictions.audit.linker import link_pass


class Command(BaseCommand):
    help = (
        "Link audit entries sealed by writers but not linked yet (AUDITLOG_CHAIN_LINKING="
        "deferred). gunicorn's workers do this themselves every "
        "AUDITLOG_CHAIN_LINK_INTERVAL_MS; run this for other servers, or by hand."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--loop", action="store_true", help="Keep linking, one pass per interval."
        )
        parser.add_argument("--interval-ms", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            result = link_pass()
            if result is None:
                if not options["loop"]:
                    raise CommandError("linking failed (see the log)")
            elif not options["loop"]:
                self.stdout.write(
                    f"linked {result.linked} entries"
                    + (f"; {result.refused} refused (seal mismatch)" if result.refused else "")
                    + ("; another linker was at work" if result.busy else "")
                )
                if result.refused:
                    raise CommandError("some entries do not match their seal: run verify_auditlog")
                return
            time.sleep(options["interval_ms"] / 1000)
