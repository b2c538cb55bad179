from __future__ import annotations

import hashlib

import factory
from django.contrib.auth import get_user_model

from predictions.models import Prediction
from predictions.services import message_id_new


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("correct horse battery staple")


class PredictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prediction

    message_id = factory.LazyFunction(message_id_new)
    condition = "anemia"
    site = "conjunctiva"
    image_sha256 = factory.Sequence(lambda n: hashlib.sha256(str(n).encode()).hexdigest())
    risk_score = 0.5
    risk_level = "medium"
    confidence = 0.6
    recommendation = "Get a blood test."
    segmentation = "provided"
    image_size_bytes = 12345
    image_width = 300
    image_height = 200
    processing_time_ms = 5.0
    model_version = "conjunctiva-test"
    request_id = factory.Sequence(lambda n: f"req-{n:08d}")
