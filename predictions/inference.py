"""The process-wide model registry, as the Django side sees it.

The models are loaded once per process: by the WSGI module at start (so a gunicorn
worker is warm before its first request), or lazily by the first caller otherwise. A
missing or corrupt model does not crash the process: readiness reports it and logs why.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

from ml.runtime import Model, ModelLoadError, ModelRegistry, get_registry
from ml.runtime import UnknownSite as MlUnknownSite
from predictions.exceptions import ModelUnavailable, UnknownSite

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_load_error: str | None = None


def registry_load() -> ModelRegistry | None:
    """Load (or return the cached) registry; log and remember the reason on failure."""
    global _load_error
    with _lock:
        try:
            registry = get_registry(settings.HEALTHGUARD_MODEL_DIR)
        except ModelLoadError as exc:
            if _load_error != str(exc):
                logger.error("model not loaded, the service will not be ready: %s", exc)
            _load_error = str(exc)
            return None
        _load_error = None
        return registry


def registry_status() -> tuple[bool, str | None, tuple[str, ...]]:
    """(loaded, reason when not loaded, sites) for the health endpoints."""
    registry = registry_load()
    if registry is None:
        return False, _load_error, ()
    return True, None, registry.sites


def model_get(*, site: str) -> Model:
    registry = registry_load()
    if registry is None:
        raise ModelUnavailable()
    try:
        return registry.get(site)
    except MlUnknownSite:
        raise UnknownSite(
            f"No model is available for the site {site!r}.",
            details={"site": site, "available_sites": list(registry.sites)},
        ) from None
