from __future__ import annotations

from django.conf import settings
from django.db import models


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class Segmentation(models.TextChoices):
    PROVIDED = "provided", "Provided (PNG alpha mask)"
    AUTOMATIC = "automatic", "Automatic"


class Prediction(models.Model):
    """What the model said about one uploaded image.

    The image itself is never stored: only its SHA-256, its size and dimensions. The
    owner is kept as a foreign key for access control and as a keyed HMAC
    (`owner_hash`) for analytics and logs that must not carry raw user ids.
    """

    message_id = models.CharField(max_length=40, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    condition = models.CharField(max_length=32)
    site = models.CharField(max_length=32)
    image_sha256 = models.CharField(max_length=64)
    risk_score = models.FloatField()
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices)
    confidence = models.FloatField()
    recommendation = models.TextField()
    segmentation = models.CharField(max_length=16, choices=Segmentation.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="predictions",
    )
    owner_hash = models.CharField(max_length=64, blank=True)
    image_size_bytes = models.PositiveIntegerField()
    image_width = models.PositiveIntegerField()
    image_height = models.PositiveIntegerField()
    processing_time_ms = models.FloatField()
    model_version = models.CharField(max_length=64)
    request_id = models.CharField(max_length=128, blank=True)
    # "Who is this for" (e.g. a child's first name), set by the signed-in owner only.
    # Personal data: not audited, not in the API, not shown to staff in the admin.
    # NULL: never labelled (or cleared), as on every row made before labels existed.
    label = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001
    # Model v2's haemoglobin estimate and its 90% prediction interval; null on rows made
    # by a model without one (conjunctiva-1.0.0).
    hb_estimate_g_dl = models.FloatField(null=True, blank=True)
    hb_interval_low_g_dl = models.FloatField(null=True, blank=True)
    hb_interval_high_g_dl = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="prediction_created_desc"),
            models.Index(fields=["condition"], name="prediction_condition"),
            models.Index(fields=["owner", "-created_at"], name="prediction_owner_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(risk_score__gte=0) & models.Q(risk_score__lte=1),
                name="prediction_risk_score_0_1",
            ),
            models.CheckConstraint(
                condition=models.Q(risk_level__in=RiskLevel.values),
                name="prediction_risk_level_valid",
            ),
        ]

    def __str__(self) -> str:
        # No personal data: this lands in admin pages and audit logs.
        return self.message_id


GENESIS_HASH = "0" * 64

# Who may export the audit log (the admin actions, the API endpoint): compliance officers.
EXPORT_PERMISSION = "predictions.export_auditlog"


class AuditChainState(models.Model):
    """The head of the audit hash chain: a single row (pk=1).

    Linking entries into the chain locks this row (SELECT ... FOR UPDATE), so links
    are made one batch after another and never to the same predecessor. Writers do not
    take it when linking is deferred (predictions/audit/chain.py): only the linker does.
    `base_*` describe where the retained chain starts once old links were purged
    under the retention policy; `key_fingerprint` tells `verify_auditlog` whether the
    HMAC key changed since the chain was started.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    head_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    base_seq = models.BigIntegerField(default=0)
    base_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    key_fingerprint = models.CharField(max_length=16, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        default_permissions = ()
        permissions = [("export_auditlog", "Can export the audit log")]

    def __str__(self) -> str:
        return f"audit chain head #{self.head_seq}"


class AuditChainLink(models.Model):
    """One audit log entry's place in the tamper-evident chain.

    Written in the entry's own transaction with its `seal` (an HMAC of the entry's
    content and actor: only the application, which holds the key, can write one).
    `seq`, `prev_hash` and `hash` (the HMAC of the content and of the previous link's
    hash) are filled in when the entry is linked: at once when linking is inline, within
    about a second by the linker when it is deferred. Until then `seq` is NULL.

    `entry_id` is a plain integer, not a foreign key, on purpose: when an entry is
    deleted behind the application's back its link stays behind as evidence. The
    actor id is kept as written, so that an actor later set to NULL by the deletion
    of a user account still verifies (and a NULL set by hand does not).
    """

    entry_id = models.BigIntegerField(primary_key=True)
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    seal = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        default_permissions = ()
        ordering = ["seq"]
        indexes = [
            # The linker's queue: the entries not linked yet (a handful at any time).
            models.Index(
                fields=["entry_id"],
                name="audit_link_pending",
                condition=models.Q(seq__isnull=True),
            )
        ]

    def __str__(self) -> str:
        if self.seq is None:
            return f"audit chain link for entry {self.entry_id} (not linked yet)"
        return f"audit chain link #{self.seq}"


class IdempotencyKey(models.Model):
    """One caller's `Idempotency-Key` for one upload (predictions/idempotency.py).

    Inserted (and committed) as a claim before the upload is analysed, and filled with
    the prediction in the same transaction that stores it, so a retry with the same key
    finds either the result (a replay) or a claim still in flight. The unique
    constraint on (scope, key) is what makes two concurrent requests, in any workers,
    agree on one owner. `scope` is a keyed digest of the caller (user, session or
    address), never the raw identifier; `fingerprint` is the SHA-256 of the upload (the
    image and the site). `claim_token` changes when a stale claim is taken over, so a
    request that lost its claim cannot fill it.
    """

    scope = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    claim_token = models.CharField(max_length=32)
    claimed_at = models.DateTimeField()
    created_at = models.DateTimeField()
    prediction = models.OneToOneField(
        Prediction,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="idempotency_key",
    )

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        # The key is the caller's own token, not personal data; the scope is a digest.
        return f"idempotency key #{self.pk}"
