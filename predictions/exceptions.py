"""Errors the services raise: plain exceptions with a stable `code`.

No HTTP here: `predictions.errors` alone maps a code to a status and renders the one
error shape, for the API, the pages and Django's own handlers. (`ml.images.ImageError`
and its subclasses carry a `code` the same way.)
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, gettext_lazy


class ApplicationError(Exception):
    """An error with a stable machine-readable code, a human message and details."""

    code: str = "invalid"
    default_message: Any = gettext_lazy("The request is not valid.")

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        # Translated when raised, in the language of the request (LocaleMiddleware).
        self.message = str(message or self.default_message)
        self.details = details if details is not None else {}
        super().__init__(self.message)


class UploadTooLarge(ApplicationError):
    code = "file_too_large"

    def __init__(self, *, limit: int) -> None:
        super().__init__(
            gettext("The image is larger than the %(mb)s MB limit.")
            % {"mb": limit // (1024 * 1024)},
            details={"max_bytes": limit},
        )


class MissingImage(ApplicationError):
    code = "missing_image"
    default_message = gettext_lazy("Send exactly one image in the multipart field 'image'.")


class UnknownSite(ApplicationError):
    code = "unknown_site"
    default_message = gettext_lazy("No model is available for this body site.")


class RequestTooLarge(ApplicationError):
    code = "request_too_large"
    default_message = gettext_lazy("The request body is too large.")


class MalformedRequest(ApplicationError):
    code = "malformed_request"
    default_message = gettext_lazy(
        "The request could not be read (too many fields or files, or bad framing)."
    )


class ServiceUnavailable(ApplicationError):
    code = "service_unavailable"
    default_message = gettext_lazy(
        "The service is temporarily unavailable. Please try again shortly."
    )


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    default_message = gettext_lazy(
        "The service cannot reach its database. Please try again shortly."
    )


class ModelUnavailable(ServiceUnavailable):
    code = "model_unavailable"
    default_message = gettext_lazy("The analysis model is not loaded. Please try again shortly.")


class MalwareDetected(ApplicationError):
    code = "malware_detected"
    default_message = gettext_lazy("The malware scanner flagged this file, so it was not analysed.")


class ScannerUnavailable(ServiceUnavailable):
    code = "scanner_unavailable"
    default_message = gettext_lazy(
        "The malware scanner cannot be reached. Please try again shortly."
    )
