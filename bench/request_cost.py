"""What a POST /api/predict costs outside the analysis: body parsing, Django, DRF, middleware.

    .venv/bin/python -m bench.request_cost                   # SQLite file in a temp dir
    .venv/bin/python -m bench.request_cost --database-url postgresql://postgres@127.0.0.1:5432/reqbench
    .venv/bin/python -m bench.request_cost --profile         # plus a cProfile of the small upload

Prints figures and asserts nothing about speed (STYLE.md, 18). Everything runs in this
one process, with the production settings `make bench` uses (DEBUG off, JSON logs at
LOG_LEVEL=WARNING, Prometheus in multiprocess mode, throttles on but out of reach), so
no socket or gunicorn is in the figures:

1. **Body to bytes**: for a ~3 MB phone JPEG and a ~35 kB browser-crop JPEG (built by
   bench/workloads.py from the real crops, never written to disk), the time from a
   ``wsgi.input`` stream to the upload's bytes in the view: Django's MultiPartParser
   alone, a WSGIRequest's ``FILES``, and DRF's ``request.FILES``; with a memcpy of the
   body for scale; and from a socket, through gunicorn's own ``wsgi.input`` (its Body,
   as a sync worker reads it), with and without healthguard/request_body.py.
2. **The rest of a request**: ``healthguard.wsgi.application`` called with a WSGI environ
   per request. "rest" is the wall time minus the Server-Timing stages, split by a probe
   between each pair of middleware and by timers on DRF's steps (authentication,
   throttles, content negotiation, parsing, serialising, rendering).

A PostgreSQL URL is used as given (the database is created and migrated when missing;
only its tables are touched); the default is a throwaway SQLite file.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import os
import pstats
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

# This module is also the probe middleware's home ("bench.request_cost.StageProbe");
# run with -m it is __main__, so both names must be the one module.
sys.modules.setdefault("bench.request_cost", sys.modules[__name__])

_records: dict[str, list[float]] = defaultdict(list)
_probe_marks: list[tuple[int, str, float]] = []
_probe_count = 0


class StageProbe:
    """Middleware that notes the time a request passes it, on the way in and out."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        global _probe_count
        self.get_response = get_response
        # Django builds the chain from the innermost middleware outwards.
        self.index = _probe_count
        _probe_count += 1

    def __call__(self, request: Any) -> Any:
        _probe_marks.append((self.index, "in", time.perf_counter()))
        response = self.get_response(request)
        _probe_marks.append((self.index, "out", time.perf_counter()))
        return response


def _timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            _records[name].append((time.perf_counter() - started) * 1000)

    return wrapper


def _environ_setup(database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="healthguard.settings",
        DEBUG="0",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        LOG_FORMAT="json",
        DATABASE_URL=database_url,
        THROTTLE_ANON_PREDICT="1000000/second",
        THROTTLE_USER_PREDICT="1000000/second",
    )
    os.environ.setdefault("SECRET_KEY", "request-cost-" + os.urandom(8).hex())
    # As under gunicorn: each sample is written to an mmap'd file (set before any import
    # of prometheus_client).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="request-cost-prom-")


def _database_prepare(database_url: str) -> None:
    if database_url.startswith("postgres"):
        import psycopg

        base, _, name = database_url.rpartition("/")
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{statistics.median(ordered):8.3f} {p90:8.3f}"


def _environ_for(body: bytes, content_type: str, **extra: Any) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/predict",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    environ.update(extra)
    return environ


# --- 1. body to bytes ----------------------------------------------------------------


