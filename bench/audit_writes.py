"""Audited writes per second: a prediction row, its audit entry and its chain record in
one commit, from 1, 4 and 8 writer processes against one PostgreSQL, linking inline
(under the chain's one lock) and deferred (a seal, then the linker).

    .venv/bin/python -m bench.audit_writes [--seconds 5] [--writers 1,4,8]

`make bench` runs it after the HTTP workloads. Each writer is a process of its own
with Django set up as the service sets it up (the same receivers: auditlog, the chain),
writing `Prediction` rows the way `predictions.services.prediction_create` does, each in
its own transaction. Deferred runs start two linkers (as two gunicorn workers would)
at the production interval. For each run it prints writes/s, the p50 and p99 time of one
write's transaction (commit included), the oldest unlinked entry seen while writing and
how long the linkers took to catch up after the writers stopped, and whether
`verify_auditlog` then passes. It prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.live import (
    audit_unlinked,
    database_recreate,
    migrate,
    server_env,
    verify_auditlog,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench_audit"
GOAL_AT_8 = 1000.0


def cpu_count() -> int:
    """The CPUs this process may use (CPU pinning respected)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def django_env(database_url: str, linking: str) -> dict[str, str]:
    """The production environment of devtools.live (one SECRET_KEY, hence one chain key,
    for writers, linkers and verify), with the linking mode under test."""
    return server_env(
        database_url,
        DJANGO_SETTINGS_MODULE="healthguard.settings",
        LOG_LEVEL="WARNING",
        AUDITLOG_CHAIN_LINKING=linking,
    )


def _setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()


def writer_main(env: dict[str, str], ready: Any, go: Any, seconds: float, out: Any) -> None:
    _setup(env)
    from django.db import connection, transaction

    from predictions.models import Prediction
    from predictions.services import message_id_new

    def write() -> None:
        with transaction.atomic():
            Prediction.objects.create(
                message_id=message_id_new(), condition="anemia", site="conjunctiva",
                image_sha256="0" * 64, risk_score=0.42, risk_level="medium", confidence=0.8,
                recommendation="bench", segmentation="outlined", image_size_bytes=1,
                image_width=600, image_height=400, processing_time_ms=1.0,
                model_version="bench", request_id="bench",
            )

    write()  # connection, content types, caches: not timed
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])
    latencies: list[float] = []
    ready.put(os.getpid())
    go.wait()
    cpu0, backend0 = time.process_time(), proc_cpu_s(backend)
    end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        write()
        latencies.append((time.perf_counter() - t0) * 1000)
    cpu = time.process_time() - cpu0 + proc_cpu_s(backend) - backend0
    connection.close()
    out.put((latencies, cpu))


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (its PostgreSQL backend)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def linker_main(env: dict[str, str], stop: Any, out: Any) -> None:
    """A linker as a gunicorn worker runs it; reports (seconds, entries) of each pass."""
    _setup(env)
    from django.conf import settings
    from django.db import connection

    from predictions.audit.linker import link_pass

    interval = settings.AUDITLOG_CHAIN_LINK_INTERVAL_MS / 1000
    passes: list[tuple[float, int]] = []
    while not stop.wait(interval):
        t0 = time.perf_counter()
        result = link_pass()
        if result is not None and result.linked:
            passes.append((time.perf_counter() - t0, result.linked))
    link_pass()
    connection.close()
    out.put(passes)


@dataclass
class Run:
    linking: str
    writers: int
    writes: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_unlinked_age_s: float
    catch_up_s: float
    verify: str
    cpu_ms_per_write: float = 0.0  # the writer process and its PostgreSQL backend
    passes: int = 0  # linking passes that linked something
    longest_pass_ms: float = 0.0
    largest_pass: int = 0  # entries linked by the largest pass

    @property
    def rate(self) -> float:
        return self.writes / self.seconds


def _verified(env: dict[str, str]) -> str:
    code, output = verify_auditlog(env)
    return "OK" if code == 0 else "BROKEN: " + output[-200:]


