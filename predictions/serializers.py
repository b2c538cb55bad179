from __future__ import annotations

from typing import Any

from rest_framework import serializers

from predictions.models import Prediction
from predictions.patient_copy import DISCLAIMER_ENGLISH

# Every result carries the disclaimer, in English (the pages show it translated).
DISCLAIMER = DISCLAIMER_ENGLISH


class PredictionRequestSerializer(serializers.Serializer[Any]):
    """The multipart body of POST /api/predict (used for the schema and the form)."""

    image = serializers.FileField(
        # An empty file is judged with every other bad image (ml.images.read_header), so
        # it gets the same `invalid_image` code and is counted as a refused upload.
        allow_empty_file=True,
        help_text="A PNG or JPEG photo of the inner eyelid, at most 5 MB. A PNG whose alpha "
        "channel outlines the inner eyelid is used as the mask; otherwise the service "
        "segments the image itself."
    )
    site = serializers.CharField(
        required=False, default="conjunctiva", max_length=32, help_text="Body site."
    )


class PredictionSerializer(serializers.ModelSerializer[Prediction]):
    analysis_date = serializers.DateTimeField(source="created_at", read_only=True)
    risk_score = serializers.SerializerMethodField(
        help_text="The model's probability of anemia, rounded to 2 decimals."
    )
    disclaimer = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = [
            "message_id",
            "condition",
            "site",
            "risk_level",
            "risk_score",
            "confidence",
            "recommendation",
            "segmentation",
            "analysis_date",
            "model_version",
            "request_id",
            "image_sha256",
            "disclaimer",
        ]
        read_only_fields = fields

    def get_risk_score(self, obj: Prediction) -> float:
        # Two decimals: the evaluation behind the score does not support more.
        return round(obj.risk_score, 2)

    def get_disclaimer(self, obj: Prediction) -> str:
        return DISCLAIMER
