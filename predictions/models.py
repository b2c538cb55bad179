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
