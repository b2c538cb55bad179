#!/usr/bin/env python3
"""Load with nothing lost: many concurrent predictions, then every one accounted for.

Starts gunicorn as production does (`gunicorn -c gunicorn.conf.py`, DEBUG off, 2
workers) on 127.0.0.1 against a database of its own on the local PostgreSQL (created
and migrated here, dropped afterwards), sends at least --requests predictions from
--clients concurrent threads with real images, then checks:

  * no response is a 5xx (and none failed at the connection level);
  * every 201 has exactly one row with the same message_id, the same score (rounded
    to 2 decimals, as the API returns it) and the SHA-256 of the image that was sent;
  * the number of rows equals the number of 201s (nothing stored for a refusal, such as
    the photo gate's 422 for the few real crops it refuses, no
    duplicates, nothing lost).

Bounded in count (--requests) and time (--max-seconds). Prints a summary; exits 1 on
any failure. Run from the repository root:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python scripts/load_test.py --requests 2000 --clients 16
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devtools.live import (  # noqa: E402  (needs the repository on sys.path)
    LiveServer,
    database_drop,
    database_url_for,
    migrate,
)
from devtools.multipart import image_upload  # noqa: E402

DEFAULT_IMAGES = REPO_ROOT.parent / "shared" / "data" / "anemia" / "images" / "cpanemic"


@dataclass(frozen=True)
class Sent:
    status: int
    image_sha256: str
    seconds: float
    body: dict[str, Any] | None
    error: str = ""


def post_one(host: str, port: int, image: bytes, name: str, timeout: float) -> Sent:
    body, ctype = image_upload(image, name)
    sha = hashlib.sha256(image).hexdigest()
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/api/predict", body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        raw = resp.read()
        elapsed = time.perf_counter() - started
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        return Sent(resp.status, sha, elapsed, parsed)
    except (OSError, http.client.HTTPException) as exc:
        return Sent(0, sha, time.perf_counter() - started, None, f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def run_clients(
    server: LiveServer,
    images: list[tuple[str, bytes]],
    *,
    total: int,
    clients: int,
    deadline: float,
    timeout: float,
) -> list[Sent]:
    results: list[Sent] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            name, data = images[index % len(images)]
            sent = post_one(server.host, server.port, data, name, timeout)
            with lock:
                results.append(sent)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic() + timeout))
    with lock:
        return list(results)


def stored_rows(database_url: str) -> list[tuple[str, float, str]]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return list(
            conn.execute(
                "SELECT message_id, risk_score, image_sha256 FROM predictions_prediction"
            ).fetchall()
        )


def check(results: list[Sent], rows: list[tuple[str, float, str]]) -> list[str]:
    failures: list[str] = []
    server_errors = [r for r in results if r.status >= 500]
    broken = [r for r in results if r.status == 0]
    if server_errors:
        failures.append(f"{len(server_errors)} responses were 5xx: {server_errors[0].body}")
    if broken:
        failures.append(f"{len(broken)} requests failed without a response: {broken[0].error}")
    for r in results:
        if r.status >= 400 and (r.body is None or set(r.body) != {"error"}):
            failures.append(f"a {r.status} was not in the error shape: {r.body!r:.200}")
            break

    created = [r for r in results if r.status == 201]
    by_id: dict[str, list[tuple[str, float, str]]] = {}
    for row in rows:
        by_id.setdefault(row[0], []).append(row)
    mismatched = 0
    for r in created:
        assert r.body is not None
        matches = by_id.get(r.body.get("message_id", ""), [])
        if len(matches) != 1:
            failures.append(f"{r.body.get('message_id')}: {len(matches)} rows, expected 1")
            continue
        _, score, sha = matches[0]
        if round(score, 2) != r.body["risk_score"] or sha != r.image_sha256:
            mismatched += 1
            if mismatched <= 3:
                failures.append(
                    f"{r.body['message_id']}: stored score {score} / sha {sha[:12]} vs "
                    f"answered {r.body['risk_score']} / sent {r.image_sha256[:12]}"
                )
        if r.body.get("image_sha256") not in (None, r.image_sha256):
            failures.append(f"{r.body['message_id']}: the answer's image_sha256 differs")
    if mismatched > 3:
        failures.append(f"... {mismatched} rows in all differ from their answers")
    if len(rows) != len(created):
        failures.append(f"{len(rows)} rows stored for {len(created)} answers of 201")
    return failures


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="predictions to send")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--max-seconds", type=float, default=240, help="stop sending after")
    parser.add_argument("--request-timeout", type=float, default=60)
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--database", default="healthguard_load", help="database to (re)create")
    args = parser.parse_args(argv)

    images = sorted(args.images.glob("*.png"))
    if not images:
        print(f"no PNG images in {args.images}", file=sys.stderr)
        return 1
    payloads = [(p.name, p.read_bytes()) for p in images]
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at the local PostgreSQL server", file=sys.stderr)
        return 1

    database_url = database_url_for(args.database)
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    env.update(
        {
            "SECRET_KEY": "load-test-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "DATABASE_URL": database_url,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DEBUG": "0",
            # Plain http on loopback: no HTTPS redirect, cookies without Secure.
            "SECURE_COOKIES": "0",
            # One client address sends everything: the throttles must not bite (DRF's
            # user throttle counts anonymous clients by address too).
            "THROTTLE_ANON_PREDICT": "1000000/minute",
            "THROTTLE_USER_PREDICT": "1000000/minute",
            "LOG_LEVEL": "WARNING",
        }
    )
    server = LiveServer(env=env, workers=args.workers)
    print(f"database {urllib.parse.urlsplit(database_url).path.strip('/')}: migrating")
    try:
        migrate(env)
        server.start()
        print(
            f"gunicorn on {server.base_url} with {args.workers} workers; "
            f"{args.requests} predictions from {args.clients} clients, "
            f"{len(payloads)} distinct images, at most {args.max_seconds:.0f}s"
        )
        started = time.monotonic()
        results = run_clients(
            server,
            payloads,
            total=args.requests,
            clients=args.clients,
            deadline=started + args.max_seconds,
            timeout=args.request_timeout,
        )
        elapsed = time.monotonic() - started
        rows = stored_rows(database_url)
    finally:
        server.stop()
        log = server.logs()
    try:
        failures = check(results, rows)
    finally:
        database_drop(database_url)
    if len(results) < args.requests:
        failures.append(
            f"only {len(results)} of {args.requests} requests sent in {args.max_seconds:.0f}s"
        )

    statuses = Counter(r.status for r in results)
    latencies = [r.seconds * 1000 for r in results if r.status]
    codes = Counter(
        r.body["error"]["code"] for r in results if r.status >= 400 and r.body and "error" in r.body
    )
    print(f"sent {len(results)} in {elapsed:.1f}s: {len(results) / elapsed:.1f} requests/s")
    print("statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    if codes:
        print("error codes: " + ", ".join(f"{c}: {n}" for c, n in codes.most_common()))
    if latencies:
        print(
            f"latency ms: p50 {statistics.median(latencies):.0f}, "
            f"p95 {percentile(latencies, 0.95):.0f}, p99 {percentile(latencies, 0.99):.0f}, "
            f"max {max(latencies):.0f}"
        )
    print(f"rows stored: {len(rows)}; answers of 201: {statuses.get(201, 0)}")
    if "Traceback" in log and "WORKER TIMEOUT" not in log:
        failures.append("the server logged a traceback (see the gunicorn log)")
    if failures:
        print("\nFAILED:")
        for failure in failures:
            print(f"  - {failure}")
        print(f"gunicorn log: {server.log_path}")
        return 1
    print("OK: no 5xx, every 201 stored exactly once with its score and image hash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
