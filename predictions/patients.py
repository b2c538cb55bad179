"""Writes a patient makes about their own results: keep them, label them, erase them.

- `session_results_claim`: at sign-in and sign-up, the results this browser checked
  anonymously become the account's, so the one checked just before signing in is in
  "My results". Each change of owner is an audit entry (UPDATE, the owner fingerprint
  masked, as the creation entry has it), written by the new owner.
- `patient_results_delete`: GDPR erasure. The rows go; the audit trail keeps one
  content-free DELETE entry per row, as the retention purge writes.
- `prediction_label_set`: the optional "who is this for" label. It is not an audited
  field (see predictions.audit.register): a child's first name stays in the patient's
  own row and nowhere else.
- `session_forget`: "forget my results on this device" ends the anonymous session.
"""

from __future__ import annotations

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from predictions import retention, selectors
from predictions.audit.chain import entries_write
from predictions.audit.trail import MASK, entry_build, remote_addr_of
from predictions.models import Prediction
from predictions.services import owner_hash_for

ERASURE_REASON = "erasure requested by the patient"
LABEL_MAX_LENGTH = 40


class LabelInvalid(ValueError):
    """The label is longer than LABEL_MAX_LENGTH characters."""

    code = "label_invalid"


def session_results_claim(*, request: HttpRequest, user: AbstractBaseUser, how: str) -> int:
    """Give the signed-in `user` the anonymous results this browser session checked.

    Only rows still without an owner move (the session lists ids this browser created,
    and a row claimed once stays with its owner). `how` ("sign-in" or "sign-up") is
    recorded in each audit entry. Returns the number of results claimed.
    """
    ids = selectors.session_message_ids(request.session)
    claimed = 0
    if ids:
        with transaction.atomic():
            rows = list(
                Prediction.objects.select_for_update()
                .filter(message_id__in=ids, owner__isnull=True)
                .order_by("pk")
                .values_list("pk", "message_id")
            )
            if rows:
                with disable_auditlog():  # the explicit entries below say who and how
                    Prediction.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                        owner=user, owner_hash=owner_hash_for(int(user.pk))
                    )
                entries_write(entries=_claim_entries(request, user, rows, how))
            claimed = len(rows)
    request.session.pop(selectors.SESSION_KEY, None)
    # A signed-in session lasts as signed-in sessions do, not until the browser closes.
    request.session.set_expiry(None)
    return claimed


def _claim_entries(
    request: HttpRequest, user: AbstractBaseUser, rows: list[tuple[int, str]], how: str
) -> list[LogEntry]:
    content_type = ContentType.objects.get_for_model(Prediction)
    remote = remote_addr_of(request)
    now = timezone.now()
    entries = []
    for pk, message_id in rows:
        entry = entry_build(
            action=LogEntry.Action.UPDATE,
            content_type=content_type,
            object_pk=str(pk),
            object_id=pk,
            object_repr=message_id,
            actor=user,
            remote_addr=remote,
            additional_data={"reason": f"anonymous result claimed at {how}"},
            timestamp=now,
        )
        # The owner fingerprint, masked as in the creation entry; never the raw user id.
        entry.changes = {"owner_hash": ["", MASK]}
        entries.append(entry)
    return entries


def patient_results_delete(*, request: HttpRequest, queryset: QuerySet[Prediction]) -> int:
    """Erase results the caller owns (the caller's `selectors.own_prediction_list`)."""
    deleted = retention.predictions_delete(
        queryset=queryset, reason=ERASURE_REASON, request=request
    )
    if deleted and not request.user.is_authenticated:
        remaining = set(
            Prediction.objects.filter(
                message_id__in=selectors.session_message_ids(request.session)
            ).values_list("message_id", flat=True)
        )
        ids = [i for i in selectors.session_message_ids(request.session) if i in remaining]
        request.session[selectors.SESSION_KEY] = ids
    return deleted


def prediction_label_set(
    *, prediction: Prediction, user: AbstractBaseUser | AnonymousUser, label: str
) -> Prediction:
    """Set or clear (blank) the label of a result its signed-in owner holds."""
    if not user.is_authenticated or prediction.owner_id != user.pk:
        raise PermissionError("only the owner labels a result")
    cleaned = " ".join(label.split())
    if len(cleaned) > LABEL_MAX_LENGTH:
        raise LabelInvalid(f"at most {LABEL_MAX_LENGTH} characters")
    prediction.label = cleaned or None
    prediction.save(update_fields=["label"])
    return prediction


def session_forget(*, session: SessionBase) -> None:
    """End this browser's anonymous session: its results are no longer shown here."""
    session.flush()
