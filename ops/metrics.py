"""The service's own Prometheus metrics, and the /metrics view that exports them.

Labels are bounded on purpose: route names (the URL pattern's name, never the raw
path, which carries message ids), a fixed set of HTTP methods, error codes from
predictions/exceptions.py and ml/images.py, and the model version of the deployed model.
Never a user, an id or a path: each distinct label value is a time series kept forever.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py) before any worker
imports prometheus_client, so every worker writes its samples to files in that
directory and one scrape of any worker adds up all of them.
"""

from __future__ import annotations

import hmac
import os
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from ops import log_context

if TYPE_CHECKING:
    from predictions.models import Prediction

# Route label for requests that matched no URL pattern (404s, scanners): one series,
# however many different paths they try.
UNMATCHED_ROUTE = "unmatched"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Error codes that mean "the upload itself was refused" (predictions/exceptions.py,
# ml/images.py); each is also counted in healthguard_upload_rejections_total.
UPLOAD_REJECTION_CODES = frozenset(
    {
        "file_too_large",
        "request_too_large",
        "unsupported_media_type",
        "invalid_image",
        "invalid_dimensions",
        "missing_image",
        # Bodies that are not a multipart upload at all, or whose framing is broken
        # (wrong content type, 10,000 parts, no boundary), and scanner findings.
        "unsupported_content_type",
        "malformed_request",
        "malware_detected",
        # The photo gate (ml/gate.py): one increment per refused photo, labelled with its
        # code, not with each of its reasons, so the counter's sum is the number of refusals
        # and the label set stays the error codes. The reasons are in the response.
        "not_a_conjunctiva",
        "not_fingernails",
        "photo_quality",
    }
)

PREDICTIONS = Counter(
    "healthguard_predictions",
    "Predictions stored, by condition, body site, risk level and model version.",
    ["condition", "site", "risk_level", "model_version"],
)
# healthguard_predictions_total counts a prediction just before its commit (a worker
# killed while it waits for the commit's acknowledgement has stored the row, and its count
# is there too). A commit that then fails is counted here: stored = predictions - these,
# or more when a failed commit had stored its row and only the acknowledgement was lost.
PREDICTION_COMMIT_FAILURES = Counter(
    "healthguard_prediction_commit_failures",
    "Predictions counted in healthguard_predictions_total whose commit then failed "
    "(normally not stored; stored after all if only the acknowledgement was lost).",
)
PREDICTION_DURATION = Histogram(
    "healthguard_prediction_duration_seconds",
    "Time to analyse one image and store the result (read, decode, model, database).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
)
API_REQUESTS = Counter(
    "healthguard_api_requests",
    "Requests answered, by route name, method and status code.",
    ["endpoint", "method", "status"],
)
API_ERRORS = Counter(
    "healthguard_api_errors",
    "Error responses in the API error shape, by route name and error code.",
    ["endpoint", "code"],
)
UPLOAD_REJECTIONS = Counter(
    "healthguard_upload_rejections",
    "Uploads refused before analysis, by reason (the error code).",
    ["reason"],
)

AUDIT_LINKED = Counter(
    "healthguard_audit_entries_linked",
    "Audit entries the deferred linker linked into the hash chain.",
)
AUDIT_LINK_REFUSED = Counter(
    "healthguard_audit_entries_link_refused",
    "Unlinked audit entries the linker refused: their seal does not verify (tampering).",
)
AUDIT_LINK_FAILURES = Counter(
    "healthguard_audit_link_failures",
    "Linker passes that failed (database unreachable, say); the next pass retries.",
)
AUDIT_LINK_LAG = Histogram(
    "healthguard_audit_link_lag_seconds",
    "Per linker pass that linked entries: the age of the oldest one when it was linked.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0, 60.0),
)


def route_name(request: Any) -> str:
    """The matched URL pattern's name (bounded), or UNMATCHED_ROUTE."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.view_name:
        return UNMATCHED_ROUTE
    return str(match.view_name)


def method_label(method: str | None) -> str:
    method = (method or "").upper()
    return method if method in _KNOWN_METHODS else "other"


def request_record(*, request: HttpRequest, status: int) -> None:
    API_REQUESTS.labels(
        endpoint=route_name(request), method=method_label(request.method), status=str(status)
    ).inc()


def api_error_record(request: Any, code: str) -> None:
    """Count an error response (called where the error body is built).

    `request` may be a Django HttpRequest or a DRF Request (which proxies
    resolver_match), or None outside a request.
    """
    API_ERRORS.labels(endpoint=route_name(request), code=code).inc()
    if code in UPLOAD_REJECTION_CODES:
        UPLOAD_REJECTIONS.labels(reason=code).inc()


def prediction_record(*, prediction: Prediction, seconds: float) -> None:
    """Count a stored prediction and its duration; the request log line gets its
    site, risk level and model version too."""
    PREDICTIONS.labels(
        condition=prediction.condition,
        site=prediction.site,
        risk_level=prediction.risk_level,
        model_version=prediction.model_version,
    ).inc()
    PREDICTION_DURATION.observe(seconds)
    log_context.annotate(
        site=prediction.site,
        risk_level=prediction.risk_level,
        model_version=prediction.model_version,
    )


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def registry_for_scrape() -> CollectorRegistry:
    """All workers' samples in multiprocess mode, else this process's registry."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _token_error(status: int, code: str, message: str) -> JsonResponse:
    body = {"error": {"code": code, "message": message, "details": {}}}
    response = JsonResponse(body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def _token_check(request: HttpRequest) -> HttpResponse | None:
    """None when the caller may scrape; else the 401/403 to send back."""
    expected: str = getattr(settings, "METRICS_TOKEN", "") or ""
    if not expected:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        api_error_record(request, "not_authenticated")
        return _token_error(
            401, "not_authenticated", "Send the metrics token as 'Authorization: Bearer <token>'."
        )
    # Constant-time comparison: response timing reveals nothing about the token.
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        api_error_record(request, "permission_denied")
        return _token_error(403, "permission_denied", "The metrics token is not valid.")
    return None


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; needs `Authorization: Bearer $METRICS_TOKEN` when set."""
    refused = _token_check(request)
    if refused is not None:
        return refused
    return HttpResponse(generate_latest(registry_for_scrape()), content_type=CONTENT_TYPE_LATEST)
