"""Benchmark HealthGuard Vision as production runs it, and print what it measured.

    make bench                               (or: .venv/bin/python -m bench.run --help)

What it does, in one run:
1. Recreates a dedicated PostgreSQL database (BENCH_DATABASE_URL, default
   postgresql://postgres@127.0.0.1:5432/bench) and migrates it.
2. Starts `gunicorn -c gunicorn.conf.py` with production settings (DEBUG off,
   SECRET_KEY set, LOG_LEVEL=WARNING, JSON logs, PROMETHEUS_MULTIPROC_DIR, audit and
   metrics on, anonymous throttling set out of reach) bound to 127.0.0.1 on free
   ports, and times process start to the first 200 from /health/ready (--reps times).
3. Keeps five servers up against the one database: the service with WEB_CONCURRENCY
   workers; the naive pipeline (bench/naive_wsgi.py) with as many; the naive design
   (bench/naive_flask.py: Flask, no segmentation, no audit) with as many; and two
   independent instances with half the workers each, for scale-out.
4. A load generator in its own process (bench/loadgen.py) posts three workloads
   (a 12 MP ~3 MB phone JPEG, a ~600x400 browser-crop JPEG, the real PNG crops) at
   concurrency 1 and at the worker count (or --concurrency), alternating the service and
   its peers so that all see the same machine, --reps times; the tables show medians of the reps.
5. Reads peak RSS (VmHWM) of every worker, checks that the two scale-out instances'
   Prometheus counters and the new database rows add up to what the client sent.

It prints tables and asserts nothing about speed: the exit status is non-zero only when
the benchmark could not run (a server did not start, the load generator died).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from bench.audit_writes import GOAL_AT_8, Run, audit_writes, cpu_count
from bench.audit_writes import table as audit_table
from bench.loadgen import STAGES
from bench.workloads import WORKLOADS
from devtools.live import LiveServer, database_recreate, free_port, migrate, verify_auditlog

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench"
METRICS_TOKEN = "bench-metrics-token"  # noqa: S105  (a local, throwaway server)
READY_TIMEOUT_S = 60.0
RUN_SECRET_KEY = "bench-" + os.urandom(16).hex()
PREDICT_COUNTER = "django_http_responses_total_by_status_view_method_total"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# --- database -------------------------------------------------------------------------


def database_reset(database_url: str, env: dict[str, str]) -> None:
    """Drop, create and migrate the bench's own database (never any other)."""
    if not urlsplit(database_url).path.strip("/"):
        raise SystemExit(f"BENCH_DATABASE_URL has no database name: {database_url}")
    database_recreate(database_url)
    migrate(env, collectstatic=False)


def models_snapshot(workdir: Path) -> tuple[Path, dict[str, str]]:
    """Copy model/ for this run: every server, and the naive pipeline that reloads the
    file per request, then use the same model even if model/ is rewritten meanwhile."""
    target = workdir / "model"
    shutil.copytree(PROJECT_DIR / "model", target)
    versions = {}
    for card in sorted(target.glob("*/card.json")):
        tflite = card.parent / "model.tflite"
        digest = hashlib.sha256(tflite.read_bytes()).hexdigest()[:12] if tflite.is_file() else "-"
        version = json.loads(card.read_text()).get("version", "?")
        versions[card.parent.name] = f"{version} (model.tflite sha256 {digest}...)"
    return target, versions


def prediction_rows(database_url: str) -> int:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM predictions_prediction").fetchone()
    return int(row[0]) if row else 0


def max_connections(database_url: str) -> str:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    return str(row[0]) if row else "?"


# --- servers --------------------------------------------------------------------------


