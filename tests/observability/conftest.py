"""Helpers for the observability tests: scrape and parse /metrics, capture JSON logs,
and run the service in real processes (gunicorn) against a database of our own."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from pythonjsonlogger.json import JsonFormatter

from healthguard.request_id import RequestIdLogFilter
from tests.optional import require_postgres, require_tool

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- /metrics -------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[str, Any]:
    """name -> family, as Prometheus would read the scrape."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample_value(text: str, sample_name: str, **labels: str) -> float:
    """The value of one sample (0.0 when absent: a counter never incremented)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return float(sample.value)
    return 0.0


def samples_of(text: str, sample_name: str) -> list[Any]:
    return [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample_name
    ]


def scrape(client: Any, token: str | None = None) -> str:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return response.content.decode()


# --- logs -----------------------------------------------------------------------------


def json_formatter() -> JsonFormatter:
    logging_conf: dict[str, Any] = settings.LOGGING
    conf = dict(logging_conf["formatters"]["json"])
    conf.pop("()")
    return JsonFormatter(**conf)


@dataclass
class JsonLogCapture:
    stream: io.StringIO = field(default_factory=io.StringIO)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["name"] == "healthguard.requests"]


@pytest.fixture
def json_logs() -> Iterator[JsonLogCapture]:
    """Every log line, formatted by the production JSON formatter, one dict per line."""
    capture = JsonLogCapture()
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdLogFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


# --- real processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_url() -> str:
    return require_postgres()


def url_with(url: str, *, database: str | None = None, port: int | None = None) -> str:
    """The same server URL with another database name and/or port."""
    conf = dj_database_url.parse(url)
    user = conf.get("USER") or "postgres"
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    host = conf.get("HOST") or "127.0.0.1"
    return (
        f"postgresql://{user}{password}@{host}:{port or conf.get('PORT') or 5432}"
        f"/{database or conf['NAME']}"
    )


def postgres_address(url: str) -> tuple[str, int]:
    conf = dj_database_url.parse(url)
    return (conf.get("HOST") or "127.0.0.1", int(conf.get("PORT") or 5432))


@pytest.fixture(scope="session")
def process_database_url() -> Iterator[str]:
    """A database of our own (other suites share the server), migrated with manage.py."""
    base = postgres_url()
    name = f"{dj_database_url.parse(base)['NAME']}_obs_proc"
    admin = url_with(base, database="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = url_with(base, database=name)
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO_ROOT,
        env={**server_env(url), "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """Production settings (DEBUG off, JSON logs) for a server subprocess."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PROMETHEUS_", "APPLICATIONINSIGHTS_", "GUNICORN_"))
        and k not in {"DEBUG", "LOG_FORMAT", "LOG_LEVEL", "METRICS_TOKEN", "WEB_CONCURRENCY"}
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "observability-test-secret-key-not-for-production-0123456789",
            "DJANGO_SETTINGS_MODULE": "healthguard.settings",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "THROTTLE_ANON_PREDICT": "1000/minute",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    base_url: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_text().splitlines():
            if raw.startswith("{"):
                lines.append(json.loads(raw))
        return lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def gunicorn_start(
    *, env: dict[str, str], port: int, workers: int, log_path: Path
) -> ServerProcess:
    """`gunicorn -c gunicorn.conf.py` as production runs it, bound to loopback only."""
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            gunicorn,
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ],
        cwd=REPO_ROOT,
        env={**env, "PORT": str(port), "WEB_CONCURRENCY": str(workers)},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    wait_until_listening(server)
    return server


def wait_until_listening(server: ServerProcess, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.log_text()[-4000:]}")
        try:
            with urllib.request.urlopen(server.base_url + "/health/live", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise AssertionError(f"server did not answer in {timeout}s:\n{server.log_text()[-4000:]}")


# --- a plain HTTP client for the server subprocesses ----------------------------------


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    base_url: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
) -> HttpResult:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return HttpResult(
        response.status,
        {k.lower(): v for k, v in response.getheaders()},
        data,
        time.perf_counter() - started,
    )


def multipart_image(data: bytes, filename: str = "eyelid.png") -> tuple[bytes, str]:
    boundary = "----healthguard-test-boundary-7d1f"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="image"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
