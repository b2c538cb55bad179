"""Readiness follows the database within a second, and recovers without a restart;
liveness never touches the database. Run against gunicorn processes (production
settings) whose database is a closed port, or a TCP proxy we cut and restore in front
of the real PostgreSQL."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from devtools.live import LiveServer, free_port
from tests.observability.conftest import (
    gunicorn_start,
    http,
    postgres_address,
    server_env,
    url_with,
)

pytestmark = pytest.mark.live_server_process

# The budget for a 503 when the database is gone.
READY_BUDGET_SECONDS = 1.0


class TcpProxy:
    """A loopback TCP proxy we can cut (every connection reset, port closed) and restore."""

    def __init__(self, target: tuple[str, int], port: int) -> None:
        self.target = target
        self.port = port
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update({client, upstream})
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def ready(server: LiveServer):
    return http(server.base_url, "GET", "/health/ready", timeout=10)


def wait_for_status(server: LiveServer, status: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if ready(server).status == status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"/health/ready never answered {status} within {timeout}s")


@pytest.fixture
def server_on_closed_port(tmp_path) -> Iterator[LiveServer]:
    closed = free_port()  # nothing listens there: connections are refused
    env = server_env(f"postgresql://postgres@127.0.0.1:{closed}/nothing")
    server = gunicorn_start(env=env, port=free_port(), workers=2, log_path=tmp_path / "g.log")
    try:
        yield server
    finally:
        server.stop()


def test_ready_is_503_within_a_second_when_the_database_port_is_closed(server_on_closed_port):
    for _ in range(6):
        result = ready(server_on_closed_port)
        assert result.status == 503
        assert result.json()["checks"]["database"] is False
        assert result.seconds < READY_BUDGET_SECONDS, result.seconds


def test_live_is_200_while_the_database_is_unreachable(server_on_closed_port):
    for _ in range(4):
        result = http(server_on_closed_port.base_url, "GET", "/health/live")
        assert result.status == 200
        assert result.json() == {"status": "ok"}
        assert result.seconds < 0.5


@pytest.fixture
def proxied(process_database_url, tmp_path) -> Iterator[tuple[LiveServer, TcpProxy]]:
    proxy = TcpProxy(postgres_address(process_database_url), free_port())
    proxy.start()
    env = server_env(url_with(process_database_url, port=proxy.port))
    server = gunicorn_start(env=env, port=free_port(), workers=2, log_path=tmp_path / "g.log")
    try:
        yield server, proxy
    finally:
        server.stop()
        proxy.stop()


def test_ready_follows_the_database_down_and_back_up_without_a_restart(proxied):
    server, proxy = proxied
    workers_before = server.logs().count("Booting worker")
    assert workers_before == 2
    for _ in range(6):  # both workers hold a persistent connection through the proxy
        assert ready(server).status == 200

    proxy.stop()
    down = [ready(server) for _ in range(6)]
    assert [r.status for r in down] == [503] * 6
    assert all(r.json()["checks"]["database"] is False for r in down)
    assert max(r.seconds for r in down) < READY_BUDGET_SECONDS, [r.seconds for r in down]
    assert http(server.base_url, "GET", "/health/live").status == 200

    proxy.start()
    wait_for_status(server, 200, timeout=5)
    assert [ready(server).status for _ in range(6)] == [200] * 6
    assert server.process.poll() is None
    assert server.logs().count("Booting worker") == workers_before, "a worker restarted"
