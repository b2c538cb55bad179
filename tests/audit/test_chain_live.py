"""Deferred linking as deployed: gunicorn with gunicorn.conf.py, two workers, each with
its linker thread. Requests only seal their audit entries; the workers link them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.live import is_postgres, live_server, predict
from tests.optional import unavailable

pytestmark = pytest.mark.live_server_process

REPO_ROOT = Path(__file__).resolve().parents[2]


def _pending(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE seq IS NULL), count(*) FROM predictions_auditchainlink"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_gunicorn_workers_link_what_the_requests_sealed(real_crop_bytes: bytes):
    if not is_postgres(os.environ.get("DATABASE_URL", "")):
        unavailable("the live chain test reads the server's PostgreSQL: set DATABASE_URL")
    with live_server("chain", workers=2) as server:
        url = server.env["DATABASE_URL"]
        for _ in range(6):
            assert predict(server, real_crop_bytes).status == 201
        deadline = time.monotonic() + 10  # the bound is 1 s and one pass: 10 is generous
        while _pending(url)[0]:
            assert time.monotonic() < deadline, "the workers did not link within 10 s"
            time.sleep(0.05)
        _, total = _pending(url)
        assert total >= 6
        # The six predictions' entries at least (migrate, run before, links its own inline).
        assert 6 <= server.metric_total("healthguard_audit_entries_linked_total") <= total
        assert server.metric_total("healthguard_audit_link_failures_total") == 0
        result = subprocess.run(
            [sys.executable, "manage.py", "verify_auditlog", "--grace-seconds", "0"],
            cwd=REPO_ROOT, env=server.env, capture_output=True, text=True, timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"audit chain OK: {total} links verified" in result.stdout
