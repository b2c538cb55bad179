"""PostgreSQL goes away under a running gunicorn, then comes back.

The server reaches its database through a proxy this test controls (tests/faults/
proxy.py), so the outage is real for the service (dropped connections, refused
reconnects) while the shared PostgreSQL server keeps running for everyone else.
"""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from devtools.live import (
    LiveServer,
    Response,
    database_drop,
    database_url_for,
    live_db_name,
    migrate,
    predict,
    server_env,
)
from tests.faults.proxy import CuttableProxy
from tests.optional import require_postgres

pytestmark = pytest.mark.live_server_process


@pytest.fixture(scope="module", autouse=True)
def _postgres() -> None:
    require_postgres()


def rows(url: str) -> list[tuple[str, float]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return list(conn.execute("SELECT message_id, risk_score FROM predictions_prediction"))


@pytest.fixture(scope="module")
def outage() -> Iterator[tuple[LiveServer, CuttableProxy, str]]:
    direct_url = database_url_for(live_db_name("outage"))
    parts = urllib.parse.urlsplit(direct_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    proxied_url = urllib.parse.urlunsplit(
        parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{proxy.port}"))
    )
    assert f":{proxy.port}/" in proxied_url
    migrate(server_env(direct_url))
    server = LiveServer(env=server_env(proxied_url, DB_CONNECT_TIMEOUT="2"), workers=2)
    try:
        server.start()
        yield server, proxy, direct_url
    finally:
        server.stop()
        proxy.stop()
        database_drop(direct_url)


def worker_pids(server: LiveServer) -> set[int]:
    assert server.process is not None
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.process.pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {int(pid) for pid in out.split()}


def assert_unavailable(resp: Response) -> None:
    assert resp.status == 503, resp.body[:300]
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "database_unavailable"
    assert body["error"]["message"]
    text = resp.body.decode()
    assert "Traceback" not in text and "psycopg" not in text and "OperationalError" not in text


def test_predictions_get_503_while_the_database_is_down_and_recover(outage, real_crop_bytes):
    server, proxy, direct_url = outage
    workers = worker_pids(server)
    assert len(workers) == 2
    assert predict(server, real_crop_bytes).status == 201
    stored_before = rows(direct_url)

    proxy.cut()
    try:
        for _ in range(4):  # both workers, each with its persistent connection dropped
            assert_unavailable(predict(server, real_crop_bytes))
        ready = server.request("GET", "/health/ready")
        assert ready.status == 503
        assert ready.json()["checks"] == {"database": False, "model": True}
        assert server.request("GET", "/health/live").status == 200
        assert rows(direct_url) == stored_before  # no partial row
    finally:
        proxy.restore()

    server.wait_for("/health/ready", 200, timeout=30)
    created = [predict(server, real_crop_bytes).status for _ in range(4)]
    assert created == [201, 201, 201, 201]
    assert len(rows(direct_url)) == len(stored_before) + 4
    # Recovered by the same processes: nothing was restarted.
    assert server.process is not None and server.process.poll() is None
    assert worker_pids(server) == workers
    assert "Internal Server Error" not in server.logs()


def test_an_outage_in_the_middle_of_a_run_loses_nothing_and_invents_nothing(
    outage, real_crop_bytes
):
    server, proxy, direct_url = outage
    before = {m for m, _ in rows(direct_url)}
    answers: list[Response] = []
    lock = threading.Lock()
    stop = time.monotonic() + 9

    def client() -> None:
        while time.monotonic() < stop:
            resp = predict(server, real_crop_bytes)
            with lock:
                answers.append(resp)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(2.5)
    proxy.cut()
    time.sleep(3)
    proxy.restore()
    for thread in threads:
        thread.join(timeout=60)

    statuses = [a.status for a in answers]
    assert set(statuses) <= {201, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(201) >= 1, statuses
    for resp in answers:
        if resp.status == 503:
            assert_unavailable(resp)
    created = {a.json()["message_id"] for a in answers if a.status == 201}
    after = {m for m, _ in rows(direct_url)} - before
    assert after == created  # every 201 stored, nothing stored for a 503
    server.wait_for("/health/ready", 200, timeout=30)
