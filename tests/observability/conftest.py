"""Helpers for the observability tests: scrape and parse /metrics, capture JSON logs,
and run the service in real processes (gunicorn) against a database of our own."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dj_database_url
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from pythonjsonlogger.json import JsonFormatter

from devtools.live import LiveServer, database_drop, database_recreate, migrate
from devtools.live import server_env as live_server_env
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
    url = url_with(base, database=f"{dj_database_url.parse(base)['NAME']}_obs_proc")
    database_recreate(url)
    migrate({**server_env(url), "LOG_LEVEL": "WARNING"}, collectstatic=False)
    yield url
    database_drop(url)


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """Production settings (DEBUG off), with JSON logs, for a server subprocess."""
    return live_server_env(
        database_url,
        **{
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_FORMAT": "json",
            "THROTTLE_ANON_PREDICT": "1000/minute",
            **extra,
        },
    )


def gunicorn_start(*, env: dict[str, str], port: int, workers: int, log_path: Path) -> LiveServer:
    """`gunicorn -c gunicorn.conf.py` as production runs it, bound to loopback only,
    once it answers /health/live (ready or not: some tests start it without a database)."""
    server = LiveServer(env=env, port=port, workers=workers, log_path=log_path)
    return server.start(ready_path="/health/live", ready_timeout=60)


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


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