def server_env(database_url: str, metrics_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GUNICORN_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="healthguard.settings",
        # One key for every server of the run, as a fleet shares it: the audit chain's
        # key derives from it, and the servers write to one chain.
        SECRET_KEY=RUN_SECRET_KEY,
        DEBUG="0",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="json",
        DATABASE_URL=database_url,
        METRICS_TOKEN=METRICS_TOKEN,
        THROTTLE_ANON_PREDICT="1000000/second",
        THROTTLE_USER_PREDICT="1000000/second",
        RUN_MIGRATIONS="0",
        PYTHONUNBUFFERED="1",
    )
    if metrics_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return env


@dataclass
class Server:
    """One gunicorn master started as production starts it, on 127.0.0.1."""

    name: str
    workers: int
    database_url: str
    workdir: Path
    app: str | None = None  # None: gunicorn.conf.py's wsgi_app (the service)
    model_dir: Path | None = None  # HEALTHGUARD_MODEL_DIR; None: the project's model/
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    ready_s: float = 0.0
    process: subprocess.Popen[bytes] | None = None
    initial_workers: set[int] = field(default_factory=set)
    live: LiveServer | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> float:
        """Start and wait for /health/ready; returns seconds from start to ready."""
        self.port = free_port()
        metrics_dir = self.workdir / f"metrics-{self.name}-{self.port}"
        env = server_env(self.database_url, metrics_dir)
        env.update(self.extra_env)
        if self.model_dir is not None:
            env["HEALTHGUARD_MODEL_DIR"] = str(self.model_dir)
        # The harness binds loopback only (gunicorn.conf.py binds 0.0.0.0 for a container).
        self.live = LiveServer(
            env=env, port=self.port, workers=self.workers, app=self.app, log_path=self.log_path
        )
        try:
            self.live.start(ready_timeout=READY_TIMEOUT_S, poll=0.02)
        except (RuntimeError, TimeoutError) as exc:
            self.live.stop()
            raise RuntimeError(f"{self.name} not ready: {self.log_tail()}") from exc
        self.process = self.live.process
        self.ready_s = self.live.ready_seconds
        self.initial_workers = set(self.worker_pids())
        return self.ready_s

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop(timeout=30)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def error_lines(self, limit: int = 3) -> list[str]:
        """The first distinct ERROR/CRITICAL lines of this server's log, shortened."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        found: list[str] = []
        for line in lines:
            if '"level": "ERROR"' not in line and '"level": "CRITICAL"' not in line:
                continue
            # The start says what, the end of a JSON traceback says which exception.
            short = line if len(line) <= 600 else f"{line[:250]} ... {line[-350:]}"
            if short not in found:
                found.append(short)
            if len(found) >= limit:
                break
        return found

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        return children_of(self.process.pid)

    def worker_memory_mb(self) -> dict[str, float]:
        """Peak RSS (VmHWM), current RSS and PSS of the workers, the largest of each."""
        peaks, rss, pss = [], [], []
        for pid in self.worker_pids():
            status = proc_fields(f"/proc/{pid}/status")
            rollup = proc_fields(f"/proc/{pid}/smaps_rollup")
            peaks.append(status.get("VmHWM", 0) / 1024)
            rss.append(status.get("VmRSS", 0) / 1024)
            pss.append(rollup.get("Pss", 0) / 1024)
        return {
            "peak_rss": max(peaks, default=0.0),
            "rss": max(rss, default=0.0),
            "pss": max(pss, default=0.0),
        }

    def cpu_seconds(self) -> float:
        """User + system CPU time the workers have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.worker_pids():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def restarted_workers(self) -> int:
        return len(self.initial_workers - set(self.worker_pids()))

    def predictions_counted(self) -> float:
        """POST /api/predict answered 201, as this instance's /metrics counts them."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            labels = ('view="predict"', 'status="201"', 'method="POST"')
            if line.startswith(PREDICT_COUNTER + "{") and all(x in line for x in labels):
                total += float(line.rsplit(" ", 1)[1])
        return total


def children_of(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            pids.append(int(entry.name))
    return sorted(pids)


def proc_fields(path: str) -> dict[str, int]:
    """'Name:   123 kB' lines of a /proc file, in kB."""
    out: dict[str, int] = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


# --- load generator -------------------------------------------------------------------


class LoadGenerator:
    """bench/loadgen.py in its own process, one JSON line per command."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "bench.loadgen"], cwd=PROJECT_DIR,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited with {self.process.wait(timeout=5)}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(
        self, workload: str, ports: list[int], concurrency: int, duration: float, max_requests: int
    ) -> dict[str, Any]:
        return self.ask({
            "cmd": "run", "workload": workload, "ports": ports, "concurrency": concurrency,
            "duration": duration, "max_requests": max_requests,
        })

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(RuntimeError, OSError, ValueError):
                self.ask({"cmd": "quit"})
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@contextmanager
def running(servers: list[Server]) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()


