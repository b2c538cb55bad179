"""Azure Application Insights export: off unless APPLICATIONINSIGHTS_CONNECTION_STRING
is set, and then configured with the request id on the request span. No test here uses
the network: the connection string points at a closed loopback port, and the probe
process blocks (and reports) any attempt to reach another address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from unittest import mock

import pytest

from devtools.live import free_port
from healthguard import telemetry
from tests.observability.conftest import REPO_ROOT

PROBE = REPO_ROOT / "tests" / "observability" / "otel_probe.py"


def fake_connection_string() -> str:
    closed = free_port()
    return (
        "InstrumentationKey=00000000-0000-4000-8000-000000000000;"
        f"IngestionEndpoint=http://127.0.0.1:{closed}/;LiveEndpoint=http://127.0.0.1:{closed}/"
    )


def run_probe(extra_env: dict[str, str]) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_")) and k != "DEBUG"
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "healthguard.settings",
            "SECRET_KEY": "x" * 50,
            "ALLOWED_HOSTS": "testserver",
            "LOG_LEVEL": "ERROR",
            "PYTHONPATH": str(REPO_ROOT),
            **extra_env,
        }
    )
    result = subprocess.run(
        [sys.executable, str(PROBE)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [x for x in result.stdout.splitlines() if x.startswith("RESULT")]
    return json.loads(line.removeprefix("RESULT"))


@pytest.fixture
def telemetry_off(monkeypatch):
    monkeypatch.setattr(telemetry, "_enabled", False)


def test_without_a_connection_string_the_distro_is_never_called(telemetry_off):
    with mock.patch("azure.monitor.opentelemetry.configure_azure_monitor") as configure:
        assert telemetry.telemetry_configure(environ={}) is False
        blank = {"APPLICATIONINSIGHTS_CONNECTION_STRING": " "}
        assert telemetry.telemetry_configure(environ=blank) is False
    configure.assert_not_called()
    assert telemetry.telemetry_enabled() is False


def test_with_a_connection_string_the_distro_is_configured_with_it(telemetry_off):
    connection_string = fake_connection_string()
    with mock.patch("azure.monitor.opentelemetry.configure_azure_monitor") as configure:
        assert telemetry.telemetry_configure(
            environ={"APPLICATIONINSIGHTS_CONNECTION_STRING": connection_string}
        )
    configure.assert_called_once()
    assert configure.call_args.kwargs["connection_string"] == connection_string
    assert telemetry.telemetry_enabled() is True


def test_span_annotation_does_nothing_when_export_is_off(telemetry_off):
    with mock.patch("opentelemetry.trace.get_current_span") as current:
        telemetry.span_annotate(request_id="abc-request-0001")
    current.assert_not_called()


def test_a_service_without_the_variable_loads_nothing_and_sends_nothing():
    result = run_probe({})
    assert result["enabled"] is False
    assert result["azure_imported"] is False
    assert result["attempts"] == []


def test_with_the_variable_requests_are_traced_with_the_request_id_and_exported_to_azure():
    result = run_probe(
        {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": fake_connection_string(),
            # Off for the test only (they would look for Azure VM metadata and send SDK
            # usage statistics); production keeps the distro's defaults.
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
        }
    )
    assert result["enabled"] is True
    assert "AzureMonitorTraceExporter" in result["exporters"]
    [span] = result["spans"]  # health/live is not traced: probes are excluded
    assert span["attributes"]["request_id"] == "otel-request-0001"
    assert span["attributes"]["http.status_code"] in (401, 403)
    assert "results" in span["attributes"]["http.route"]
    # Log records are exported too, each with its request id.
    assert ["LoggingHandler", ["RequestIdLogFilter"]] in result["root_handlers"]
    # Nothing tried to leave the machine (the fake ingestion endpoint is loopback).
    assert result["attempts"] == []


def test_the_probe_does_catch_an_attempt_to_leave_the_machine():
    # With the distro's default resource detectors it asks the Azure VM metadata
    # service (169.254.169.254); the probe blocks that and reports it, which shows the
    # empty lists above mean something.
    result = run_probe(
        {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": fake_connection_string(),
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
        }
    )
    assert result["enabled"] is True
    assert any("169.254.169.254" in target for _, target in result["attempts"])
