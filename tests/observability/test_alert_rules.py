"""The Prometheus alert rules shipped for the audit chain (deploy/prometheus/) are valid
rules, and fire or stay silent as their unit tests say (promtool test rules)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ops import metrics
from tests.optional import require_tool

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args], cwd=RULES_DIR, capture_output=True, text=True,
        timeout=60, check=False,
    )


def test_the_alert_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 rules found" in result.stdout


def test_the_alert_rules_fire_as_their_unit_tests_expect():
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_name_metrics_the_service_exports():
    rules = (RULES_DIR / "alerts.yml").read_text()
    for metric in (
        metrics.AUDIT_LINKED,
        metrics.AUDIT_LINK_REFUSED,
        metrics.AUDIT_LINK_FAILURES,
        metrics.PREDICTIONS,
    ):
        assert f"{metric._name}_total" in rules
    assert f"{metrics.AUDIT_LINK_LAG._name}_bucket" in rules
