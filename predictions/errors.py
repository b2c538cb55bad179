"""The one error shape, {"error": {"code", "message", "details"}}, and its HTTP status.

Services raise `predictions.exceptions.ApplicationError` subclasses (or
`ml.images.ImageError`); both carry a `code`. `STATUS_BY_CODE` below is the one table
from a code to its HTTP status. DRF's exceptions, Django's suspicious-request errors
and database outages (`database_outage`, the one place an outage becomes a 503) are
translated here too, so no 4xx/5xx leaves the API in another shape. The renderers
(the DRF handler, Django's handler400-500, csrf_failure) are `predictions.handlers`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import status

from ml.gate import PhotoRejected
from ml.images import ImageError
from predictions.exceptions import ApplicationError, DatabaseUnavailable

logger = logging.getLogger(__name__)

# Error code -> HTTP status. Adding a code is one line here; a code not listed is a 400.
STATUS_BY_CODE: dict[str, int] = {
    # predictions.exceptions
    "missing_image": status.HTTP_400_BAD_REQUEST,
    "unknown_site": status.HTTP_400_BAD_REQUEST,
    "malformed_request": status.HTTP_400_BAD_REQUEST,
    "file_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "request_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "malware_detected": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "service_unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
    "database_unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
    "model_unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
    "scanner_unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
    # predictions.idempotency
    "idempotency_key_invalid": status.HTTP_400_BAD_REQUEST,
    "idempotency_key_in_flight": status.HTTP_409_CONFLICT,
    "idempotency_key_reused": status.HTTP_422_UNPROCESSABLE_ENTITY,
    # ml.images and ml.runtime
    "unsupported_media_type": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "invalid_image": status.HTTP_400_BAD_REQUEST,
    "invalid_dimensions": status.HTTP_400_BAD_REQUEST,
    "no_conjunctiva_found": status.HTTP_400_BAD_REQUEST,
    # ml.gate.PhotoRejected: the photo gate refused to score the photo
    "not_a_conjunctiva": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "not_fingernails": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "photo_quality": status.HTTP_422_UNPROCESSABLE_ENTITY,
}

# Codes rendered for DRF's and Django's own errors (predictions.handlers): with
# STATUS_BY_CODE, every `code` a client can meet (the schema lists them as an enum).
OTHER_CODES: tuple[str, ...] = (
    "invalid",
    "not_authenticated",
    "authentication_failed",
    "permission_denied",
    "not_found",
    "method_not_allowed",
    "not_acceptable",
    "unsupported_content_type",
    "throttled",
    "bad_request",
    "csrf_failed",
    "internal_error",
)
ERROR_CODES: tuple[str, ...] = tuple(sorted({*STATUS_BY_CODE, *OTHER_CODES}))


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, status.HTTP_400_BAD_REQUEST)


def error_of(exc: ApplicationError | ImageError) -> tuple[int, dict[str, Any]]:
    """The status and body for an error a service raised."""
    if isinstance(exc, ApplicationError):
        return status_for(exc.code), error_body(exc.code, exc.message, exc.details)
    return status_for(exc.code), error_body(exc.code, str(exc), image_error_details(exc))


def image_error_details(exc: ImageError) -> dict[str, Any]:
    """`details` for an ml error: a gate refusal says why and how to retake."""
    if isinstance(exc, PhotoRejected):
        return {"reasons": list(exc.reasons), "advice": exc.advice}
    return {}


def database_outage(exc: BaseException | None, *, where: str) -> DatabaseUnavailable | None:
    """The one policy: a database that cannot be reached is a 503 `database_unavailable`."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable %s: %s", where, exc.__class__.__name__)
        return DatabaseUnavailable()
    return None


