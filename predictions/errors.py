"""One error shape for the whole API: {"error": {"code", "message", "details"}}.

Services raise `ApiError` subclasses (or `ml.images.ImageError`, which maps to one);
DRF's exceptions, Django's suspicious-request errors and database outages are all
translated here, so no 4xx/5xx leaves the API in another shape.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from healthguard import metrics
from ml.images import ImageDimensionsError, ImageError, UndecodableImage, UnsupportedImageType

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error with a stable machine-readable code and a human message."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"
    default_detail = "The request is not valid."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        super().__init__(detail=message or self.default_detail, code=self.default_code)
        self.details = details if details is not None else {}


class UploadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "file_too_large"

    def __init__(self, *, limit: int) -> None:
        super().__init__(
            f"The image is larger than the {limit // (1024 * 1024)} MB limit.",
            details={"max_bytes": limit},
        )


class MissingImage(ApiError):
    default_code = "missing_image"
    default_detail = "Send exactly one image in the multipart field 'image'."


class UnknownSite(ApiError):
    default_code = "unknown_site"
    default_detail = "No model is available for this body site."


class RequestTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


class MalformedRequest(ApiError):
    default_code = "malformed_request"
    default_detail = "The request could not be read (too many fields or files, or bad framing)."


class ServiceUnavailable(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "The service is temporarily unavailable. Please try again shortly."


class DatabaseUnavailable(ServiceUnavailable):
    default_code = "database_unavailable"
    default_detail = "The service cannot reach its database. Please try again shortly."


class ModelUnavailable(ServiceUnavailable):
    default_code = "model_unavailable"
    default_detail = "The analysis model is not loaded. Please try again shortly."


class MalwareDetected(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "malware_detected"
    default_detail = "The malware scanner flagged this file, so it was not analysed."


class ScannerUnavailable(ServiceUnavailable):
    default_code = "scanner_unavailable"
    default_detail = "The malware scanner cannot be reached. Please try again shortly."


_IMAGE_ERROR_STATUS: dict[type[ImageError], int] = {
    UnsupportedImageType: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    UndecodableImage: status.HTTP_400_BAD_REQUEST,
    ImageDimensionsError: status.HTTP_400_BAD_REQUEST,
}

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


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def image_error_status(exc: ImageError) -> int:
    for cls, code in _IMAGE_ERROR_STATUS.items():
        if isinstance(exc, cls):
            return code
    return status.HTTP_400_BAD_REQUEST


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
    if isinstance(exc, ApiError):
        body = error_body(exc.default_code, str(exc.detail), exc.details)
    else:
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


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER: every exception leaves as the one error shape."""
    if isinstance(exc, ImageError):
        metrics.api_error_record(context.get("request"), exc.code)
        return Response(
            error_body(exc.code, str(exc)), status=image_error_status(exc)
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        # Too many fields or files, malformed multipart framing and the like.
        exc = MalformedRequest()
    elif isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        exc = DatabaseUnavailable()
    elif isinstance(exc, DatabaseError):
        logger.exception("database error")
        exc = ServiceUnavailable()
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
    503, "database_unavailable", DatabaseUnavailable.default_detail, "500.html"
)


def handler500(request: HttpRequest) -> HttpResponse:
    # Django calls this while it handles the exception: a database outage outside a DRF
    # view (the session saved in middleware after the view, a page) is a 503 too.
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        logger.warning("database unavailable outside the API view")
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
