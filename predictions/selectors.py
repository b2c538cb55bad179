"""Reads: who may see which predictions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

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


def own_prediction_list(
    *,
    user: User | AnonymousUser,
    session_message_ids: Iterable[str] = (),
) -> QuerySet[Prediction]:
    """The caller's own predictions, newest first, whatever their permissions: a
    signed-in user's rows, or an anonymous browser session's. What a patient may label,
    chart and erase (staff included: their view permission is about reading others')."""
    qs = Prediction.objects.order_by("-created_at", "-id")
    if user.is_authenticated:
        return qs.filter(owner_id=user.pk)
    ids = list(session_message_ids)
    return qs.filter(message_id__in=ids, owner__isnull=True) if ids else qs.none()


def session_message_ids(session: object) -> list[str]:
    value = getattr(session, "get", lambda *_: None)(SESSION_KEY)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def session_remember(session: object, message_id: str) -> None:
    """Remember a result created by this browser session, newest last, bounded.

    The session then ends when the browser closes (a cookie without an expiry date): on
    a shared phone the next person does not find the previous child's results.
    """
    ids = session_message_ids(session)
    if message_id in ids:
        return  # a replayed upload (Idempotency-Key): remembered once
    ids.append(message_id)
    session[SESSION_KEY] = ids[-SESSION_MAX_RESULTS:]  # type: ignore[index]
    set_expiry = getattr(session, "set_expiry", None)
    if set_expiry is not None:
        set_expiry(0)


@dataclass(frozen=True)
class HistoryPoint:
    created_at: dt.datetime
    risk_score: float
    risk_level: str
    hb_estimate_g_dl: float | None
    label: str | None


def _has_hb_estimate() -> bool:
    # The Hb estimate arrives with model v2 (issue 13); rows made before have none.
    return any(f.name == "hb_estimate_g_dl" for f in Prediction._meta.get_fields())


def history_series(*, queryset: QuerySet[Prediction], limit: int) -> list[HistoryPoint]:
    """The latest `limit` results of `queryset`, oldest first, for the chart (one query)."""
    fields = ["created_at", "risk_score", "risk_level", "label"]
    has_hb = _has_hb_estimate()
    if has_hb:
        fields.append("hb_estimate_g_dl")
    rows = list(queryset.order_by("-created_at", "-id").values(*fields)[:limit])
    return [
        HistoryPoint(
            created_at=r["created_at"],
            risk_score=r["risk_score"],
            risk_level=r["risk_level"],
            hb_estimate_g_dl=r.get("hb_estimate_g_dl") if has_hb else None,
            label=r["label"],
        )
        for r in reversed(rows)
    ]
