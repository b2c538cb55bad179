from __future__ import annotations

import copy
from typing import Any

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ml import gate
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
    message_id = serializers.CharField(
        read_only=True,
        help_text="The result's id (pred_...): GET /api/results/{message_id} reads it again "
        "(the account that made it, staff, or the browser session that made it).",
    )
    condition = serializers.CharField(
        read_only=True, help_text="What was screened for: always `anemia` today."
    )
    site = serializers.CharField(
        read_only=True, help_text="The body site photographed, e.g. `conjunctiva`."
    )
    analysis_date = serializers.DateTimeField(
        source="created_at", read_only=True, help_text="When the analysis ran (ISO 8601, UTC)."
    )
    risk_score = serializers.SerializerMethodField(
        help_text="The model's probability of anemia, 0 to 1, rounded to 2 decimals. Not a "
        "haemoglobin value and not a diagnosis; `risk_level` is what to act on."
    )
    risk_level = serializers.ChoiceField(
        choices=["low", "medium", "high"],
        read_only=True,
        help_text="The score against the model card's thresholds: low, medium or high.",
    )
    confidence = serializers.FloatField(
        read_only=True,
        help_text="NOT the score and not a probability for this photo: how often, on "
        "held-out children, a result at this risk level agreed with the blood test "
        "(defined in the model card). The same for every result of one level and model "
        "version; 0 when the model has no held-out evaluation.",
    )
    recommendation = serializers.SerializerMethodField(
        help_text="What to do next, in plain words, in the language asked for with "
        "Accept-Language (en, fr)."
    )
    segmentation = serializers.ChoiceField(
        choices=["provided", "automatic"],
        read_only=True,
        help_text="`provided`: the PNG's alpha channel outlined the inner eyelid; "
        "`automatic`: the service found it itself (JPEG, or PNG without transparency). "
        "An outline is more reliable.",
    )
    model_version = serializers.CharField(
        read_only=True, help_text="The model that scored the photo (see its model card)."
    )
    request_id = serializers.CharField(
        read_only=True,
        help_text="The X-Request-ID of the upload request: quote it when reporting a problem.",
    )
    image_sha256 = serializers.CharField(
        read_only=True,
        help_text="SHA-256 of the uploaded bytes. The image itself is never stored.",
    )
    disclaimer = serializers.SerializerMethodField(
        help_text="Screening aid, not a diagnosis (in the language asked for)."
    )
    hb_estimate_g_dl = serializers.SerializerMethodField(
        help_text="The model's haemoglobin estimate in g/dL, one decimal; null for results "
        "made by a model without one (conjunctiva-1.0.0). A blood test gives the true value."
    )
    hb_interval_g_dl = serializers.SerializerMethodField(
        help_text="[low, high]: the 90% prediction interval of the haemoglobin estimate in "
        "g/dL (one decimal), checked in cross-validation (see the model card); null for "
        "results made by a model without one."
    )

    class Meta:
        model = Prediction
        fields = [
            "message_id",
            "condition",
            "site",
            "risk_level",
            "risk_score",
            "confidence",
            "hb_estimate_g_dl",
            "hb_interval_g_dl",
            "recommendation",
            "segmentation",
            "analysis_date",
            "model_version",
            "request_id",
            "image_sha256",
            "disclaimer",
        ]
        read_only_fields = fields

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # Every field is declared above, so ModelSerializer's per-instance look at the model
        # (field info, uniqueness rules, building fields) finds nothing to add; it was a
        # third of the cost of serialising one result. Copies of the declared fields, in
        # Meta.fields order, as ModelSerializer would give them.
        declared = copy.deepcopy(self._declared_fields)
        return {name: declared[name] for name in self.Meta.fields}

    def get_risk_score(self, obj: Prediction) -> float:
        # Two decimals: the evaluation behind the score does not support more.
        return round(obj.risk_score, 2)

    def get_recommendation(self, obj: Prediction) -> str:
        # Stored in English (ml/ has no Django); the catalog holds the same English text.
        return gettext(obj.recommendation)

    def get_disclaimer(self, obj: Prediction) -> str:
        return gettext(DISCLAIMER)

    def get_hb_estimate_g_dl(self, obj: Prediction) -> float | None:
        return None if obj.hb_estimate_g_dl is None else round(obj.hb_estimate_g_dl, 1)

    @extend_schema_field(
        {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 2,
            "maxItems": 2,
            "nullable": True,
        }
    )
    def get_hb_interval_g_dl(self, obj: Prediction) -> list[float] | None:
        low, high = obj.hb_interval_low_g_dl, obj.hb_interval_high_g_dl
        if low is None or high is None:
            return None
        return [round(low, 1), round(high, 1)]


# The error shape, for the OpenAPI schema only (predictions.errors renders it).
class ErrorBodySerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="A stable machine-readable code.")
    message = serializers.CharField(help_text="What went wrong, in plain English.")
    details = serializers.JSONField(help_text="Field errors or other details; {} when none.")


class ErrorSerializer(serializers.Serializer[Any]):
    """{"error": {"code", "message", "details"}}: every 4xx and 5xx of the API."""

    error = ErrorBodySerializer()


# The codes of a 422 from POST /api/predict.
REFUSAL_CODES = (*gate.CODES, "malware_detected")


class RefusalDetailsSerializer(serializers.Serializer[Any]):
    reasons = serializers.ListField(
        required=False,
        child=serializers.ChoiceField(choices=list(gate.REASONS)),
        help_text="Why the photo gate refused the photo (photo gate codes only), in a "
        "stable order. mask_too_small/mask_too_thin: the outline; too_dark, too_bright, "
        "clipped, colour_cast, washed_out: the light; no_texture: a flat colour; "
        "outline_needed: the automatic segmentation was unsure, outline the area; "
        "unlike_training_photos: not like the photos the model was trained on.",
    )
    advice = serializers.CharField(
        required=False,
        help_text="How to take a photo that can be analysed, in plain English (the same "
        "words as `message`)."
    )


class RefusalBodySerializer(serializers.Serializer[Any]):
    code = serializers.ChoiceField(
        choices=list(REFUSAL_CODES),
        help_text="not_a_conjunctiva / not_fingernails: the photo is not like the training "
        "photos of the site; photo_quality: the light or the outline is to blame; "
        "malware_detected: the malware scanner flagged the file.",
    )
    message = serializers.CharField()
    details = RefusalDetailsSerializer(
        help_text="For photo gate codes, `reasons` and `advice`; {} for malware_detected."
    )


class RefusalSerializer(serializers.Serializer[Any]):
    """A 422 from POST /api/predict: the upload was read but is not analysed, and nothing
    is stored."""

    error = RefusalBodySerializer()
