"""Run the service as production does (gunicorn -c gunicorn.conf.py) in a subprocess.

The one harness for a real server: tests that need it (raw sockets, worker timeouts,
several workers sharing a cache, database outages, multiprocess metrics), the benchmark
(bench/run.py) and scripts/load_test.py and scripts/fuzz_api.py. Each server gets a free
port on 127.0.0.1 and, through `live_server`, its own migrated database; whoever starts
one stops it. Stdlib only (psycopg when DATABASE_URL names PostgreSQL).
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

from devtools.multipart import image_upload

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


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def _admin(url: str) -> tuple[str, str]:
    """The server's maintenance database URL, and the database name of `url`."""
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise ValueError(f"no database name in {url}")
    return urllib.parse.urlunsplit(parts._replace(path="/postgres")), name


def database_recreate(url: str) -> None:
    """Drop and create the PostgreSQL database that `url` names (never any other)."""
    import psycopg
    from psycopg import sql

    admin_url, name = _admin(url)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def database_url_for(name: str) -> str:
    """A database of its own for a live server, on the server of DATABASE_URL.

    With PostgreSQL in DATABASE_URL, the database `name` is (re)created there; without
    it, a fresh SQLite file in the temp dir.
    """
    base = os.environ.get("DATABASE_URL", "")
    if not is_postgres(base):
        path = Path(tempfile.mkdtemp(prefix="healthguard-live-")) / f"{name}.sqlite3"
        return f"sqlite:///{path}"
    parts = urllib.parse.urlsplit(base)
    url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    database_recreate(url)
    return url


def database_drop(url: str) -> None:
    if not is_postgres(url):
        return
    import psycopg
    from psycopg import sql

    admin_url, name = _admin(url)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(  # noqa: S603  (a fixed command)
        [str(VENV_BIN / "python"), "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")


def verify_auditlog(env: dict[str, str]) -> tuple[int, str]:
    """`manage.py verify_auditlog --grace-seconds 0` on env's database: (exit code, output)."""
    result = subprocess.run(  # noqa: S603  (a fixed command)
        [str(VENV_BIN / "python"), "manage.py", "verify_auditlog", "--grace-seconds", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def audit_unlinked(url: str) -> tuple[int, float]:
    """Audit entries sealed and not linked yet on the PostgreSQL at `url`, and the age
    in seconds of the oldest (deferred linking: predictions/audit/chain.py)."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(e.timestamp)) "
            "FROM predictions_auditchainlink l JOIN auditlog_logentry e ON e.id = l.entry_id "
            "WHERE l.seq IS NULL"
        ).fetchone()
    if row is None:  # an aggregate always has a row
        raise RuntimeError("no answer to the unlinked-entries count")
    return int(row[0]), float(row[1] or 0.0)


def audit_linked_within(url: str, limit_s: float) -> float | None:
    """Seconds until no audit entry waits for a linker; None when some still do after
    `limit_s`."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if audit_unlinked(url)[0] == 0:
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def migrate(env: dict[str, str], *, collectstatic: bool = True) -> None:
    """Migrate, and collect static files as the image build does: with DEBUG off the
    pages (404 pages included) need the manifest that collectstatic writes."""
    manage(env, "migrate", "--noinput")
    if collectstatic:
        static_collect(env)


_static_collected = False


def static_collect(env: dict[str, str]) -> None:
    """collectstatic, once per process (a test session, a bench run).

    Every server of a checkout reads the same STATIC_ROOT, and the static sources do not
    change while tests run, so one collection serves them all; each further one would
    cost a Django start-up and a re-hash of every file for nothing.
    """
    global _static_collected
    if not _static_collected:
        manage(env, "collectstatic", "--noinput")
        _static_collected = True


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LiveServer:
    """gunicorn with gunicorn.conf.py, bound to 127.0.0.1:<port>.

    `app` replaces gunicorn.conf.py's WSGI app (the bench's naive pipeline); a
    PROMETHEUS_MULTIPROC_DIR of its own unless `env` names one.
    """

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    workers: int = 2
    timeout: int | None = None
    app: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
    )
    ready_seconds: float = 0.0  # from process start to the ready answer

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(
        self,
        *,
        wait_ready: bool = True,
        ready_path: str = "/health/ready",
        ready_timeout: float = 90,
        poll: float = 0.05,
    ) -> LiveServer:
        """Start gunicorn; with `wait_ready`, return once `ready_path` answers 200."""
        args = [f"--bind {self.host}:{self.port}"]
        if self.timeout is not None:
            args.append(f"--timeout {self.timeout} --graceful-timeout 2")
        env = {
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="healthguard-prom-"),
            **self.env,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(self.workers),
            "GUNICORN_CMD_ARGS": " ".join(args),
        }
        started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  (a fixed command)
                [
                    str(VENV_BIN / "gunicorn"),
                    "-c",
                    "gunicorn.conf.py",
                    self.app or "healthguard.wsgi",
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_listening(timeout=min(30, ready_timeout), poll=poll)
        if wait_ready:
            self.wait_for(ready_path, 200, timeout=ready_timeout, poll=poll)
            self.ready_seconds = time.perf_counter() - started
        return self

    def wait_listening(self, timeout: float, poll: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.logs()}")
            with contextlib.suppress(OSError), socket.create_connection(
                (self.host, self.port), timeout=1
            ):
                return
            time.sleep(poll)
        raise TimeoutError(f"gunicorn did not listen within {timeout}s:\n{self.logs()}")

    def wait_for(self, path: str, status: int, timeout: float, poll: float = 0.05) -> Response:
        deadline = time.monotonic() + timeout
        last: Response | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.logs()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                last = self.request("GET", path, timeout=5)
                if last.status == status:
                    return last
            time.sleep(poll)
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

    def json_lines(self) -> list[dict[str, Any]]:
        """The log's JSON lines (LOG_FORMAT=json), parsed."""
        return [json.loads(line) for line in self.logs().splitlines() if line.startswith("{")]

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def predict(
    server: LiveServer, image: bytes, filename: str = "e.png", headers: dict[str, str] | None = None
) -> Response:
    """POST /api/predict with one image, as the page's form would send it."""
    body, content_type = image_upload(image, filename)
    return server.request(
        "POST", "/api/predict", body=body, headers={"Content-Type": content_type, **(headers or {})}
    )


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
