"""Fields added to the current request's log line from anywhere below the middleware.

`healthguard.request_log` opens a context per request (`fields_collect`) and writes
the fields on its line; `annotate` (called by `healthguard.metrics.prediction_record`
and others) adds to it. A module of its own so that metrics and request logging do
not import each other.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "request_log_fields", default=None
)


def annotate(**fields: Any) -> None:
    """Add fields to the current request's log line (no-op outside a request)."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


@contextlib.contextmanager
def fields_collect() -> Iterator[dict[str, Any]]:
    """Collect the fields annotated inside, in the dict yielded."""
    collected: dict[str, Any] = {}
    token = _fields.set(collected)
    try:
        yield collected
    finally:
        _fields.reset(token)
