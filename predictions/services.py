"""Writes: everything that creates or changes predictions goes through here."""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import DatabaseError, transaction

from ml.images import check_dimensions, check_trailer, decode_image, read_header
from ml.risk import assess_risk
from ops import metrics
from predictions import malware
from predictions.inference import model_get
from predictions.models import Prediction

logger = logging.getLogger(__name__)

DEFAULT_SITE = "conjunctiva"


@dataclass
class PredictionTimings:
    """Milliseconds spent in each stage; sent back in the Server-Timing header."""

    stages: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.stages[stage] = (now - started) * 1000
        return now

    @property
    def total_ms(self) -> float:
        return sum(self.stages.values())


# Predictions counted in this context (a request) whose commit is an outer transaction's:
# AtomicUploadMiddleware counts them as commit failures when its commit fails.
_counted_uncommitted: contextvars.ContextVar[int] = contextvars.ContextVar(
    "counted_uncommitted", default=0
)


def counted_uncommitted_reset() -> contextvars.Token[int]:
    return _counted_uncommitted.set(0)


def counted_uncommitted_restore(token: contextvars.Token[int]) -> None:
    _counted_uncommitted.reset(token)


def counted_uncommitted() -> int:
    return _counted_uncommitted.get()


def message_id_new() -> str:
    """`pred_` and 128 random bits: unguessable, so the id alone reveals nothing."""
    return "pred_" + secrets.token_urlsafe(16)


def owner_hash_for(user_id: int) -> str:
    """Keyed HMAC of a user id: linkable across rows, but not reversible without the key."""
    key = settings.OWNER_HASH_KEY.encode()
    return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()


def prediction_create(
    *,
    image_bytes: bytes,
    site: str = DEFAULT_SITE,
    owner: User | AnonymousUser | None = None,
    request_id: str = "",
    timings: PredictionTimings | None = None,
    in_transaction: Callable[[Prediction], None] | None = None,
) -> Prediction:
    """Analyse one image in memory and store the result (never the image).

    Raises ml.images.ImageError for bad images and predictions.exceptions errors for
    unknown sites or an unloaded model; nothing is stored when anything fails.
    `in_transaction` runs after the row is created, in its transaction: whatever it
    writes is committed with the row, and an exception from it rolls the row back
    (predictions/idempotency.py fills its claim this way).
    """
    timings = timings if timings is not None else PredictionTimings()
    t = time.perf_counter()
    # Bad input is refused from the header alone, before anything else is looked at.
    header = read_header(image_bytes)
    check_dimensions(header)
    check_trailer(image_bytes, header)
    malware.upload_scan(data=image_bytes)
    model = model_get(site=site)
    sha256 = hashlib.sha256(image_bytes).hexdigest()
    t = timings.add("read_hash", t)
    image = decode_image(image_bytes, header)
    t = timings.add("decode", t)
    output = model.predict(image)
    timings.stages["preprocess"] = output.timings_ms.get("preprocess", 0.0)
    timings.stages["inference"] = output.timings_ms.get("inference", 0.0)
    t = time.perf_counter()
    risk = assess_risk(output.probability, card=model.card)

    user = owner if owner is not None and owner.is_authenticated else None
    # Whether the commit is this block's own (not an outer transaction's).
    outermost = not transaction.get_connection().in_atomic_block
    counted = False
    try:
        # One transaction for the row and its audit entry (auditlog's post_save receiver
        # and the hash chain join it): both are stored or neither, and the request waits
        # for one commit (one WAL flush) instead of three.
        with transaction.atomic():
            prediction = Prediction.objects.create(
                message_id=message_id_new(),
                condition=model.card.condition,
                site=site,
                image_sha256=sha256,
                risk_score=output.probability,
                risk_level=risk.level.value,
                confidence=risk.confidence,
                recommendation=risk.recommendation,
                segmentation=output.segmentation,
                owner=user,
                owner_hash=owner_hash_for(user.pk) if user is not None else "",
                image_size_bytes=len(image_bytes),
                image_width=header.width,
                image_height=header.height,
                processing_time_ms=round(timings.total_ms, 3),
                model_version=output.model_version,
                request_id=request_id,
                hb_estimate_g_dl=output.hb_estimate_g_dl,
                hb_interval_low_g_dl=output.hb_interval_g_dl[0],
                hb_interval_high_g_dl=output.hb_interval_g_dl[1],
            )
            if in_transaction is not None:
                in_transaction(prediction)
            # Counted as the last step before the commit, not after it: a worker killed
            # while it waits for the commit's acknowledgement (a WAL flush) has stored the
            # row, and its count must be there too; a commit that fails instead is counted
            # below. (The counted duration thus excludes the commit.)
            timings.add("database", t)
            metrics.prediction_record(prediction=prediction, seconds=timings.total_ms / 1000)
            counted = True
    except DatabaseError:
        # Counted, then the commit failed: nothing is stored (see
        # metrics.PREDICTION_COMMIT_FAILURES). Nested, the outer commit is still to come.
        if counted and outermost:
            metrics.PREDICTION_COMMIT_FAILURES.inc()
        raise
    if not outermost:
        _counted_uncommitted.set(_counted_uncommitted.get() + 1)
    # The database stage of Server-Timing does run to the end of the block (the count
    # above, then the commit when this is the outermost transaction, else the savepoint's
    # release; the request's own commit is then AtomicUploadMiddleware's "commit" stage).
    # Left out, that time would be counted as Django overhead ("rest").
    timings.add("database", t)
    logger.info(
        "prediction stored",
        extra={
            "message_id": prediction.message_id,
            "site": prediction.site,
            "risk_level": prediction.risk_level,
            "model_version": prediction.model_version,
            "segmentation": prediction.segmentation,
            "processing_time_ms": prediction.processing_time_ms,
        },
    )
    return prediction
