"""gunicorn settings: how production (and the Docker image) serves HealthGuard Vision.

    gunicorn -c gunicorn.conf.py healthguard.wsgi:application

Read from the environment (the names are the service's configuration interface):
  PORT                      listen on 0.0.0.0:$PORT (default 8000)
  WEB_CONCURRENCY           worker processes (default: CPUs this process may use)
  LOG_LEVEL, LOG_FORMAT     gunicorn's own log lines follow the app's level and format
  PROMETHEUS_MULTIPROC_DIR  where workers share metric files (default: a directory under
                            the temp dir); emptied when the master starts
  RUN_MIGRATIONS=1          run `manage.py migrate` once in the master before any worker
                            forks (and `createsuperuser --noinput` when
                            DJANGO_SUPERUSER_USERNAME is set); off by default
  AUDITLOG_CHAIN_LINKING    "deferred" by default here: every worker runs the audit
                            chain's linker thread (predictions/audit/linker.py), so a
                            request only seals its audit entries and takes no lock;
                            "inline" links them in the request, under the chain's lock
Other gunicorn flags can still be given through GUNICORN_CMD_ARGS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# The same typed, loud helpers as the Django settings: a bad value stops the master at
# start with a message naming the variable. healthguard.env imports nothing heavy.
from healthguard.env import env_bool, env_choice, env_int

PROJECT_DIR = Path(__file__).resolve().parent


def _cpu_count() -> int:
    # sched_getaffinity respects CPU pinning in containers; os.cpu_count() may not.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_port = env_int("PORT", 8000, minimum=1, maximum=65535)
# All interfaces on purpose: inside a container the published port reaches the process
# only through the container's own network interface.
bind = [f"0.0.0.0:{_port}"]
wsgi_app = "healthguard.wsgi:application"

# Sync workers, one thread each: inference is CPU bound and the TFLite interpreter is
# loaded once per process, so scale with processes.
workers = env_int("WEB_CONCURRENCY", _cpu_count(), minimum=1, maximum=64)
worker_class = "sync"
threads = 1
# Each worker loads Django and the model itself (no preload): nothing that holds threads
# or sockets (database, interpreter thread pools) is ever shared across a fork.
preload_app = False

# Timeouts: a prediction takes well under a second; a worker silent for 30 s is stuck.
# On SIGTERM (docker stop, ACI restart) workers get 25 s to finish their requests,
# inside Docker's default 30 s (compose sets stop_grace_period to match).
timeout = 30
graceful_timeout = 25
keepalive = 5
# Heartbeat files in memory, not on the container's overlay filesystem.
_SHM = "/dev/shm"  # noqa: S108  (gunicorn creates private temp files inside it)
if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK):
    worker_tmp_dir = _SHM

# Logging: Django logs one line per request (method, route, status, duration_ms,
# request_id), so gunicorn's access log stays off. gunicorn's own lines follow
# LOG_LEVEL and LOG_FORMAT, with the same defaults as healthguard/settings.py.
_debug = env_bool("DEBUG", False)
_log_level = env_choice(
    "LOG_LEVEL", "DEBUG" if _debug else "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
)
_log_format = env_choice("LOG_FORMAT", "text" if _debug else "json", ("json", "text"))
accesslog = None
errorlog = "-"
loglevel = _log_level.lower()
_formatter: dict[str, Any] = (
    {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
        "rename_fields": {"asctime": "timestamp", "levelname": "level"},
        "static_fields": {"service": "healthguard-api"},
    }
    if _log_format == "json"
    else {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"}
)
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"gunicorn": _formatter},
    "handlers": {
        "gunicorn": {
            "class": "logging.StreamHandler",
            "formatter": "gunicorn",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": _log_level, "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": _log_level, "handlers": ["gunicorn"], "propagate": False},
        # With a logging dict gunicorn would log each request too: keep that logger
        # silent (its lines are INFO), Django's request log has the fields that matter.
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    },
}

# Prometheus multiprocess mode: each worker writes its metrics to files in this
# directory and /metrics adds them up, so one scrape counts what every worker did.
# Set here, before any worker imports prometheus_client, so workers inherit it.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
if not _metrics_dir:
    # Port in the name: two servers on one machine must not wipe each other's files.
    _metrics_dir = str(Path(tempfile.gettempdir()) / f"healthguard-prometheus-{_port}")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

# Audit chain: writers seal, a linker links (predictions/audit/chain.py). Deferred is safe
# here because every worker runs a linker (post_worker_init); set before any worker
# loads the Django settings, and inherited by `manage.py` commands run from the master.
os.environ.setdefault("AUDITLOG_CHAIN_LINKING", "deferred")


def _metrics_dir_reset(path: Path) -> None:
    """Start from an empty directory: files left by a previous run would be counted."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def _manage(server: Any, *args: str) -> int:
    command = [sys.executable, str(PROJECT_DIR / "manage.py"), *args]
    server.log.info("running: manage.py %s", " ".join(args))
    # A separate process: Django, database connections and the model are never loaded
    # into the master, so nothing of them is inherited by the forked workers. Without
    # the metrics directory: its numbers must not be added to the workers' scrape.
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run(command, cwd=PROJECT_DIR, env=env, check=False).returncode  # noqa: S603


def on_starting(server: Any) -> None:
    """Runs once in the master, before the listening socket opens and workers fork."""
    _metrics_dir_reset(Path(_metrics_dir))
    server.log.info("prometheus multiprocess directory: %s", _metrics_dir)
    if not env_bool("RUN_MIGRATIONS", False):
        return
    # --skip-checks: CI runs the system checks; here they would only delay the start.
    if _manage(server, "migrate", "--noinput", "--skip-checks") != 0:
        # Serving against a schema that is not there would only fail later and worse.
        raise SystemExit("RUN_MIGRATIONS=1: manage.py migrate failed, not starting")
    superuser = os.environ.get("DJANGO_SUPERUSER_USERNAME")
    if superuser and _manage(server, "createsuperuser", "--noinput") != 0:
        server.log.warning("createsuperuser did not create %s (it may exist already)", superuser)


def child_exit(server: Any, worker: Any) -> None:
    """A worker died: drop its live gauges from the shared metrics, keep its counters."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _django_loaded() -> bool:
    """The worker loaded the service (not another WSGI app given with --app, such as the
    bench's peers) and Django is set up."""
    if "django.apps" not in sys.modules:
        return False
    from django.apps import apps

    return bool(apps.ready)


def post_worker_init(worker: Any) -> None:
    """In each worker, once Django and the app are loaded: OpenCV on one thread, and the
    audit linker started."""
    if not _django_loaded():
        return
    # One thread per worker, as the TFLite interpreter (ml/runtime.py): workers already
    # fill the CPUs, and OpenCV's own thread pool only contends with them (a 600x400 resize
    # took 1.13 ms on 2 threads and 0.74 ms on 1 here). Results are the same bit for bit.
    import cv2

    cv2.setNumThreads(1)
    from predictions.audit.linker import linker_start

    linker_start()


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker, as it exits: a last linking pass, then the linker stops."""
    if not _django_loaded():
        return
    from predictions.audit.linker import linker_stop

    linker_stop()
