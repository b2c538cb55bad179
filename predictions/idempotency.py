"""Idempotent uploads: the `Idempotency-Key` header of POST /api/predict (and the form).

A phone on a bad network may lose the answer to an upload the server has already
stored, and send it again. With the same key (and the same upload) the second request
gets the stored result back instead of a second prediction, audit entry and metric
count. The rules, as in the IETF httpapi Idempotency-Key draft and Stripe's API:

  * same key, same upload (SHA-256 of the image and the site): the original result,
    flagged as a replay;
  * same key, a different upload: `IdempotencyKeyReused` (422);
  * same key while the first request is still being analysed: `IdempotencyKeyInFlight`
    (409; try again in a moment).

Keys are scoped to the caller (the user; else the anonymous browser, by its cookies;
else the client address for cookie-less clients), kept KEY_TTL (24 h) and purged with the
predictions retention command (`idempotency_keys_purge`).

Race safety across worker processes comes from the database, not from a lock here: a
claim row is inserted and committed before the work (the unique constraint on
(scope, key) lets exactly one request own the key), and filled with the prediction in
the transaction that stores it. A failed request deletes its claim so the key can be
retried; a claim left behind by a killed worker or a lost database is taken over by a
retry once it is older than IDEMPOTENCY_TAKEOVER_SECONDS. A claim token that changes on
takeover keeps a slow original from filling a claim it no longer owns: its prediction
is rolled back instead, so a key never ends with two rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.request import Request

from predictions import services
from predictions.exceptions import ApplicationError
from predictions.models import IdempotencyKey, Prediction

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_TTL = dt.timedelta(hours=24)
KEY_MAX_LENGTH = 255
# Printable, header-safe characters: UUIDs, ULIDs, base64/base64url tokens all fit.
_KEY_RE = re.compile(rf"[A-Za-z0-9._~:+/=-]{{1,{KEY_MAX_LENGTH}}}")
_POLL_SECONDS = 0.25


class IdempotencyKeyInvalid(ApplicationError):
    code = "idempotency_key_invalid"
    default_message = (
        f"The {HEADER} header must be 1 to {KEY_MAX_LENGTH} characters from "
        "A-Z a-z 0-9 and - _ . : ~ + / = (a UUID is a good key)."
    )


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    default_message = (
        f"This {HEADER} was already used for a different upload. "
        "Use a new key for each photo."
    )


class IdempotencyKeyInFlight(ApplicationError):
    code = "idempotency_key_in_flight"
    default_message = (
        f"An upload with this {HEADER} is still being analysed. "
        "Send it again in a moment to get its result."
    )

    def __init__(self) -> None:
        super().__init__(details={"retry_after_seconds": 1})


def key_parse(value: str | None) -> str | None:
    """The key from the header's value (None when absent); IdempotencyKeyInvalid if bad.

    The draft defines the value as a structured-field string (`"..."`); a bare token,
    as Stripe takes it, is accepted too.
    """
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not _KEY_RE.fullmatch(key):
        raise IdempotencyKeyInvalid(details={"header": HEADER, "max_length": KEY_MAX_LENGTH})
    return key


def caller_scope(request: HttpRequest | Request) -> str:
    """Whose keys these are: the user, else the anonymous browser, else the address.

    The anonymous browser is known by the CSRF cookie our pages set before its first
    upload (so the scope does not change when the first upload creates the session
    that remembers its results), or by its session cookie. Stored as a keyed digest,
    never the raw id, cookie or address. The address is the connection's own
    (REMOTE_ADDR), not a client-supplied X-Forwarded-For.
    """
    user = getattr(request, "user", None)
    browser = request.COOKIES.get(settings.CSRF_COOKIE_NAME) or request.COOKIES.get(
        settings.SESSION_COOKIE_NAME
    )
    if user is not None and user.is_authenticated:
        kind, ident = "user", str(user.pk)
    elif browser:
        kind, ident = "browser", browser
    else:
        kind, ident = "addr", str(request.META.get("REMOTE_ADDR", ""))
    digest = hmac.new(
        settings.OWNER_HASH_KEY.encode(), f"idempotency:{kind}:{ident}".encode(), hashlib.sha256
    ).hexdigest()
    return f"{kind}:{digest}"


def upload_fingerprint(*, image_bytes: bytes, site: str) -> str:
    image_sha256 = hashlib.sha256(image_bytes).hexdigest()
    return hashlib.sha256(f"{site}\n{image_sha256}".encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    pk: int
    token: str


@dataclass(frozen=True)
class Outcome:
    prediction: Prediction
    replayed: bool


def _claim_or_replay(*, scope: str, key: str, fingerprint: str) -> Claim | Prediction:
    """Own the key (a committed claim row) or return the prediction already made for it.

    Raises IdempotencyKeyReused or IdempotencyKeyInFlight.
    """
    takeover_after = dt.timedelta(seconds=settings.IDEMPOTENCY_TAKEOVER_SECONDS)
    for _ in range(5):  # each pass either decides or saw the row change under it
        now = timezone.now()
        token = secrets.token_hex(16)
        try:
            # Committed on its own, before the work: the claim is what other workers see.
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    scope=scope,
                    key=key,
                    fingerprint=fingerprint,
                    claim_token=token,
                    claimed_at=now,
                    created_at=now,
                )
            return Claim(pk=row.pk, token=token)
        except IntegrityError:
            pass
        existing = (
            IdempotencyKey.objects.filter(scope=scope, key=key).select_related("prediction").first()
        )
        if existing is None:
            continue  # released or purged since the insert failed: claim again
        if existing.created_at < now - KEY_TTL:
            # Expired but not purged yet: the key is free again.
            IdempotencyKey.objects.filter(pk=existing.pk, claim_token=existing.claim_token).delete()
            continue
        if not hmac.compare_digest(existing.fingerprint, fingerprint):
            raise IdempotencyKeyReused(details={"header": HEADER})
        if existing.prediction is not None:
            return existing.prediction
        if existing.claimed_at < now - takeover_after:
            # Left behind by a request that died (killed worker, lost database).
            taken = IdempotencyKey.objects.filter(
                pk=existing.pk, claim_token=existing.claim_token, prediction__isnull=True
            ).update(claim_token=token, claimed_at=now)
            if taken:
                return Claim(pk=existing.pk, token=token)
            continue
        raise IdempotencyKeyInFlight()
    raise IdempotencyKeyInFlight()


def _claim_release(claim: Claim) -> None:
    # Best effort: when the database itself is what failed, the claim stays behind
    # and a retry takes it over after the takeover window.
    with contextlib.suppress(DatabaseError):
        IdempotencyKey.objects.filter(
            pk=claim.pk, claim_token=claim.token, prediction__isnull=True
        ).delete()


def prediction_create_once(
    *,
    key: str | None,
    scope: str,
    image_bytes: bytes,
    site: str = services.DEFAULT_SITE,
    owner: User | AnonymousUser | None = None,
    request_id: str = "",
    timings: services.PredictionTimings | None = None,
    wait_seconds: float = 0.0,
) -> Outcome:
    """`services.prediction_create`, at most once per (scope, key).

    Without a key it is exactly prediction_create. `wait_seconds` > 0 waits that long
    for a request in flight with the same key to finish (the no-JavaScript form, where
    a double submit must not end in an error page) before IdempotencyKeyInFlight.
    """
    if key is None:
        prediction = services.prediction_create(
            image_bytes=image_bytes, site=site, owner=owner, request_id=request_id, timings=timings
        )
        return Outcome(prediction=prediction, replayed=False)
    fingerprint = upload_fingerprint(image_bytes=image_bytes, site=site)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            claimed = _claim_or_replay(scope=scope, key=key, fingerprint=fingerprint)
            break
        except IdempotencyKeyInFlight:
            if time.monotonic() + _POLL_SECONDS > deadline:
                raise
            time.sleep(_POLL_SECONDS)
    if isinstance(claimed, Prediction):
        return Outcome(prediction=claimed, replayed=True)

    def fill(prediction: Prediction) -> None:
        filled = IdempotencyKey.objects.filter(
            pk=claimed.pk, claim_token=claimed.token, prediction__isnull=True
        ).update(prediction=prediction)
        if filled != 1:
            # Taken over while this request worked: the other request owns the key now,
            # and raising here rolls this prediction and its audit entry back.
            raise IdempotencyKeyInFlight()

    try:
        prediction = services.prediction_create(
            image_bytes=image_bytes,
            site=site,
            owner=owner,
            request_id=request_id,
            timings=timings,
            in_transaction=fill,
        )
    except BaseException:
        _claim_release(claimed)
        raise
    return Outcome(prediction=prediction, replayed=False)


def idempotency_keys_purge(*, older_than: dt.timedelta = KEY_TTL) -> int:
    """Delete keys older than `older_than` (24 h): called by purge_predictions."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
