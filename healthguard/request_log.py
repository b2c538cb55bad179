"""One log line per request: method, route, status, duration_ms, request_id.

Predictions add risk_level and model_version (through `log_context.annotate`, called
by healthguard.metrics.prediction_record). Never the raw path (it carries message ids),
the query string, the body (image bytes) or who the user is.

The line's level follows the outcome, so that LOG_LEVEL filters it sensibly:
INFO for 1xx-3xx (DEBUG for health probes and metrics scrapes, which come every few
seconds), WARNING for 4xx, ERROR for 5xx. In production (LOG_LEVEL=WARNING) only
failed requests are logged; LOG_LEVEL=INFO logs them all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from healthguard import metrics, telemetry
from healthguard.log_context import fields_collect

logger = logging.getLogger("healthguard.requests")

# Routes polled by machines: their successful answers are logged at DEBUG only.
QUIET_ROUTES = frozenset({"health", "health-live", "health-ready", "metrics"})

def level_for(*, status: int, route: str) -> int:
    if status >= 500:
        return logging.ERROR
    if status >= 400:
        return logging.WARNING
    if route in QUIET_ROUTES:
        return logging.DEBUG
    return logging.INFO


class RequestLogMiddleware:
    """Logs and counts every request that reaches Django's views (static files served
    by WhiteNoise, earlier in the chain, are neither)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        with fields_collect() as extra_fields:
            telemetry.span_annotate(request_id=getattr(request, "request_id", ""))
            response = self.get_response(request)
            duration_ms = (time.perf_counter() - started) * 1000
        route = metrics.route_name(request)
        status = response.status_code
        metrics.request_record(request=request, status=status)
        logger.log(
            level_for(status=status, route=route),
            "%s %s %s %.1fms",
            request.method,
            route,
            status,
            duration_ms,
            extra={
                "method": request.method,
                "route": route,
                "status": status,
                "duration_ms": round(duration_ms, 3),
                **extra_fields,
            },
        )
        return response
