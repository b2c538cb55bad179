"""The real thing: gunicorn with 3 workers (gunicorn.conf.py, production settings,
PostgreSQL), predictions spread over the workers, one scrape that counts them all."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devtools.live import LiveServer, free_port
from devtools.multipart import image_upload
from tests.conftest import conjunctiva_images
from tests.observability.conftest import (
    REPO_ROOT,
    gunicorn_start,
    http,
    promtool_check,
    sample_value,
    server_env,
)
from tests.optional import unavailable

pytestmark = pytest.mark.live_server_process

WORKERS = 3
N = 12
TOKEN = "multiworker-scrape-token-0123456789"


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prometheus-multiproc")


@pytest.fixture(scope="module")
def server(process_database_url, metrics_dir, tmp_path_factory) -> Iterator[LiveServer]:
    # A stale sample file, as a previous run would leave: on_starting must wipe it.
    (metrics_dir / "counter_999999.db").write_bytes(b"\x00" * 16)
    env = server_env(
        process_database_url,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        METRICS_TOKEN=TOKEN,
    )
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    server = gunicorn_start(env=env, port=free_port(), workers=WORKERS, log_path=log_path)
    try:
        workers_warm_up(server)
        yield server
    finally:
        server.stop()


def workers_warm_up(server: LiveServer, timeout: float = 60) -> None:
    """Wait until every worker has loaded the app and answered (they boot in parallel,
    and the first one ready would otherwise take all the load)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ThreadPoolExecutor(max_workers=WORKERS * 2) as pool:
            list(pool.map(lambda _: http(server.base_url, "GET", "/api/results"), range(12)))
        answered = {
            line["process"]
            for line in server.json_lines()
            if line.get("name") == "healthguard.requests" and line.get("route") == "result-list"
        }
        if len(answered) == WORKERS:
            return
        time.sleep(0.2)
    raise AssertionError(f"not every worker answered within {timeout}s")


def scrape(server: LiveServer) -> str:
    result = http(server.base_url, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert result.status == 200, result.body
    return result.body.decode()


def worker_pids(master_pid: int) -> set[int]:
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            pids.add(int(stat.parent.name))
    return pids


def predict(server: LiveServer, image: bytes, request_id: str):
    body, content_type = image_upload(image)
    return http(
        server.base_url,
        "POST",
        "/api/predict",
        headers={"Content-Type": content_type, "X-Request-ID": request_id},
        body=body,
    )


def test_one_scrape_counts_the_predictions_of_every_worker(server, metrics_dir):
    images = conjunctiva_images()
    if not images:
        unavailable("dataset not found (set HEALTHGUARD_DATASET_DIR)")
    assert not (metrics_dir / "counter_999999.db").exists(), "on_starting left stale samples"
    before = scrape(server)

    # Concurrent clients, so the sync workers are busy at once and share the load.
    with ThreadPoolExecutor(max_workers=WORKERS * 2) as pool:
        results = list(
            pool.map(
                lambda i: predict(server, images[i % len(images)].read_bytes(), f"mw-test-{i:04d}"),
                range(N),
            )
        )
    assert [r.status for r in results] == [201] * N, [r.body[:200] for r in results]
    after = scrape(server)

    counted = sum(
        sample_value(after, "healthguard_predictions_total", risk_level=level)
        - sample_value(before, "healthguard_predictions_total", risk_level=level)
        for level in ("low", "medium", "high")
    )
    assert counted == N
    by_level: dict[str, int] = {}
    for r in results:
        by_level[r.json()["risk_level"]] = by_level.get(r.json()["risk_level"], 0) + 1
    model_version = results[0].json()["model_version"]
    for level, count in by_level.items():
        labels = {"condition": "anemia", "risk_level": level, "model_version": model_version}
        delta = sample_value(after, "healthguard_predictions_total", **labels) - sample_value(
            before, "healthguard_predictions_total", **labels
        )
        assert delta == count
    hist = "healthguard_prediction_duration_seconds_count"
    assert sample_value(after, hist) - sample_value(before, hist) == N
    ok = {"endpoint": "predict", "method": "POST", "status": "201"}
    api = "healthguard_api_requests_total"
    assert sample_value(after, api, **ok) - sample_value(before, api, **ok) == N

    # The load really was spread: the request log lines name the worker that answered.
    lines = [
        line
        for line in server.json_lines()
        if line.get("name") == "healthguard.requests" and line.get("route") == "predict"
    ]
    assert len(lines) == N
    assert len({line["process"] for line in lines}) >= 2, "all predictions hit one worker"
    for line in lines:
        assert line["status"] == 201
        assert line["request_id"].startswith("mw-test-")
        assert line["risk_level"] in {"low", "medium", "high"}
        assert line["model_version"] == model_version
        assert isinstance(line["duration_ms"], float)
    assert {line["request_id"] for line in lines} == {f"mw-test-{i:04d}" for i in range(N)}


def test_counts_survive_a_worker_that_dies(server):
    before = scrape(server)
    total = "healthguard_api_requests_total"
    count_before = sum(
        sample_value(before, total, endpoint="predict", method="POST", status=s) for s in ("201",)
    )
    master = server.process.pid
    victims = worker_pids(master)
    assert len(victims) == WORKERS
    victim = sorted(victims)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = worker_pids(master)
        if victim not in pids and len(pids) == WORKERS:
            break
        time.sleep(0.2)
    else:
        pytest.fail("gunicorn did not replace the killed worker")

    after = scrape(server)
    count_after = sample_value(after, total, endpoint="predict", method="POST", status="201")
    # child_exit (mark_process_dead) keeps the dead worker's counters in the sum.
    assert count_after == count_before


def test_metrics_need_the_token_under_gunicorn(server):
    assert http(server.base_url, "GET", "/metrics").status == 401
    wrong = http(server.base_url, "GET", "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 403
    assert wrong.json()["error"]["code"] == "permission_denied"


def test_the_multiprocess_scrape_passes_promtool(server):
    result = promtool_check(scrape(server))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_django_log_line_is_json_with_a_request_id(server):
    http(server.base_url, "GET", "/api/nothing-here", headers={"X-Request-ID": "json-check-0001"})
    time.sleep(0.2)
    django_lines = [
        raw
        for raw in server.logs().splitlines()
        if '"service": "healthguard-api"' in raw and '"request_id"' in raw
    ]
    assert django_lines
    parsed = [line for line in server.json_lines() if line.get("request_id") == "json-check-0001"]
    assert {line["name"] for line in parsed} >= {"healthguard.requests"}
    [request_line] = [line for line in parsed if line["name"] == "healthguard.requests"]
    assert (request_line["route"], request_line["status"]) == ("unmatched", 404)


def test_the_gunicorn_config_marks_dead_workers_for_prometheus(monkeypatch, tmp_path):
    import importlib.util
    from types import SimpleNamespace

    from prometheus_client import multiprocess

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    spec = importlib.util.spec_from_file_location("gunicorn_conf", REPO_ROOT / "gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    marked = []
    monkeypatch.setattr(
        multiprocess, "mark_process_dead", lambda pid, path=None: marked.append(pid)
    )
    conf.child_exit(SimpleNamespace(), SimpleNamespace(pid=4242))
    assert marked == [4242]
