#!/usr/bin/env python3
"""Faults under load, nothing lost: 16 clients upload real crops while things break.

Starts a PostgreSQL cluster of its own (initdb in a temp dir, on a free loopback port;
or --pg-data/--pg-port for an existing private cluster this script may stop and
start), a cuttable TCP proxy in front of it (tests/faults/proxy.py), and gunicorn as
production runs it (gunicorn.conf.py, DEBUG off) on the proxy. Then --clients threads
upload real conjunctiva crops, each upload with its own Idempotency-Key, retrying
with that key on any 5xx, 409 or broken connection, while the script:

  * SIGKILLs a gunicorn worker in the middle of its requests (--kills times);
  * stops PostgreSQL and starts it again (once);
  * cuts every database connection through the proxy, and restores it (once).

At the end it checks, and exits 1 unless all hold:

  * every upload got an answer with a message_id, and has exactly one row, with the
    SHA-256 of its image; every row's message_id was returned to its client; every
    answer for one upload (201, then 200 replays) names the same message_id;
  * every audit entry is linked by the running workers within 10 s of the last answer
    (deferred linking: the bound is 1 s plus one pass), and `manage.py verify_auditlog`
    exits 0;
  * the number of rows lies between healthguard_predictions_total minus
    healthguard_prediction_commit_failures_total and healthguard_predictions_total (a
    prediction is counted just before its commit; a commit that then fails is counted as
    a failure, and it stored nothing unless only its acknowledgement was lost);
  * every worker is alive and the service is ready and analyses again;
  * every error answer was a 503 in the error shape (or a 409 for a key in flight),
    never a 500 or a traceback; the gunicorn log has no "Internal Server Error".

Loopback only, bounded in time (--seconds of load, then at most --drain-seconds for
the last uploads), and it stops everything it started. Run from the repository root
(as root it runs PostgreSQL as the `postgres` user):

    .venv/bin/python scripts/fault_run.py [--clients 16] [--seconds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import glob
import hashlib
import http.client
import json
import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devtools.live import (  # noqa: E402  (sys.path)
    LiveServer,
    audit_linked_within,
    free_port,
    migrate,
    server_env,
    verify_auditlog,
)
from devtools.multipart import image_upload  # noqa: E402
from tests.faults.proxy import CuttableProxy  # noqa: E402

DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "anemia"
WORKERS = 2


# --- PostgreSQL of its own ----------------------------------------------------------


def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise SystemExit("no PostgreSQL server binaries (pg_ctl) found")


class PrivatePostgres:
    """A cluster this run may stop and start: never the shared server."""

    def __init__(self, *, data: Path | None, port: int | None) -> None:
        self.bindir = pg_bindir()
        self.owned = data is None
        self.data = data or Path(tempfile.mkdtemp(prefix="healthguard-faultpg-"))
        self.port = port or free_port()
        self.log = self.data.parent / f"{self.data.name}.log"
        self.as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(  # noqa: S603  (PostgreSQL's own tools, fixed arguments)
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed:\n{result.stdout}\n{result.stderr}")

    def init(self) -> PrivatePostgres:
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.data, pw.pw_uid, pw.pw_gid)
            self.log.touch()
            os.chown(self.log, pw.pw_uid, pw.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.data} -c max_connections=60"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, port: int | None = None, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{port or self.port}/{database}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop()
        if self.owned:
            shutil.rmtree(self.data, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.log.unlink()


# --- the clients ---------------------------------------------------------------------


@dataclass
class Upload:
    """One photo a client wants analysed once, whatever it takes."""

    client: int
    key: str
    name: str
    image: bytes
    sha256: str
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    done_at: float | None = None

    @property
    def message_id(self) -> str | None:
        return self.message_ids[0] if self.message_ids else None


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    uploads: list[Upload] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)  # monotonic times of 201/200

    def success(self, at: float) -> None:
        with self.lock:
            self.successes.append(at)


def attempt(port: int, upload: Upload, timeout: float) -> tuple[int, dict[str, str], bytes]:
    body, ctype = image_upload(upload.image, upload.name)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/api/predict",
            body=body,
            headers={"Content-Type": ctype, "Idempotency-Key": upload.key},
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def judge_error(status: int, raw: bytes) -> str | None:
    """None for an acceptable failure answer (a 503 or 409 in the error shape)."""
    text = raw.decode(errors="replace")
    if "Traceback" in text or "psycopg" in text:
        return f"{status} with a traceback or driver text: {text[:200]}"
    try:
        body = json.loads(raw)
    except ValueError:
        return f"{status} not in the error shape: {text[:200]}"
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"{status} not in the error shape: {text[:200]}"
    code = body["error"].get("code")
    if status == 503 and code in {"database_unavailable", "service_unavailable"}:
        return None
    if status == 409 and code == "idempotency_key_in_flight":
        return None
    return f"unexpected {status} {code}: {text[:200]}"


def send_until_answered(port: int, upload: Upload, tally: Tally, give_up_at: float) -> None:
    delay = 0.2
    while time.monotonic() < give_up_at:
        upload.attempts += 1
        try:
            status, headers, raw = attempt(port, upload, timeout=30)
        except (OSError, http.client.HTTPException) as exc:
            upload.statuses.append(0)  # a broken connection: retry with the same key
            upload.problems.append(f"broken: {type(exc).__name__}")
        else:
            upload.statuses.append(status)
            if status in (200, 201):
                body = json.loads(raw)
                upload.message_ids.append(body["message_id"])
                if status == 200 and headers.get("idempotent-replayed") != "true":
                    upload.problems.append("a 200 without Idempotent-Replayed: true")
                if status == 201 and len(upload.message_ids) > 1:
                    upload.problems.append("a second 201 for the same key")
                if body.get("image_sha256") not in (None, upload.sha256):
                    upload.problems.append("the answer names another image")
                upload.done_at = time.monotonic()
                tally.success(upload.done_at)
                return
            problem = judge_error(status, raw)
            if problem:
                upload.problems.append(problem)
                if status < 500 and status != 409:
                    return  # a refusal: retrying would not change it
        time.sleep(delay + random.uniform(0, 0.1))  # noqa: S311  (jitter, not a secret)
        delay = min(delay * 2, 2.0)


def client_loop(
    index: int,
    port: int,
    images: list[tuple[str, bytes]],
    tally: Tally,
    stop_new: threading.Event,
    give_up_at: float,
) -> None:
    rng = random.Random(index)  # noqa: S311  (which photo to send, not a secret)
    while not stop_new.is_set():
        name, data = images[rng.randrange(len(images))]
        upload = Upload(
            client=index,
            key=str(uuid.uuid4()),
            name=name,
            image=data,
            sha256=hashlib.sha256(data).hexdigest(),
        )
        with tally.lock:
            tally.uploads.append(upload)
        send_until_answered(port, upload, tally, give_up_at)


# --- the faults ----------------------------------------------------------------------


def worker_pids(server: LiveServer) -> list[int]:
    assert server.process is not None
    out = subprocess.run(  # noqa: S603
        ["ps", "-o", "pid=", "--ppid", str(server.process.pid)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return sorted(int(pid) for pid in out.split())


def busy_worker(server: LiveServer) -> int | None:
    """A worker that is using CPU right now (in a request), else any worker."""
    pids = worker_pids(server)

    def cpu(pid: int) -> int:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            return -1

    before = {pid: cpu(pid) for pid in pids}
    time.sleep(0.05)
    busy = [pid for pid in pids if cpu(pid) > before[pid] >= 0]
    candidates = busy or pids
    return candidates[0] if candidates else None


def first_success_after(tally: Tally, moment: float, limit: float) -> float | None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with tally.lock:
            later = [t for t in tally.successes if t > moment]
        if later:
            return min(later) - moment
        time.sleep(0.1)
    return None


@dataclass
class Fault:
    kind: str
    injected_at: float
    ended_at: float
    recovered_seconds: float | None = None
    note: str = ""


def kill_worker(server: LiveServer, tally: Tally, start: float) -> Fault:
    pid = busy_worker(server)
    at = time.monotonic()
    if pid is None:
        return Fault("sigkill_worker", at - start, at - start, None, "no worker found")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    # Recovered when the arbiter has a full set of workers again and requests succeed.
    deadline = at + 60
    respawned = "not respawned within 60s"
    while time.monotonic() < deadline:
        pids = worker_pids(server)
        if len(pids) == WORKERS and pid not in pids:
            respawned = f"replaced in {time.monotonic() - at:.1f}s"
            break
        time.sleep(0.1)
    fault = Fault("sigkill_worker", at - start, at - start, note=f"pid {pid}, {respawned}")
    fault.recovered_seconds = first_success_after(tally, at, 60)
    return fault


def restart_postgres(pg: PrivatePostgres, tally: Tally, start: float, down: float) -> Fault:
    at = time.monotonic()
    pg.stop()
    time.sleep(down)
    pg.start()
    ended = time.monotonic()
    fault = Fault("postgres_restart", at - start, ended - start, note=f"down {ended - at:.1f}s")
    fault.recovered_seconds = first_success_after(tally, ended, 60)
    return fault


def cut_connections(proxy: CuttableProxy, tally: Tally, start: float, down: float) -> Fault:
    at = time.monotonic()
    proxy.cut()
    time.sleep(down)
    proxy.restore()
    ended = time.monotonic()
    fault = Fault("proxy_cut", at - start, ended - start, note=f"cut {ended - at:.1f}s")
    fault.recovered_seconds = first_success_after(tally, ended, 60)
    return fault


# --- the run -------------------------------------------------------------------------


def crops(dataset: Path) -> list[tuple[str, bytes]]:
    with (dataset / "labels.csv").open(newline="") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["image_kind"] == "palpebral_crop" and r["qc_flag"] == "ok"
        ]
    every = [(Path(r["file"]).name, (dataset / r["file"]).read_bytes()) for r in rows]
    return [(name, data) for name, data in every if gate_passes(data)]


def gate_passes(data: bytes) -> bool:
    """The photo gate refuses a few real crops (a 422, rightly never stored): the fault
    run checks what happens to photos the service does score, so it sends only those."""
    from ml.gate import PhotoRejected
    from ml.images import decode_image, read_header
    from ml.runtime import get_registry

    model = get_registry(REPO_ROOT / "model").get("conjunctiva")
    try:
        model.predict(decode_image(data, read_header(data)))
    except PhotoRejected:
        return False
    return True


def stored_rows(url: str) -> dict[str, list[str]]:
    import psycopg

    rows: dict[str, list[str]] = {}
    with psycopg.connect(url) as conn:
        for message_id, sha in conn.execute(
            "SELECT message_id, image_sha256 FROM predictions_prediction"
        ):
            rows.setdefault(message_id, []).append(sha)
    return rows


LINK_WAIT_S = 10.0  # far above the bound (the linker interval, 1 s, plus one pass)


def check(
    tally: Tally,
    rows: dict[str, list[str]],
    metric: tuple[float, float],
    audit: tuple[int, str],
) -> list[str]:
    failures: list[str] = []
    unanswered = [u for u in tally.uploads if u.message_id is None]
    if unanswered:
        failures.append(
            f"{len(unanswered)} uploads never got a result "
            f"(last statuses {unanswered[0].statuses[-5:]}, problems {unanswered[0].problems[-3:]})"
        )
    for upload in tally.uploads:
        if len(set(upload.message_ids)) > 1:
            failures.append(f"upload {upload.key}: answers named {set(upload.message_ids)}")
        for problem in upload.problems:
            if not problem.startswith("broken:"):
                failures.append(f"upload {upload.key}: {problem}")
    answered = {u.message_id: u for u in tally.uploads if u.message_id is not None}
    for message_id, upload in answered.items():
        shas = rows.get(message_id, [])
        if len(shas) != 1:
            failures.append(f"{message_id}: {len(shas)} rows, expected 1")
        elif shas[0] != upload.sha256:
            failures.append(f"{message_id}: stored for another image")
    strangers = set(rows) - set(answered)
    if strangers:
        failures.append(f"{len(strangers)} rows whose message_id no client was given")
    if audit[0] != 0:
        failures.append(f"verify_auditlog exited {audit[0]}: {audit[1][-300:]}")
    counted, commit_failures = metric
    stored = sum(len(v) for v in rows.values())
    if not counted - commit_failures <= stored <= counted:
        failures.append(
            f"{stored} rows, but healthguard_predictions_total is {counted:.0f} with "
            f"{commit_failures:.0f} commit failures: rows must lie between the two"
        )
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60, help="seconds of load")
    parser.add_argument("--drain-seconds", type=float, default=60, help="then at most this")
    parser.add_argument("--kills", type=int, default=4, help="workers SIGKILLed")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--pg-data", type=Path, help="an existing private cluster to use")
    parser.add_argument("--pg-port", type=int, help="its port (default: a free one)")
    parser.add_argument("--takeover-seconds", type=int, default=5)
    args = parser.parse_args(argv)

    images = crops(args.dataset)
    if not images:
        print(f"no crops found in {args.dataset}", file=sys.stderr)
        return 1
    pg = PrivatePostgres(data=args.pg_data, port=args.pg_port).init()
    proxy: CuttableProxy | None = None
    server: LiveServer | None = None
    linked_after: float | None = None
    counted = commit_failures = 0.0
    try:
        if not pg.running():
            pg.start()
        import psycopg

        database = "healthguard_faults"
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
        direct_url = pg.url(database=database)
        proxy = CuttableProxy(("127.0.0.1", pg.port)).start()
        direct_env = server_env(direct_url)
        migrate(direct_env)
        server = LiveServer(
            env=server_env(
                pg.url(port=proxy.port, database=database),
                DB_CONNECT_TIMEOUT="2",
                IDEMPOTENCY_TAKEOVER_SECONDS=str(args.takeover_seconds),
                LOG_LEVEL="WARNING",
            ),
            workers=WORKERS,
            timeout=20,
        )
        server.start()
        print(
            f"PostgreSQL {pg.data} on :{pg.port} (proxy :{proxy.port}); gunicorn "
            f"{server.base_url} with {WORKERS} workers; {args.clients} clients, "
            f"{len(images)} crops, {args.seconds:.0f}s of load"
        )

        tally = Tally()
        stop_new = threading.Event()
        start = time.monotonic()
        give_up_at = start + args.seconds + args.drain_seconds
        threads = [
            threading.Thread(
                target=client_loop,
                args=(i, server.port, images, tally, stop_new, give_up_at),
                daemon=True,
            )
            for i in range(args.clients)
        ]
        for thread in threads:
            thread.start()

        # The schedule, spread over the load: kills between the database faults.
        slot = args.seconds / (args.kills + 3)
        faults: list[Fault] = []
        plan = ["kill"] * args.kills
        plan.insert(1, "postgres")
        plan.insert(min(3, len(plan)), "proxy")
        for n, what in enumerate(plan, start=1):
            time.sleep(max(0.0, start + n * slot - time.monotonic()))
            if what == "kill":
                faults.append(kill_worker(server, tally, start))
            elif what == "postgres":
                faults.append(restart_postgres(pg, tally, start, down=3))
            else:
                faults.append(cut_connections(proxy, tally, start, down=3))
            print(f"  +{faults[-1].injected_at:.1f}s {faults[-1].kind} ({faults[-1].note})")
        time.sleep(max(0.0, start + args.seconds - time.monotonic()))
        stop_new.set()
        for thread in threads:
            thread.join(timeout=max(1.0, give_up_at - time.monotonic() + 35))
        elapsed = time.monotonic() - start

        # Healthy afterwards: a full set of live workers, ready, and analysing.
        health: list[str] = []
        pids = worker_pids(server)
        if len(pids) != WORKERS:
            health.append(f"{len(pids)} workers alive, expected {WORKERS}")
        readies = [server.request("GET", "/health/ready").status for _ in range(2 * WORKERS)]
        if set(readies) != {200}:
            health.append(f"/health/ready answered {readies}")
        name, data = images[0]
        check_upload = Upload(-1, str(uuid.uuid4()), name, data, hashlib.sha256(data).hexdigest())
        tally.uploads.append(check_upload)
        send_until_answered(server.port, check_upload, tally, time.monotonic() + 30)

        rows = stored_rows(direct_url)
        # Counted just before each commit, and a commit that then failed is counted apart
        # (ops/metrics.py). A failed commit usually rolled back, but one whose
        # acknowledgement was lost (connection cut during the WAL flush) did store its
        # row: so rows lie between predictions - commit failures and predictions.
        counted = server.metric_total("healthguard_predictions_total")
        commit_failures = server.metric_total("healthguard_prediction_commit_failures_total")
        # Linked by the running workers (deferred linking), not by their exit pass.
        linked_after = audit_linked_within(direct_url, LINK_WAIT_S)
        if linked_after is None:
            health.append(f"audit entries still unlinked {LINK_WAIT_S:.0f} s after the load")
        server.stop()
        audit = verify_auditlog(direct_env)
        log = server.logs()
    finally:
        if server is not None:
            server.stop()
        if proxy is not None:
            proxy.stop()
        pg.close()

    failures = health + check(tally, rows, (counted, commit_failures), audit)
    if "Internal Server Error" in log:
        failures.append("the gunicorn log has an Internal Server Error")
    statuses = Counter(s for u in tally.uploads for s in u.statuses)
    attempts = sum(u.attempts for u in tally.uploads)
    retries = attempts - len(tally.uploads)
    print(
        f"load {elapsed:.1f}s: {len(tally.uploads)} uploads, {attempts} requests, "
        f"{retries} retries"
    )
    print("answers: " + ", ".join(f"{s or 'broken'}: {n}" for s, n in sorted(statuses.items())))
    kinds = Counter(f.kind for f in faults)
    listed = ", ".join(f"{k} {n}" for k, n in kinds.items())
    print(f"faults injected: {len(faults)} ({listed})")
    for f in faults:
        recovered = f"{f.recovered_seconds:.2f}s" if f.recovered_seconds is not None else "never"
        print(
            f"  {f.kind:<17} at +{f.injected_at:5.1f}s ({f.note}): "
            f"first result {recovered} after it ended"
        )
    print(
        f"rows: {sum(len(v) for v in rows.values())}; uploads answered: "
        f"{sum(1 for u in tally.uploads if u.message_id)}; "
        f"healthguard_predictions_total: {counted:.0f}, commit failures: {commit_failures:.0f}; "
        f"verify_auditlog exit {audit[0]}; "
        f"audit entries all linked {f'{linked_after:.2f}' if linked_after is not None else '-'} s "
        "after the last answer"
    )
    print(f"workers alive at the end: {len(pids)}; /health/ready: {readies}")
    if failures:
        print("\nFAILED:")
        for failure in failures[:30]:
            print(f"  - {failure}")
        print(f"gunicorn log: {server.log_path if server else '-'}")
        return 1
    with contextlib.suppress(OSError):
        if server is not None:
            server.log_path.unlink()
    print("OK: every upload stored exactly once and answered; no 500; audit chain verifies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