def body_to_bytes(uploads: list[Any], repeat: int) -> None:
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIRequest
    from django.http.multipartparser import MultiPartParser
    from django.utils.module_loading import import_string
    from rest_framework.parsers import MultiPartParser as DRFMultiPartParser
    from rest_framework.request import Request

    handler_class = import_string(settings.FILE_UPLOAD_HANDLERS[0])

    def memcpy(body: bytes, ctype: str) -> bytes:
        return bytes(memoryview(body))  # one copy of the whole body

    def parser_only(body: bytes, ctype: str) -> bytes:
        meta = {"CONTENT_TYPE": ctype, "CONTENT_LENGTH": str(len(body))}
        parser = MultiPartParser(meta, io.BytesIO(body), [handler_class()], "utf-8")
        _post, files = parser.parse()
        return bytes(files.getlist("image")[0].read())

    def django_request(body: bytes, ctype: str) -> bytes:
        request = WSGIRequest(_environ_for(body, ctype))
        return bytes(request.FILES.getlist("image")[0].read())

    def drf_request(body: bytes, ctype: str) -> bytes:
        request = Request(WSGIRequest(_environ_for(body, ctype)), parsers=[DRFMultiPartParser()])
        return bytes(request.FILES.getlist("image")[0].read())

    def over_socket(wrap: bool) -> Callable[[bytes, str], bytes]:
        # The body as a gunicorn sync worker receives it: its Body over a socket, fed by
        # a thread (the kernel's buffer holds less than a phone photo).
        from gunicorn.http.body import Body, LengthReader
        from gunicorn.http.unreader import SocketUnreader

        from healthguard.request_body import body_input_for

        def way(body: bytes, ctype: str) -> bytes:
            client, server = socket.socketpair()
            sender = threading.Thread(target=client.sendall, args=(body,))
            sender.start()
            try:
                stream: Any = Body(LengthReader(SocketUnreader(server), len(body)))
                if wrap:
                    stream = body_input_for(stream)
                request = WSGIRequest(_environ_for(body, ctype, **{"wsgi.input": stream}))
                return bytes(request.FILES.getlist("image")[0].read())
            finally:
                sender.join()
                client.close()
                server.close()

        return way

    ways = (
        ("memcpy of the body (for scale)", memcpy),
        ("MultiPartParser + upload handler", parser_only),
        ("WSGIRequest.FILES (LimitedStream)", django_request),
        ("DRF Request.FILES", drf_request),
        ("socket: gunicorn Body -> WSGIRequest.FILES", over_socket(wrap=False)),
        ("socket: + healthguard.request_body", over_socket(wrap=True)),
    )
    print("\n1. Body to bytes (ms: median, p90)")
    for upload in uploads:
        size = f"body {len(upload.body) / 1e6:.3f} MB, image {upload.image_bytes} B"
        print(f"  {upload.name}: {size}")
        for label, way in ways:
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                data = way(upload.body, upload.content_type)
                times.append((time.perf_counter() - started) * 1000)
            assert len(data) >= upload.image_bytes  # the right bytes came out
            print(f"    {label:44s} {_summary(times)}")


# --- 2. the rest of a request --------------------------------------------------------


def _drf_timers() -> None:
    from rest_framework import renderers, views
    from rest_framework.request import Request

    from predictions import api, idempotency

    for name in (
        "perform_authentication",
        "check_permissions",
        "check_throttles",
        "perform_content_negotiation",
        "determine_version",
        "finalize_response",
    ):
        setattr(views.APIView, name, _timed(f"drf {name}", getattr(views.APIView, name)))
    for owner, name, label in (
        (Request, "_parse", "drf parse body (request.FILES)"),
        (renderers.JSONRenderer, "render", "drf JSONRenderer.render"),
        (api.PredictionSerializer, "to_representation", "drf PredictionSerializer.data"),
        (api.PredictionRequestSerializer, "is_valid", "drf PredictionRequestSerializer.is_valid"),
        (idempotency, "prediction_create_once", "service (prediction_create_once)"),
    ):
        setattr(owner, name, _timed(label, getattr(owner, name)))


@contextlib.contextmanager
def _probed_application(middleware: list[str]) -> Iterator[Any]:
    """A WSGIHandler whose middleware chain has a StageProbe around every middleware."""
    global _probe_count
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    probed: list[str] = []
    for name in middleware:
        probed += ["bench.request_cost.StageProbe", name]
    probed.append("bench.request_cost.StageProbe")
    _probe_count = 0
    with override_settings(MIDDLEWARE=probed):
        yield WSGIHandler()


