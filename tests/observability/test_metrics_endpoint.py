"""GET /metrics: Prometheus text, behind METRICS_TOKEN when it is set, and the sum of
every worker's samples in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

import ops.metrics
from tests.observability.conftest import parse_metrics, promtool_check, sample_value

TOKEN = "s3cret-scrape-token-for-tests"


def assert_error_shape(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code


def test_it_serves_prometheus_text_without_a_token_when_none_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    assert "healthguard_predictions" in parse_metrics(response.content.decode())
    assert "no-cache" in response["Cache-Control"]


def test_it_asks_for_the_token_with_401_when_it_is_missing(client, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics")
    assert_error_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"healthguard_" not in response.content


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}x", "Bearer wrong", f"Bearer {TOKEN[:-1]}", "Bearer " + TOKEN.upper()],
)
def test_it_refuses_a_wrong_token_with_403(client, settings, header):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert_error_shape(response, 403, "permission_denied")
    assert b"healthguard_" not in response.content


@pytest.mark.parametrize("header", [f"Basic {TOKEN}", TOKEN, "Bearer ", "Bearer"])
def test_it_treats_a_header_without_a_bearer_token_as_missing(client, settings, header):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert_error_shape(response, 401, "not_authenticated")


def test_it_serves_the_metrics_with_the_right_token(client, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert "healthguard_api_requests" in parse_metrics(response.content.decode())


def test_it_compares_the_token_in_constant_time(client, settings, monkeypatch):
    settings.METRICS_TOKEN = TOKEN
    calls = []
    real = ops.metrics.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(ops.metrics.hmac, "compare_digest", spy)
    client.get("/metrics", HTTP_AUTHORIZATION="Bearer guess")
    assert calls == [(b"guess", TOKEN.encode())]


def test_refused_scrapes_are_counted_as_errors_of_the_metrics_route(client, settings):
    settings.METRICS_TOKEN = TOKEN
    before = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    after = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    name = "healthguard_api_errors_total"
    labels = {"endpoint": "metrics", "code": "permission_denied"}
    assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 1


def test_it_only_answers_get(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.post("/metrics").status_code == 405


def test_in_multiprocess_mode_it_adds_up_the_samples_other_processes_wrote(
    client, settings, tmp_path, monkeypatch
):
    # Two other "workers" each count 3 predictions into the shared directory.
    script = (
        "from prometheus_client import Counter\n"
        "c = Counter('healthguard_predictions', 'x',\n"
        "            ['condition', 'risk_level', 'model_version'])\n"
        "c.labels('anemia', 'high', 'multiprocess-test').inc(3)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2

    settings.METRICS_TOKEN = ""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = client.get("/metrics").content.decode()
    labels = {"condition": "anemia", "risk_level": "high", "model_version": "multiprocess-test"}
    assert sample_value(text, "healthguard_predictions_total", **labels) == 6


@pytest.mark.django_db
def test_the_scrape_passes_promtool_lint(client, settings, api_client):
    settings.METRICS_TOKEN = ""
    api_client.get("/api/results")  # an error and a request sample at least
    result = promtool_check(client.get("/metrics").content.decode())
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_checks_mention_an_open_metrics_endpoint(settings):
    from healthguard.apps import metrics_token_check

    settings.METRICS_TOKEN = ""
    [message] = metrics_token_check()
    assert message.id == "healthguard.I001" and message.level == 20  # Info: never fails CI
    settings.METRICS_TOKEN = TOKEN
    assert metrics_token_check() == []
