"""The deferred linker: links sealed audit entries into the chain, about once a second.

With AUDITLOG_CHAIN_LINKING=deferred, writers only seal their entries
(`chain.chain_record`); a `Linker` thread links them. gunicorn starts one in every
worker (gunicorn.conf.py: `post_worker_init`, and a last pass in `worker_exit`); a pass
that finds another linker at work skips (PostgreSQL advisory lock), so the fleet links
one batch at a time without any writer waiting. `manage.py link_auditlog` runs a pass,
or loops, for a deployment that would rather link from one process of its own.

The bound: while any linker runs, an entry is unlinked for at most the interval plus
one pass (a pass links every pending entry, batch by batch). A pass that fails (the
database went away) is logged and counted; the next one retries on a fresh connection.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connection
from django.utils import timezone

from ops import metrics
from predictions.audit.chain import LinkPass, chain_link_pending

logger = logging.getLogger("healthguard.audit")


def link_pass() -> LinkPass | None:
    """One linking pass with its metrics; None when it failed (logged, counted)."""
    try:
        result = chain_link_pending()
    except Exception:
        metrics.AUDIT_LINK_FAILURES.inc()
        logger.exception("audit chain: linking pass failed; the next pass retries")
        # A broken connection would fail every later pass: take a fresh one next time
        # (not inside a transaction of the caller's: a test's, say).
        if not connection.in_atomic_block:
            connection.close()
        return None
    if result.linked:
        metrics.AUDIT_LINKED.inc(result.linked)
    if result.refused:
        metrics.AUDIT_LINK_REFUSED.inc(result.refused)
        logger.error(
            "audit chain: %d unlinked entries do not match their seal; left unlinked "
            "(run verify_auditlog)",
            result.refused,
        )
    if result.oldest is not None:
        metrics.AUDIT_LINK_LAG.observe((timezone.now() - result.oldest).total_seconds())
    return result


class Linker:
    """A daemon thread running `link_pass` every `interval_s` until stopped."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-linker", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after one last pass (entries written just before stay linked)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                link_pass()
            link_pass()
        finally:
            connection.close()  # this thread's own connection


_linker: Linker | None = None


def linker_start() -> Linker | None:
    """Start this process's linker when linking is deferred (idempotent)."""
    global _linker
    if settings.AUDITLOG_CHAIN_LINKING != "deferred":
        return None
    if _linker is None:
        _linker = Linker(settings.AUDITLOG_CHAIN_LINK_INTERVAL_MS / 1000)
        _linker.start()
    return _linker


def linker_stop() -> None:
    global _linker
    if _linker is not None:
        _linker.stop()
        _linker = None
