from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class HealthguardConfig(AppConfig):
    """The project package as an app, for start-up work that needs Django set up."""

    name = "healthguard"
    verbose_name = "HealthGuard Vision"

    def ready(self) -> None:
        from ops.telemetry import telemetry_configure

        checks.register(metrics_token_check, checks.Tags.security, deploy=True)
        # A no-op unless APPLICATIONINSIGHTS_CONNECTION_STRING is set.
        telemetry_configure()


def metrics_token_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """`check --deploy` mentions an open /metrics (Info: a private network may be the
    deliberate restriction, so it does not fail the deploy checks)."""
    if getattr(settings, "METRICS_TOKEN", ""):
        return []
    return [
        checks.Info(
            "METRICS_TOKEN is not set: /metrics answers anyone who can reach the service.",
            hint="Set METRICS_TOKEN and configure Prometheus with that bearer token.",
            id="healthguard.I001",
        )
    ]
