"""Rendering errors: the DRF exception handler, Django's handler400-500, csrf_failure.

Every exception leaves the API in the one error shape (`predictions.errors`); pages
get a plain page, never a stack trace. Which code has which status is
`predictions.errors.STATUS_BY_CODE`, not here.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from ml.images import ImageError
from ops import metrics
from predictions.errors import database_outage, error_body, error_of
from predictions.exceptions import (
    ApplicationError,
    DatabaseUnavailable,
    MalformedRequest,
    RequestTooLarge,
    ServiceUnavailable,
)

logger = logging.getLogger(__name__)

# Codes for DRF's own exceptions, where its default code is not descriptive enough.
_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_content_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid",
}


def _message_from(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail:
        return _message_from(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        inner = _message_from(value)
        return inner if key == "non_field_errors" else f"{key}: {inner}"
    return "The request is not valid."


def _drf_response(exc: exceptions.APIException, context: dict[str, Any]) -> Response:
    response = drf_exception_handler(exc, context)
    assert response is not None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
    code = code or str(exc.default_code)
    details: Any = {}
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail
    elif isinstance(exc, exceptions.Throttled) and getattr(exc, "wait", None) is not None:
        details = {"retry_after_seconds": int(exc.wait)}  # type: ignore[attr-defined]
    body = error_body(code, _message_from(exc.detail), details)
    response.data = body
    metrics.api_error_record(context.get("request"), body["error"]["code"])
    return response


def _service_response(exc: ApplicationError | ImageError, context: dict[str, Any]) -> Response:
    set_rollback()
    status_code, body = error_of(exc)
    metrics.api_error_record(context.get("request"), exc.code)
    return Response(body, status=status_code)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER: every exception leaves as the one error shape."""
    if isinstance(exc, ImageError):
        return _service_response(exc, context)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        # Too many fields or files, malformed multipart framing and the like.
        exc = MalformedRequest()
    elif isinstance(exc, DatabaseError):
        outage = database_outage(exc, where="in an API view")
        if outage is None:
            logger.exception("database error")
        exc = outage or ServiceUnavailable()
    if isinstance(exc, ApplicationError):
        return _service_response(exc, context)
    if isinstance(exc, exceptions.APIException):
        return _drf_response(exc, context)
    logger.exception("unhandled error in API view")
    metrics.api_error_record(context.get("request"), "internal_error")
    return Response(
        error_body("internal_error", "An unexpected error occurred. It has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/health", "/metrics"))


def _error_view(status_code: int, code: str, message: str, template: str) -> Any:
    def view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if _wants_json(request):
            metrics.api_error_record(request, code)
            return JsonResponse(error_body(code, message), status=status_code)
        return render(request, template, {"message": message}, status=status_code)

    return view


# Django-level handlers (healthguard/urls.py): outside DRF views, API paths still get
# the error shape and pages get a plain page, never a stack trace.
handler400 = _error_view(400, "bad_request", "The request could not be understood.", "400.html")
handler403 = _error_view(403, "permission_denied", "You do not have access to this.", "403.html")
handler404 = _error_view(404, "not_found", "Nothing was found at this address.", "404.html")
_handler500 = _error_view(500, "internal_error", "An unexpected error occurred.", "500.html")


_handler503_database = _error_view(
    503, DatabaseUnavailable.code, str(DatabaseUnavailable.default_message), "500.html"
)


def handler500(request: HttpRequest) -> HttpResponse:
    # Django calls this while it handles the exception: a database outage outside a DRF
    # view (the session saved in middleware after the view, a page) is a 503 too.
    if database_outage(sys.exc_info()[1], where="outside the API view") is not None:
        return _handler503_database(request)
    response: HttpResponse = _handler500(request)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if _wants_json(request):
        metrics.api_error_record(request, "csrf_failed")
        return JsonResponse(
            error_body("csrf_failed", "The CSRF check failed. Reload the page and try again."),
            status=403,
        )
    return render(
        request,
        "403.html",
        {"message": "Your session expired or the form was stale. Reload the page and try again."},
        status=403,
    )
