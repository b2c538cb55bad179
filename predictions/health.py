"""Health endpoints for operators and orchestrators.

/health/live touches nothing (the process answers); /health/ready is 200 only when the
database answers and the model is loaded; /health reports both plus the version.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from predictions.inference import registry_status

logger = logging.getLogger(__name__)


def database_reachable() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not reachable" for a probe
        logger.warning("database check failed: %s", exc.__class__.__name__)
        connection.close_if_unusable_or_obsolete()
        return False
    return True


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    model_loaded, model_error, _ = registry_status()
    db_ok = database_reachable()
    ok = model_loaded and db_ok
    body: dict[str, object] = {
        "status": "ready" if ok else "not_ready",
        "checks": {"database": db_ok, "model": model_loaded},
    }
    if model_error:
        body["model_error"] = model_error
    return JsonResponse(body, status=200 if ok else 503)


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    model_loaded, model_error, sites = registry_status()
    db_ok = database_reachable()
    return JsonResponse(
        {
            "status": "ok" if (model_loaded and db_ok) else "degraded",
            "version": settings.VERSION,
            "model_loaded": model_loaded,
            "model_sites": list(sites),
            "database_reachable": db_ok,
        }
    )
