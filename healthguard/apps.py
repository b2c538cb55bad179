from __future__ import annotations

from django.apps import AppConfig


class HealthguardConfig(AppConfig):
    """The project package as an app, for start-up work that needs Django set up."""

    name = "healthguard"
    verbose_name = "HealthGuard Vision"

    def ready(self) -> None:
        from healthguard.telemetry import telemetry_configure

        # A no-op unless APPLICATIONINSIGHTS_CONNECTION_STRING is set.
        telemetry_configure()
