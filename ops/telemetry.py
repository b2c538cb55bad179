"""Optional export to Azure Application Insights (OpenTelemetry), off by default.

Enabled only when APPLICATIONINSIGHTS_CONNECTION_STRING is set: then the Azure Monitor
OpenTelemetry distro exports request traces, metrics and log records, and every request
span carries the request id (attribute `request_id`), like the log lines. When it is
not set, the distro is not even imported and nothing is sent anywhere.

Configured from HealthguardConfig.ready(), i.e. in each gunicorn worker after the fork
(preload_app is off): exporter threads and sockets are never shared across processes,
and the Django instrumentation adds its middleware before the WSGI handler loads it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from ops.request_id import RequestIdLogFilter

CONNECTION_STRING_VARIABLE = "APPLICATIONINSIGHTS_CONNECTION_STRING"
SPAN_REQUEST_ID_ATTRIBUTE = "request_id"
# Regular expressions (comma separated) of URLs the Django instrumentation skips.
PROBE_URLS = "health/live,health/ready,metrics"

logger = logging.getLogger(__name__)

_enabled = False


def telemetry_enabled() -> bool:
    return _enabled


def telemetry_configure(*, environ: Mapping[str, str] | None = None) -> bool:
    """Start exporting when the connection string is set; True when it did."""
    global _enabled
    source = os.environ if environ is None else environ
    connection_string = source.get(CONNECTION_STRING_VARIABLE, "").strip()
    if not connection_string or _enabled:
        return _enabled
    # Probes and scrapes come every few seconds from machines: not worth a trace each
    # (ingestion is billed). Operators can override the list.
    os.environ.setdefault("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", PROBE_URLS)
    # Imported here: without a connection string the distro (and its instrumentations)
    # never loads.
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(
        connection_string=connection_string,
        # Only what this service runs: Django (requests), urllib/requests (none today).
        instrumentation_options={
            "flask": {"enabled": False},
            "fastapi": {"enabled": False},
            "psycopg2": {"enabled": False},
        },
    )
    _log_handlers_add_request_id()
    _enabled = True
    logger.info("Azure Monitor OpenTelemetry export enabled")
    return True


def _log_handlers_add_request_id() -> None:
    # The console handler's filter adds request_id to the records it formats; the
    # exporting handler the distro adds to the root logger needs its own copy.
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, LoggingHandler) and not any(
            isinstance(f, RequestIdLogFilter) for f in handler.filters
        ):
            handler.addFilter(RequestIdLogFilter())


def span_annotate(*, request_id: str) -> None:
    """Put the request id on the current request span (no-op when export is off)."""
    if not _enabled or not request_id:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(SPAN_REQUEST_ID_ATTRIBUTE, request_id)
