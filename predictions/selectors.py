"""Reads: who may see which predictions."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from predictions.models import Prediction

SESSION_KEY = "prediction_ids"
# An anonymous browser session remembers at most this many of its own results.
SESSION_MAX_RESULTS = 50

VIEW_ALL_PERMISSION = "predictions.view_prediction"


def can_view_all(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.has_perm(VIEW_ALL_PERMISSION))


def prediction_list(
    *,
    user: User | AnonymousUser,
    session_message_ids: Iterable[str] = (),
) -> QuerySet[Prediction]:
    """Predictions this caller may see, newest first.

    Staff with the view permission see all; a signed-in patient sees their own; an
    anonymous caller sees only what their browser session created.
    """
    qs = Prediction.objects.order_by("-created_at", "-id")
    if can_view_all(user):
        return qs
    if user.is_authenticated:
        return qs.filter(owner_id=user.pk)
    ids = list(session_message_ids)
    return qs.filter(message_id__in=ids, owner__isnull=True) if ids else qs.none()


def session_message_ids(session: object) -> list[str]:
    value = getattr(session, "get", lambda *_: None)(SESSION_KEY)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def session_remember(session: object, message_id: str) -> None:
    """Remember a result created by this browser session, newest last, bounded."""
    ids = session_message_ids(session)
    if message_id in ids:
        return  # a replayed upload (Idempotency-Key): remembered once
    ids.append(message_id)
    session[SESSION_KEY] = ids[-SESSION_MAX_RESULTS:]  # type: ignore[index]