# --- the benchmark --------------------------------------------------------------------


@dataclass
class Scenario:
    pipeline: str
    workload: str
    concurrency: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    def median(self, *keys: str) -> float:
        values = []
        for run in self.runs:
            value: Any = run
            for key in keys:
                value = value.get(key, {}) if isinstance(value, dict) else {}
            if isinstance(value, int | float):
                values.append(float(value))
        return statistics.median(values) if values else float("nan")

    @property
    def errors(self) -> int:
        return sum(int(r["errors"]) for r in self.runs)

    @property
    def rejected(self) -> int:
        return sum(int(r.get("rejected", 0)) for r in self.runs)

    @property
    def rejected_reasons(self) -> list[str]:
        return sorted({e for r in self.runs for e in r.get("rejected_reasons", [])})

    @property
    def requests(self) -> int:
        return sum(int(r["requests"]) for r in self.runs)

    @property
    def error_samples(self) -> list[str]:
        return sorted({e for r in self.runs for e in r.get("error_samples", [])})[:3]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--reps", type=int, default=3, help="runs of each scenario (median shown)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per scenario run")
    p.add_argument("--max-requests", type=int, default=5000, help="cap per scenario run")
    p.add_argument("--workers", type=int, default=cpu_count(), help="WEB_CONCURRENCY")
    p.add_argument("--concurrency", default="",
                   help="client concurrencies, comma-separated (default: 1 and --workers)")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--no-naive", action="store_true", help="skip the naive pipeline")
    p.add_argument("--no-flask", action="store_true",
                   help="skip the naive design (bench/naive_flask.py)")
    p.add_argument("--no-scale-out", action="store_true", help="skip the two-instance run")
    p.add_argument("--no-audit-writes", action="store_true",
                   help="skip audited writes/s from 1, 4 and 8 writers (bench/audit_writes.py)")
    p.add_argument("--audit-seconds", type=float, default=5.0,
                   help="seconds per audited-writes run")
    p.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = p.parse_args(argv)
    args.reps = max(1, min(args.reps, 20))
    args.duration = max(0.5, min(args.duration, 120.0))
    args.max_requests = max(1, min(args.max_requests, 100_000))
    args.workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workloads {sorted(unknown)}; known: {', '.join(WORKLOADS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    workers = max(1, args.workers)
    concurrencies = sorted({int(c) for c in args.concurrency.split(",") if c.strip()}
                           or {1, workers})
    started_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = load_average()
    print(f"HealthGuard Vision benchmark, {started_at}; {cpu_count()} CPUs; "
          f"load average {load_before}", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="healthguard-bench-"))
    report: dict[str, Any] = {"started_at": started_at, "load_before": load_before,
                              "cpus": cpu_count(), "workers": workers, "args": {
                                  k: str(v) for k, v in vars(args).items()}}
    try:
        print(f"database: recreating and migrating {urlsplit(database_url).path.lstrip('/')}",
              flush=True)
        database_reset(database_url, server_env(database_url))
        report["max_connections"] = max_connections(database_url)
        models, report["models"] = models_snapshot(workdir)
        print(f"models: {report['models']}", flush=True)

        # Start-up time, measured with nothing else running.
        ready_times = []
        for i in range(args.reps):
            probe = Server(f"startup{i}", workers, database_url, workdir, model_dir=models)
            with running([probe]):
                ready_times.append(probe.start())
        report["ready_s"] = ready_times
        print("start to ready (s): " + ", ".join(f"{t:.2f}" for t in ready_times), flush=True)

        service = Server("service", workers, database_url, workdir, model_dir=models)
        naive = Server("naive", workers, database_url, workdir, app="bench.naive_wsgi:application",
                       model_dir=models, extra_env={"DB_CONN_MAX_AGE": "0"})
        flask = Server("flask", workers, database_url, workdir, app="bench.naive_flask:app",
                       model_dir=models)
        half = max(1, workers // 2)
        scale = [Server("scale-a", half, database_url, workdir, model_dir=models),
                 Server("scale-b", half, database_url, workdir, model_dir=models)]
        servers = [service]
        if not args.no_naive:
            servers.append(naive)
        if not args.no_flask:
            servers.append(flask)
        if not args.no_scale_out:
            servers.extend(scale)
        loadgen = LoadGenerator()
        with running(servers):
            try:
                for server in servers:
                    server.start()
                    print(f"{server.name}: {server.workers} worker(s) on 127.0.0.1:{server.port}, "
                          f"ready in {server.ready_s:.2f} s", flush=True)
                report["naive_ready_s"] = naive.ready_s
                report["uploads"] = {w: loadgen.ask({"cmd": "describe", "workload": w})
                                     for w in args.workloads}
                report.update(measure(args, loadgen, servers, [service, naive, flask], scale,
                                      concurrencies, database_url))
            finally:
                loadgen.close()
            report["memory_mb"] = {s.name: s.worker_memory_mb() for s in servers}
            report["restarted_workers"] = {s.name: s.restarted_workers() for s in servers}
        # What the servers logged at ERROR (a 500's traceback): the logs go with workdir.
        report["server_errors"] = {s.name: s.error_lines() for s in servers if s.error_lines()}
        # Every server of the run wrote to one audit chain (their exit passes linked the
        # rest): it must verify.
        report["verify_auditlog"] = verify_auditlog(server_env(database_url))[1][-300:]
        if not args.no_audit_writes:
            audit_url = urlsplit(database_url)._replace(
                path=urlsplit(database_url).path.rstrip("/") + "_audit").geturl()
            print(f"audited writes: 1, 4, 8 writers on {urlsplit(audit_url).path.lstrip('/')}",
                  flush=True)
            report["audit_writes"] = [
                asdict(r) | {"rate": r.rate}
                for r in audit_writes(audit_url, writers=[1, 4, 8], seconds=args.audit_seconds,
                                      modes=["inline", "deferred"])
            ]
    finally:
        report["load_after"] = load_average()
        shutil.rmtree(workdir, ignore_errors=True)

    print_report(report, args, workers)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


def cpu_per_request(cpu_seconds: float, result: dict[str, Any]) -> float:
    """Worker CPU milliseconds per answered request (the machine's real price of one)."""
    answered = int(result["ok"]) + int(result["rejected"])
    return cpu_seconds * 1000.0 / answered if answered else float("nan")


def measure(
    args: argparse.Namespace, loadgen: LoadGenerator, servers: list[Server], peers: list[Server],
    scale: list[Server], concurrencies: list[int], database_url: str,
) -> dict[str, Any]:
    # Warm-up: every server sees every workload a few times before anything is timed.
    warmup_errors: dict[str, int] = {}
    for server in servers:
        for workload in args.workloads:
            result = loadgen.run(workload, [server.port], 1, 30.0, 3)
            warmup_errors[f"{server.name}/{workload}"] = int(result["errors"])
            if result["errors"] or result["rejected"]:
                print(f"warm-up {server.name}/{workload}: "
                      f"{result['error_samples'] + result['rejected_reasons']}", flush=True)

    scenarios: dict[tuple[str, str, int], Scenario] = {}
    scale_checks: list[dict[str, Any]] = []
    width = max(concurrencies)

    def record(pipeline: str, workload: str, conc: int, result: dict[str, Any]) -> None:
        key = (pipeline, workload, conc)
        scenarios.setdefault(key, Scenario(pipeline, workload, conc)).runs.append(result)
        p50 = result["latency_ms"].get("p50", 0.0)
        print(f"  {pipeline:9} {workload:8} c={conc}: p50 {p50:7.1f} ms"
              f"  {result['rps']:6.1f} req/s  errors {result['errors']}"
              f"  4xx {result['rejected']}", flush=True)

    for rep in range(args.reps):
        print(f"run {rep + 1}/{args.reps} (load average {load_average()})", flush=True)
        for workload in args.workloads:
            for conc in concurrencies:
                # Service and its peers back to back: the ratios see the same machine.
                for server in peers:
                    if server in servers:
                        cpu_before = server.cpu_seconds()
                        result = loadgen.run(workload, [server.port], conc, args.duration,
                                             args.max_requests)
                        result["server_cpu_ms"] = cpu_per_request(
                            server.cpu_seconds() - cpu_before, result)
                        record(server.name, workload, conc, result)
            if scale[0] in servers:
                counted_before = [s.predictions_counted() for s in scale]
                rows_before = prediction_rows(database_url)
                cpu_before = sum(s.cpu_seconds() for s in scale)
                result = loadgen.run(workload, [s.port for s in scale], width, args.duration,
                                     args.max_requests)
                result["server_cpu_ms"] = cpu_per_request(
                    sum(s.cpu_seconds() for s in scale) - cpu_before, result)
                counted_after = [s.predictions_counted() for s in scale]
                rows_after = prediction_rows(database_url)
                record("scale-out", workload, width, result)
                per_instance = [int(a - b) for a, b in zip(counted_after, counted_before,
                                                           strict=True)]
                scale_checks.append({
                    "workload": workload,
                    "client_ok": int(result["ok"]),
                    "client_per_port": [int(result["per_port"].get(str(s.port), 0)) for s in scale],
                    "metrics_per_instance": per_instance,
                    "new_rows": rows_after - rows_before,
                })
    return {
        "warmup_errors": warmup_errors,
        "scenarios": [
            {"pipeline": s.pipeline, "workload": s.workload, "concurrency": s.concurrency,
             "runs": s.runs} for s in scenarios.values()
        ],
        "scale_checks": scale_checks,
    }


# --- printing -------------------------------------------------------------------------


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:.{digits}f}"  # NaN check


def _scenarios(report: dict[str, Any]) -> dict[tuple[str, str, int], Scenario]:
    out = {}
    for s in report.get("scenarios", []):
        out[(s["pipeline"], s["workload"], s["concurrency"])] = Scenario(
            s["pipeline"], s["workload"], s["concurrency"], s["runs"])
    return out


def latency_table(rows: list[Scenario], uploads: dict[str, Any]) -> list[str]:
    head = ("| workload | conc | p50 ms | p95 ms | p99 ms | req/s | errors | 4xx | read+hash "
            "| decode | preprocess | inference | database | commit | outside | CPU ms/req "
            "| client CPU |")
    lines = [head, "|---|" + "---:|" * 16]
    for s in rows:
        size = uploads.get(s.workload, {}).get("mean_bytes", 0)
        label = f"{s.workload} ({size / 1e6:.2f} MB)" if size >= 1e6 else (
            f"{s.workload} ({size / 1e3:.0f} kB)")
        stages = " | ".join(_fmt(s.median("server_ms", st), 2) for st in STAGES)
        lines.append(
            f"| {label} | {s.concurrency} | {_fmt(s.median('latency_ms', 'p50'))} "
            f"| {_fmt(s.median('latency_ms', 'p95'))} | {_fmt(s.median('latency_ms', 'p99'))} "
            f"| {_fmt(s.median('rps'))} | {s.errors}/{s.requests} | {s.rejected} | {stages} "
            f"| {_fmt(s.median('server_ms', 'outside'), 2)} "
            f"| {_fmt(s.median('server_cpu_ms'))} "
            f"| {_fmt(100 * s.median('client_cpu_share'), 0)}% |"
        )
    return lines


def gain_table(scen: dict[tuple[str, str, int], Scenario], peer: str) -> list[str]:
    """The service beside `peer`, scenario by scenario: ratios > 1 favour the service."""
    lines = [f"| workload | conc | {peer} p50 ms | service p50 ms | p50 speed-up | {peer} req/s "
             f"| service req/s | throughput ratio | {peer} CPU ms/req | service CPU ms/req "
             "| CPU ratio |",
             "|---|" + "---:|" * 10]
    rows = sorted((s for k, s in scen.items() if k[0] == peer),
                  key=lambda s: (WORKLOADS.index(s.workload), s.concurrency))
    for n in rows:
        s = scen.get(("service", n.workload, n.concurrency))
        if s is None:
            continue
        np50, sp50 = n.median("latency_ms", "p50"), s.median("latency_ms", "p50")
        nrps, srps = n.median("rps"), s.median("rps")
        ncpu, scpu = n.median("server_cpu_ms"), s.median("server_cpu_ms")
        lines.append(
            f"| {n.workload} | {n.concurrency} | {_fmt(np50)} | {_fmt(sp50)} "
            f"| {_fmt(np50 / sp50 if sp50 else float('nan'), 2)}x | {_fmt(nrps)} "
            f"| {_fmt(srps)} | {_fmt(srps / nrps if nrps else float('nan'), 2)}x "
            f"| {_fmt(ncpu)} | {_fmt(scpu)} "
            f"| {_fmt(ncpu / scpu if scpu else float('nan'), 2)}x |"
        )
    return lines


# (workload, what, concurrency, target, at most?) -- the numbers of issue 15.
TARGETS: tuple[tuple[str, str, int, float, bool], ...] = (
    ("browser", "p50 ms", 1, 10.0, True),
    ("browser", "req/s", 4, 150.0, False),
    ("browser", "x naive design req/s", 4, 2.0, False),
    ("browser", "database + commit p50 ms", 1, 3.0, True),
    ("browser", "preprocess (segmentation + resize) p50 ms", 1, 3.0, True),
    ("browser", "outside the stages p50 ms", 1, 3.0, True),
    ("phone", "p50 ms", 1, 35.0, True),
    ("phone", "req/s", 2, 50.0, False),
    ("phone", "x naive design req/s", 2, 2.5, False),
)


def _target_value(scen: dict[tuple[str, str, int], Scenario], workload: str, what: str,
                  conc: int) -> float:
    s = scen.get(("service", workload, conc))
    if s is None:
        return float("nan")
    if what == "p50 ms":
        return s.median("latency_ms", "p50")
    if what == "req/s":
        return s.median("rps")
    if what.startswith("x naive design"):
        f = scen.get(("flask", workload, conc))
        frps = f.median("rps") if f else float("nan")
        return s.median("rps") / frps if frps else float("nan")
    stage = {"database + commit p50 ms": ("server_ms", "database_commit"),
             "preprocess (segmentation + resize) p50 ms": ("server_ms", "preprocess"),
             "outside the stages p50 ms": ("server_ms", "outside")}[what]
    return s.median(*stage)


def targets_table(
    scen: dict[tuple[str, str, int], Scenario], audit: list[dict[str, Any]] | None = None
) -> list[str]:
    lines = ["| workload | measure | conc | target | measured | |", "|---|---|---:|---:|---:|---|"]
    for workload, what, conc, target, at_most in TARGETS:
        value = _target_value(scen, workload, what, conc)
        if value != value:  # NaN: that scenario did not run
            verdict = f"not measured (run with --concurrency including {conc})"
        else:
            verdict = "met" if (value <= target if at_most else value >= target) else "MISSED"
        sign = "<=" if at_most else ">="
        lines.append(f"| {workload} | {what} | {conc} | {sign} {target:g} | {_fmt(value, 2)} "
                     f"| {verdict} |")
    at8 = [r for r in audit or [] if r["linking"] == "deferred" and r["writers"] == 8]
    if at8:
        verdict = "met" if at8[0]["rate"] >= GOAL_AT_8 else "MISSED"
        lines.append(f"| - | audited writes/s, 8 writers (deferred linking) | 8 "
                     f"| >= {GOAL_AT_8:g} | {at8[0]['rate']:.0f} | {verdict} |")
    else:
        lines.append(f"| - | audited writes/s, 8 writers | 8 | >= {GOAL_AT_8:g} | - "
                     "| not measured (--no-audit-writes) |")
    return lines


def print_report(report: dict[str, Any], args: argparse.Namespace, workers: int) -> None:
    scen = _scenarios(report)
    uploads = report.get("uploads", {})
    out: list[str] = [""]
    out.append(f"## Results ({report['started_at']}, {report['cpus']} CPUs, "
               f"{workers} sync workers, medians of {args.reps} runs of {args.duration:g} s; "
               f"load average before {report['load_before']}, after {report['load_after']})")
    out.append("")
    out.append("Latency is measured by the client over HTTP; the stage columns are the "
               "server's Server-Timing medians (ms); 'outside' is client latency minus those "
               "stages (HTTP, multipart parsing, Django, DRF, session, audit). 'CPU ms/req' is "
               "the workers' user+system CPU per answered request (from /proc: the price of a "
               "request, much less sensitive to other load than latency; CPUs x 1000 / it is "
               "the ceiling in req/s); 'client CPU' is the load generator's share of one CPU.")
    out.append("")
    out.append("### The service")
    out.append("")
    rows = [scen[k] for k in sorted(scen) if k[0] == "service"]
    rows.sort(key=lambda s: (WORKLOADS.index(s.workload), s.concurrency))
    out.extend(latency_table(rows, uploads))

    naive_rows = [scen[k] for k in scen if k[0] == "naive"]
    if naive_rows:
        naive_rows.sort(key=lambda s: (WORKLOADS.index(s.workload), s.concurrency))
        out += ["", "### Naive pipeline (full-resolution decode, fresh interpreter per request, "
                "a new database connection per request), same run", "",
                "The fresh interpreter is built where the service looks the model up, inside "
                "its read+hash stage; the new connection is opened inside the database stage.",
                ""]
        out.extend(latency_table(naive_rows, uploads))
        out += ["", "### Gain over the naive pipeline, measured side by side", ""]
        out.extend(gain_table(scen, "naive"))

    flask_rows = [scen[k] for k in scen if k[0] == "flask"]
    if flask_rows:
        flask_rows.sort(key=lambda s: (WORKLOADS.index(s.workload), s.concurrency))
        out += ["", "### The naive design (bench/naive_flask.py: Flask, full-resolution decode, "
                "one interpreter per worker, one autocommit INSERT, no segmentation, no audit), "
                "same run", "",
                "It sends no Server-Timing: only client latency, req/s and CPU are measured.", ""]
        out.extend(latency_table(flask_rows, uploads))
        out += ["", "### The service against the naive design, measured side by side", ""]
        out.extend(gain_table(scen, "flask"))

    audit = report.get("audit_writes")
    if audit:
        out += ["", "### Audited writes: a prediction row, its audit entry and its chain record "
                "in one commit, N writer processes, one PostgreSQL (bench/audit_writes.py)", "",
                "Inline: the writer links under the chain's one lock. Deferred (production under "
                "gunicorn): the writer only seals; two linkers link every "
                "AUDITLOG_CHAIN_LINK_INTERVAL_MS. p50/p99: one write's transaction, commit "
                "included.", ""]
        out.extend(audit_table([Run(**{k: v for k, v in r.items() if k != "rate"})
                                for r in audit]))
    out += ["", "### Targets (issue 15)", ""]
    out.extend(targets_table(scen, audit))

    scale_rows = [scen[k] for k in scen if k[0] == "scale-out"]
    if scale_rows:
        half = max(1, workers // 2)
        out += ["", f"### Scale-out: two independent instances ({half} worker(s) each) on one "
                "PostgreSQL, driven round-robin", ""]
        out += ["| workload | conc | p50 ms | p95 ms | req/s | CPU ms/req | errors | 4xx "
                f"| one instance, {workers} workers: req/s | client 201s | /metrics a + b "
                "| new DB rows |",
                "|---|" + "---:|" * 11]
        checks = report.get("scale_checks", [])
        for s in sorted(scale_rows, key=lambda s: WORKLOADS.index(s.workload)):
            mine = [c for c in checks if c["workload"] == s.workload]
            sent = sum(c["client_ok"] for c in mine)
            per = [sum(c["metrics_per_instance"][i] for c in mine) for i in range(2)]
            rows_new = sum(c["new_rows"] for c in mine)
            same = scen.get(("service", s.workload, s.concurrency))
            verdict = "adds up" if sent == sum(per) == rows_new else "MISMATCH"
            out.append(
                f"| {s.workload} | {s.concurrency} | {_fmt(s.median('latency_ms', 'p50'))} "
                f"| {_fmt(s.median('latency_ms', 'p95'))} | {_fmt(s.median('rps'))} "
                f"| {_fmt(s.median('server_cpu_ms'))} | {s.errors}/{s.requests} | {s.rejected} "
                f"| {_fmt(same.median('rps')) if same else '-'} "
                f"| {sent} | {per[0]} + {per[1]} = {sum(per)} | {rows_new} ({verdict}) |"
            )

    out += ["", "### Process", ""]
    ready = report.get("ready_s", [])
    if ready:
        out.append(f"- Start to ready (gunicorn exec to first 200 from /health/ready, "
                   f"{workers} workers): median {statistics.median(ready):.2f} s "
                   f"(runs: {', '.join(f'{t:.2f}' for t in ready)})")
    for name, mem in report.get("memory_mb", {}).items():
        out.append(f"- {name}: peak RSS per worker {mem['peak_rss']:.0f} MB "
                   f"(now {mem['rss']:.0f} MB RSS, {mem['pss']:.0f} MB PSS); "
                   f"workers restarted: {report.get('restarted_workers', {}).get(name, 0)}")
    for workload, info in uploads.items():
        out.append(f"- upload '{workload}': {info['count']} file(s), "
                   f"{info['min_bytes']:,} to {info['max_bytes']:,} bytes")
    out.append(f"- PostgreSQL max_connections: {report.get('max_connections', '?')}")
    if "verify_auditlog" in report:
        out.append(f"- the run's audit chain (every server wrote to it): "
                   f"{report['verify_auditlog']}")
    for site, version in report.get("models", {}).items():
        out.append(f"- model '{site}': {version}")
    for name, lines in report.get("server_errors", {}).items():
        out.append(f"- {name} logged errors: " + " | ".join(lines))
    warm = {k: v for k, v in report.get("warmup_errors", {}).items() if v}
    if warm:
        out.append(f"- warm-up errors: {warm}")
    for s in scen.values():
        where = f"{s.pipeline}/{s.workload}/c={s.concurrency}"
        if s.errors:
            out.append(f"- errors in {where}: {s.error_samples}")
        if s.rejected:
            out.append(f"- uploads refused (4xx) in {where}: {s.rejected} ({s.rejected_reasons})")
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
