"""One transaction per upload request, session write included.

POST /api/predict (and the page form that analyses a photo) writes twice: the
prediction row in the view, then the anonymous session that remembers it, saved by
SessionMiddleware after the view has returned. In autocommit, a database that goes
away between the two leaves a stored prediction behind an error response; the client
retries and the result is stored twice. Wrapping the whole middleware chain below this
one in a transaction makes the request all or nothing: any response of 400 or more
rolls back, and a commit that fails becomes a 503 in the error shape. The commit's
duration is added to the view's Server-Timing header as the stage `commit`.

Placed just before SessionMiddleware in settings.MIDDLEWARE. Other requests keep
Django's autocommit, and so do API uploads with an `Idempotency-Key` header: their
claim must be committed before the work so other workers see it
(predictions/idempotency.py), and a retry after a failed session write gets the stored
result back instead of a second one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cache

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse

from ops import metrics
from predictions import services
from predictions.errors import error_of
from predictions.exceptions import DatabaseUnavailable
from predictions.idempotency import HEADER as IDEMPOTENCY_KEY_HEADER

logger = logging.getLogger(__name__)

UPLOAD_ROUTES = ("predict", "analyse")
SERVER_TIMING_HEADER = "Server-Timing"


@cache
def upload_paths() -> frozenset[str]:
    paths = set()
    for name in UPLOAD_ROUTES:
        try:
            paths.add(reverse(name))
        except NoReverseMatch:
            continue
    return frozenset(paths)


class AtomicUploadMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method != "POST"
            or request.path not in upload_paths()
            or IDEMPOTENCY_KEY_HEADER in request.headers
        ):
            return self.get_response(request)
        token = services.counted_uncommitted_reset()
        try:
            with transaction.atomic():
                response = self.get_response(request)
                if response.status_code >= 400:
                    transaction.set_rollback(True)
                committing = time.perf_counter()
        except DatabaseError as exc:
            logger.warning("database unavailable at commit: %s", exc.__class__.__name__)
            # The predictions counted inside were not stored after all.
            lost = services.counted_uncommitted()
            if lost:
                metrics.PREDICTION_COMMIT_FAILURES.inc(lost)
            # Any failed commit (not only an outage) leaves nothing stored: a 503.
            error = DatabaseUnavailable()
            metrics.api_error_record(request, error.code)
            status, body = error_of(error)
            return JsonResponse(body, status=status)
        finally:
            services.counted_uncommitted_restore(token)
        timing = response.get(SERVER_TIMING_HEADER)
        if timing:
            # The commit (a WAL flush) is database time: a stage of its own, so that the
            # time left over for Django ("rest") does not carry it.
            commit_ms = (time.perf_counter() - committing) * 1000
            response[SERVER_TIMING_HEADER] = f"{timing}, commit;dur={commit_ms:.2f}"
        return response
