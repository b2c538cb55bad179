"""Run the service as production does (gunicorn -c gunicorn.conf.py) in a subprocess.

Used by tests that need the real server: raw sockets (slowloris), worker timeouts,
several workers sharing a cache, database outages. Each server gets a free port on
127.0.0.1, its own migrated database, and is always stopped by the fixture that
started it. Also used by scripts/load_test.py and scripts/fuzz_api.py (stdlib only).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def live_db_name(purpose: str) -> str:
    """`<database of DATABASE_URL>_<purpose>`: one per checkout's test database."""
    path = urllib.parse.urlsplit(os.environ.get("DATABASE_URL", "")).path.strip("/")
    return f"{path or 'healthguard'}_{purpose}"


def database_url_for(name: str) -> str:
    """A database of its own for a live server, on the server of DATABASE_URL.

    With PostgreSQL in DATABASE_URL, the database `name` is (re)created there; without
    it, a fresh SQLite file in the temp dir.
    """
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        path = Path(tempfile.mkdtemp(prefix="healthguard-live-")) / f"{name}.sqlite3"
        return f"sqlite:///{path}"
    import psycopg

    parts = urllib.parse.urlsplit(base)
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def database_drop(url: str) -> None:
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")


def migrate(env: dict[str, str]) -> None:
    """Migrate, and collect static files as the image build does: with DEBUG off the
    pages (404 pages included) need the manifest that collectstatic writes."""
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LiveServer:
    """gunicorn with gunicorn.conf.py, bound to 127.0.0.1:<port>."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    workers: int = 2
    timeout: int | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
    )

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, *, wait_ready: bool = True, ready_timeout: float = 90) -> LiveServer:
        args = [f"--bind {self.host}:{self.port}"]
        if self.timeout is not None:
            args.append(f"--timeout {self.timeout} --graceful-timeout 2")
        env = {
            **self.env,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(self.workers),
            "GUNICORN_CMD_ARGS": " ".join(args),
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="healthguard-prom-"),
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "healthguard.wsgi"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_listening(timeout=30)
        if wait_ready:
            self.wait_for("/health/ready", 200, timeout=ready_timeout)
        return self

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.logs()}")
            with contextlib.suppress(OSError), socket.create_connection(
                (self.host, self.port), timeout=1
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"gunicorn did not listen within {timeout}s:\n{self.logs()}")

    def wait_for(self, path: str, status: int, timeout: float) -> Response:
        deadline = time.monotonic() + timeout
        last: Response | None = None
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, http.client.HTTPException):
                last = self.request("GET", path, timeout=5)
                if last.status == status:
                    return last
            time.sleep(0.2)
        raise TimeoutError(f"{path} did not answer {status} within {timeout}s (last: {last})")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Response(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()

    def metric_total(self, name: str) -> float:
        """Sum of every sample of a counter over all labels, from /metrics."""
        text = self.request("GET", "/metrics").body.decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + "{", name + " "))
        )

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The production environment (DEBUG off), with plain-http cookies and a high
    prediction throttle unless a test asks for something else."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "SECRET_KEY": "live-test-" + "k" * 40,
            "DATABASE_URL": database_url,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DEBUG": "0",
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
            "SECURE_COOKIES": "0",
            "THROTTLE_ANON_PREDICT": "100000/minute",
            "THROTTLE_USER_PREDICT": "100000/minute",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def live_server(
    name: str, *, workers: int = 2, timeout: int | None = None, **extra_env: str
) -> Iterator[LiveServer]:
    """A migrated database of its own and gunicorn on it; both gone afterwards."""
    url = database_url_for(live_db_name(name))
    env = server_env(url, **extra_env)
    server = LiveServer(env=env, workers=workers, timeout=timeout)
    try:
        migrate(env)
        server.start()
        yield server
    finally:
        server.stop()
        database_drop(url)
