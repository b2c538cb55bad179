"""The load generator: a separate process that drives POST /api/predict over HTTP.

    python -m bench.loadgen          (started by bench/run.py, not by hand)

It reads one JSON command per line on stdin and answers one JSON line on stdout, so the
uploads (a 3 MB JPEG takes a second to build) are built once per run and the generator
never shares a process, or a GIL, with the server. Each client thread keeps its own
http.client connection per server (HTTP/1.1 keep-alive; gunicorn's sync workers close
it after each response and the thread reconnects) and spreads its requests round-robin
over the servers it is given.

Command: {"workload": "phone", "ports": [8101], "concurrency": 2, "duration": 5.0,
          "max_requests": 2000}
Answer:  {"requests", "ok", "errors", "error_samples", "rejected", "rejected_reasons",
          "elapsed_s", "rps", "latency_ms": {...}, "server_ms": {stage: median},
          "per_port": {port: count}}
"ok" are 201s (latency and requests/s count only those); "rejected" are 4xx answers, the
service refusing an upload on purpose; "errors" are everything else (5xx, no answer).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import math
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.workloads import Upload, uploads_for

HOST = "127.0.0.1"
STAGES = ("read_hash", "decode", "preprocess", "inference", "database", "commit")
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Sample:
    latency_ms: float
    port: int
    ok: bool
    status: int = 0  # 0: no HTTP answer (refused, reset, timed out)
    stages: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def rejected(self) -> bool:
        """A 4xx: the service refused this upload on purpose (its error code says why)."""
        return 400 <= self.status < 500


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


def parse_server_timing(header: str) -> dict[str, float]:
    stages: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur" and name:
                with contextlib.suppress(ValueError):
                    stages[name] = float(value)
    return stages


def error_text(response: http.client.HTTPResponse, body: bytes) -> str:
    """'HTTP 415 unsupported_media_type' from the API's error shape, else the body's start."""
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = body[:120].decode("utf-8", "replace")
    return f"HTTP {response.status} {code}"


class Client:
    """One thread's connections, one per server port."""

    def __init__(self) -> None:
        self._conns: dict[int, http.client.HTTPConnection] = {}

    def post(self, port: int, upload: Upload) -> Sample:
        conn = self._conns.get(port)
        if conn is None:
            conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
            self._conns[port] = conn
        headers = {"Content-Type": upload.content_type, "Accept": "application/json"}
        started = time.perf_counter()
        try:
            conn.request("POST", "/api/predict", body=upload.body, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            self._conns.pop(port, None)
            elapsed = (time.perf_counter() - started) * 1000.0
            return Sample(elapsed, port, False, error=f"{type(exc).__name__}: {exc}")
        elapsed = (time.perf_counter() - started) * 1000.0
        if response.will_close:
            conn.close()
        if response.status != 201:
            return Sample(elapsed, port, False, response.status, error=error_text(response, body))
        stages = parse_server_timing(response.getheader("Server-Timing", ""))
        return Sample(elapsed, port, True, response.status, stages=stages)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()


def drive(
    uploads: list[Upload], ports: list[int], concurrency: int, duration: float, max_requests: int
) -> dict[str, Any]:
    """``concurrency`` closed-loop clients for ``duration`` seconds or ``max_requests``."""
    tickets = itertools.count()  # next() on a count is atomic under the GIL
    samples: list[Sample] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def worker() -> None:
        client = Client()
        mine: list[Sample] = []
        try:
            while time.perf_counter() < deadline:
                n = next(tickets)
                if n >= max_requests:
                    break
                mine.append(client.post(ports[n % len(ports)], uploads[n % len(uploads)]))
        finally:
            client.close()
            with lock:
                samples.extend(mine)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + REQUEST_TIMEOUT_S + 5)
    elapsed = time.perf_counter() - started
    result = summarize(samples, elapsed)
    # The generator shares the machine with the server: say how much of it it took.
    result["client_cpu_share"] = (time.process_time() - cpu_started) / elapsed if elapsed else 0.0
    return result


def summarize(samples: list[Sample], elapsed: float) -> dict[str, Any]:
    ok = [s for s in samples if s.ok]
    errors = [s for s in samples if not s.ok and not s.rejected]
    rejected = [s for s in samples if s.rejected]
    latencies = [s.latency_ms for s in ok]
    result: dict[str, Any] = {
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(errors),
        "error_samples": sorted({s.error for s in errors})[:5],
        "rejected": len(rejected),
        "rejected_reasons": sorted({s.error for s in rejected}),
        "elapsed_s": elapsed,
        "rps": len(ok) / elapsed if elapsed > 0 else 0.0,
        "per_port": {},
        "latency_ms": {},
        "server_ms": {},
    }
    for s in samples:
        result["per_port"][str(s.port)] = result["per_port"].get(str(s.port), 0) + 1
    if latencies:
        result["latency_ms"] = {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "mean": statistics.fmean(latencies),
            "max": max(latencies),
        }
        server_total = []
        for stage in STAGES:
            values = [s.stages[stage] for s in ok if stage in s.stages]
            if values:
                result["server_ms"][stage] = statistics.median(values)
        # The write as the targets mean it: row, audit entry and chain record, committed.
        result["server_ms"]["database_commit"] = statistics.median(
            s.stages.get("database", 0.0) + s.stages.get("commit", 0.0) for s in ok
        )
        for s in ok:
            server_total.append(sum(s.stages.get(stage, 0.0) for stage in STAGES))
        result["server_ms"]["total"] = statistics.median(server_total)
        # Outside the timed stages: HTTP, multipart parsing, Django, DRF, the session.
        result["server_ms"]["outside"] = statistics.median(
            s.latency_ms - t for s, t in zip(ok, server_total, strict=True)
        )
    return result


def main() -> int:
    cache: dict[str, list[Upload]] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command.get("cmd") == "quit":
            break
        workload = command["workload"]
        if workload not in cache:
            cache[workload] = uploads_for(workload)
        uploads = cache[workload]
        if command.get("cmd") == "describe":
            sizes = [u.image_bytes for u in uploads]
            answer: dict[str, Any] = {
                "count": len(sizes), "mean_bytes": statistics.fmean(sizes),
                "min_bytes": min(sizes), "max_bytes": max(sizes),
            }
        else:
            answer = drive(
                uploads,
                [int(p) for p in command["ports"]],
                int(command["concurrency"]),
                float(command["duration"]),
                int(command["max_requests"]),
            )
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
