"""Deferred linking as deployed: gunicorn with gunicorn.conf.py, two workers, each with
its linker thread. Requests only seal their audit entries; the workers link them."""

from __future__ import annotations

import os
import re

import pytest

from devtools.live import (
    audit_linked_within,
    is_postgres,
    live_server,
    predict,
    verify_auditlog,
)
from tests.optional import unavailable

pytestmark = pytest.mark.live_server_process


def test_gunicorn_workers_link_what_the_requests_sealed(real_crop_bytes: bytes):
    if not is_postgres(os.environ.get("DATABASE_URL", "")):
        unavailable("the live chain test reads the server's PostgreSQL: set DATABASE_URL")
    with live_server("chain", workers=2) as server:
        for _ in range(6):
            assert predict(server, real_crop_bytes).status == 201
        # The bound is 1 s and one pass: 10 is generous.
        assert audit_linked_within(server.env["DATABASE_URL"], 10.0) is not None, (
            "the workers did not link within 10 s"
        )
        code, output = verify_auditlog(server.env)
        assert code == 0, output
        verified = re.search(r"audit chain OK: (\d+) links verified", output)
        assert verified is not None, output
        total = int(verified.group(1))
        assert total >= 6
        # The six predictions' entries at least (migrate, run before, links its own inline).
        assert 6 <= server.metric_total("healthguard_audit_entries_linked_total") <= total
        assert server.metric_total("healthguard_audit_link_failures_total") == 0