def run_one(database_url: str, linking: str, writers: int, seconds: float) -> Run:
    env = django_env(database_url, linking)
    ctx = mp.get_context("spawn")
    out, ready, passes_out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    stop, go = ctx.Event(), ctx.Event()
    linkers = []
    if linking == "deferred":
        linkers = [
            ctx.Process(target=linker_main, args=(env, stop, passes_out)) for _ in range(2)
        ]
    procs = [
        ctx.Process(target=writer_main, args=(env, ready, go, seconds, out))
        for _ in range(writers)
    ]
    for p in linkers + procs:
        p.start()
    for _ in procs:  # every writer set up and warm before the clock starts
        ready.get(timeout=120)
    time.sleep(1.0)  # and the linkers too (they set up alongside)
    go.set()
    started = time.monotonic()
    oldest = 0.0
    while time.monotonic() < started + seconds:
        if linking == "deferred":
            oldest = max(oldest, audit_unlinked(database_url)[1])
        time.sleep(0.1)
    latencies: list[float] = []
    cpu_s = 0.0
    for _ in procs:
        lat, cpu = out.get(timeout=120)
        latencies.extend(lat)
        cpu_s += cpu
    for p in procs:
        p.join(30)
    stopped = time.monotonic()
    catch_up = 0.0
    passes: list[tuple[float, int]] = []
    if linking == "deferred":
        while audit_unlinked(database_url)[0] and time.monotonic() - stopped < 60:
            time.sleep(0.05)
        catch_up = time.monotonic() - stopped
        stop.set()
        for _ in linkers:
            passes.extend(passes_out.get(timeout=60))
        for p in linkers:
            p.join(30)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return Run(
        linking=linking,
        writers=writers,
        writes=len(latencies),
        seconds=seconds,
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p99_ms=p99,
        max_unlinked_age_s=oldest,
        catch_up_s=catch_up,
        verify=_verified(env),
        cpu_ms_per_write=cpu_s * 1000 / len(latencies) if latencies else 0.0,
        passes=len(passes),
        longest_pass_ms=max((t for t, _ in passes), default=0.0) * 1000,
        largest_pass=max((n for _, n in passes), default=0),
    )


def table(runs: list[Run]) -> list[str]:
    lines = [
        "| linking | writers | audited writes/s | p50 ms | p99 ms | CPU ms/write | "
        "oldest unlinked seen | linked after stop | passes, longest, largest | "
        "verify_auditlog |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        deferred = r.linking == "deferred"
        lines.append(
            f"| {r.linking} | {r.writers} | {r.rate:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.cpu_ms_per_write:.2f} | "
            f"{f'{r.max_unlinked_age_s:.2f} s' if deferred else '-'} | "
            f"{f'{r.catch_up_s:.2f} s' if deferred else '-'} | "
            f"{f'{r.passes}, {r.longest_pass_ms:.0f} ms, {r.largest_pass}' if deferred else '-'} "
            f"| {r.verify} |"
        )
    at8 = [r for r in runs if r.linking == "deferred" and r.writers == 8]
    if at8:
        verdict = "met" if at8[0].rate >= GOAL_AT_8 else "missed"
        lines.append("")
        lines.append(
            f"Goal: >= {GOAL_AT_8:.0f} audited writes/s at 8 writers: {at8[0].rate:.0f}/s "
            f"deferred ({verdict}). CPU per write (writer + its backend, the linkers not "
            f"counted) sets this machine's ceiling at {cpu_count()} CPUs x 1000 / "
            f"{at8[0].cpu_ms_per_write:.2f} ms = "
            f"{cpu_count() * 1000 / max(at8[0].cpu_ms_per_write, 1e-9):.0f}/s."
        )
    return lines


def audit_writes(
    database_url: str, *, writers: list[int], seconds: float, modes: list[str]
) -> list[Run]:
    """Recreate and migrate the database, then every (mode, writers) run on it."""
    database_recreate(database_url)
    migrate(django_env(database_url, "inline"), collectstatic=False)
    runs = []
    for linking in modes:
        for n in writers:
            runs.append(run_one(database_url, linking, n, seconds))
            print(f"  audit writes: {linking}, {n} writers: {runs[-1].rate:.0f}/s", flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--writers", default="1,4,8")
    p.add_argument("--modes", default="inline,deferred")
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_AUDIT_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a database this bench recreates (never name one you keep)",
    )
    args = p.parse_args(argv)
    runs = audit_writes(
        args.database_url,
        writers=[int(n) for n in args.writers.split(",")],
        seconds=args.seconds,
        modes=args.modes.split(","),
    )
    print("\n".join(table(runs)))
    return 0 if all(r.verify == "OK" for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