def _call(application: Any, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    status_headers: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status_headers["status"] = int(status.split()[0])
        status_headers["headers"] = dict(headers)

    result = application(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return status_headers["status"], status_headers["headers"], body


def _server_timing(header: str) -> dict[str, float]:
    stages = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            stages[name] = float(dur)
    return stages


def request_rest(uploads: list[Any], repeat: int, profile: bool) -> None:
    from django.conf import settings

    middleware = list(settings.MIDDLEWARE)
    _drf_timers()
    with _probed_application(middleware) as application:
        for upload in uploads:
            browser_cookie = {"HTTP_COOKIE": f"{settings.CSRF_COOKIE_NAME}={'a' * 32}"}
            clients: tuple[tuple[str, dict[str, str]], ...] = (
                ("API client, no cookies", {}),
                ("browser, CSRF cookie", browser_cookie),
            )
            for label, extra in clients:
                _request_rest_one(application, middleware, upload, label, extra, repeat, profile)


def _request_rest_one(
    application: Any, middleware: list[str], upload: Any, label: str, extra: dict[str, str],
    repeat: int, profile: bool,
) -> None:
    for _ in range(3):  # warm: first-request imports, caches, connection
        _call(application, _environ_for(upload.body, upload.content_type, **extra))
    _records.clear()
    per_middleware: dict[int, list[float]] = defaultdict(list)
    totals, rests, stage_sums, outside, commits = [], [], [], [], []
    statuses: set[int] = set()
    profiler = cProfile.Profile() if profile else None
    for _ in range(repeat):
        _probe_marks.clear()
        environ = _environ_for(upload.body, upload.content_type, **extra)
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        status, headers, _body = _call(application, environ)
        total = (time.perf_counter() - started) * 1000
        if profiler is not None:
            profiler.disable()
        statuses.add(status)
        timing = _server_timing(headers.get("Server-Timing", ""))
        stages = sum(timing.values())
        # AtomicUploadMiddleware's COMMIT; before it was a stage, it was counted as rest.
        commits.append(timing.get("commit", 0.0))
        totals.append(total)
        stage_sums.append(stages)
        rests.append(total - stages)
        marks = {(i, way): t for i, way, t in _probe_marks}
        # Probes are numbered from the innermost (Django builds the chain inside out);
        # a middleware's own cost is the time between its outer and inner probes, both
        # ways.
        outermost = _probe_count - 1
        outside.append(total - (marks[(outermost, "out")] - marks[(outermost, "in")]) * 1000)
        for position in range(len(middleware) + 1):
            outer = outermost - position
            inner = outer - 1
            if inner < 0:  # the innermost probe: URL resolution and the view
                cost = marks[(outer, "out")] - marks[(outer, "in")]
            else:
                cost = (marks[(inner, "in")] - marks[(outer, "in")]) + (
                    marks[(outer, "out")] - marks[(inner, "out")]
                )
            per_middleware[position].append(cost * 1000)
    print(
        f"\n  {upload.name} ({upload.image_bytes} B), {label}: HTTP {sorted(statuses)}, "
        f"{repeat} requests (ms: median, p90)"
    )
    print(f"    {'wall time, application() call':52s} {_summary(totals)}")
    print(f"    {'Server-Timing stages (sum)':52s} {_summary(stage_sums)}")
    print(f"    {'rest = wall - stages':52s} {_summary(rests)}")
    print(f"    {'  of the stages, commit (counted as rest before)':52s} {_summary(commits)}")
    print(f"    {'WSGIHandler outside the middleware (request, signals)':52s} {_summary(outside)}")
    print("    middleware (own time, in + out):")
    for position, name in enumerate(middleware):
        print(f"      {name.rsplit('.', 1)[-1]:50s} {_summary(per_middleware[position])}")
    print(f"      {'URL resolution + view (below all middleware)':50s} "
          f"{_summary(per_middleware[len(middleware)])}")
    print("    inside the view:")
    for name, values in sorted(_records.items()):
        print(f"      {name:50s} {_summary(values)}")
    if profiler is not None:
        print("\n    cProfile, top 30 by own time:")
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(30)
        print("\n".join("      " + line for line in stream.getvalue().splitlines()[6:]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--repeat", type=int, default=30, help="requests per measurement")
    parser.add_argument("--profile", action="store_true", help="cProfile the small upload")
    args = parser.parse_args(argv)
    database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/request-cost.sqlite3"
    _environ_setup(database_url)
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    _database_prepare(database_url)
    import healthguard.wsgi  # noqa: F401  (loads the models, as a worker does)
    from bench.workloads import browser_uploads, phone_uploads

    # The second phone upload: the gate lets it through (bench/workloads.py).
    phone = phone_uploads(count=2)[1]
    browser = browser_uploads(count=1)[0]
    print(f"database: {database_url.split('@')[-1]}; python {sys.version.split()[0]}")
    body_to_bytes([phone, browser], repeat=max(args.repeat, 10))
    print("\n2. The rest of POST /api/predict")
    request_rest([browser, phone], repeat=args.repeat, profile=args.profile)


if __name__ == "__main__":
    main()
