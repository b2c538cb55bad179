"""Print how fast /health/ready and /health/live answer under gunicorn (production
settings) while the database is reachable, refused (closed port), cut (TCP proxy
closed) and silent (a listener that never answers), and how fast readiness recovers.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/obs SECRET_KEY=t \\
        .venv/bin/python -m tests.observability.measure_ready

Figures, not assertions: the tests in test_health_probes.py hold the 1 s budget.
"""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from devtools.live import LiveServer, free_port
from tests.observability.conftest import (
    HttpResult,
    gunicorn_start,
    http,
    postgres_address,
    server_env,
    url_with,
)
from tests.observability.test_health_probes import TcpProxy

ROUNDS = 20


def ready(server: LiveServer) -> HttpResult:
    return http(server.base_url, "GET", "/health/ready", timeout=60)


def report(label: str, results: list[HttpResult]) -> None:
    ms = [r.seconds * 1000 for r in results]
    statuses = sorted({r.status for r in results})
    print(
        f"{label:<34} status {statuses}  n={len(ms)}  median {statistics.median(ms):7.1f} ms"
        f"  max {max(ms):7.1f} ms"
    )


def main() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database")
    logs = Path(tempfile.mkdtemp(prefix="measure-ready-"))

    closed = free_port()
    env = server_env(f"postgresql://postgres@127.0.0.1:{closed}/nothing")
    server = gunicorn_start(env=env, port=free_port(), workers=2, log_path=logs / "closed.log")
    try:
        report("ready, database port closed", [ready(server) for _ in range(ROUNDS)])
        live = [http(server.base_url, "GET", "/health/live") for _ in range(ROUNDS)]
        report("live, database port closed", live)
    finally:
        server.stop()

    proxy = TcpProxy(postgres_address(url), free_port())
    proxy.start()
    env = server_env(url_with(url, port=proxy.port))
    server = gunicorn_start(env=env, port=free_port(), workers=2, log_path=logs / "proxy.log")
    try:
        report("ready, database up (via proxy)", [ready(server) for _ in range(ROUNDS)])
        proxy.stop()
        report("ready, proxy cut", [ready(server) for _ in range(ROUNDS)])
        started = time.monotonic()
        proxy.start()
        while ready(server).status != 200:
            time.sleep(0.05)
        print(f"{'back to 200 after restore':<34} {(time.monotonic() - started) * 1000:.0f} ms")

        # Silent: connections are accepted and never answered (a partition, a hung host).
        proxy.stop()
        silent = socket.socket()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", proxy.port))
        silent.listen(64)
        held: list[object] = []

        def accept_forever() -> None:
            while True:
                try:
                    held.append(silent.accept())
                except OSError:
                    return

        threading.Thread(target=accept_forever, daemon=True).start()
        report("ready, database silent", [ready(server) for _ in range(4)])
        silent.close()
    finally:
        server.stop()
        proxy.stop()


if __name__ == "__main__":
    main()
