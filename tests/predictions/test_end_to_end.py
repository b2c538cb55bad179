"""End to end through the API with the real model and real labelled images.

For each risk level, an image from the dataset that the model puts at that level is
posted through the API; the stored row, the response and a direct call of the model must
agree. No mocks anywhere.
"""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from ml.images import decode_image
from ml.risk import assess_risk
from ml.runtime import get_registry
from predictions.models import Prediction
from tests.conftest import conjunctiva_images
from tests.optional import unavailable

pytestmark = pytest.mark.django_db


def one_image_per_level() -> dict[str, tuple[bytes, float]]:
    model = get_registry(settings.HEALTHGUARD_MODEL_DIR).get("conjunctiva")
    found: dict[str, tuple[bytes, float]] = {}
    for image in conjunctiva_images():
        data = image.read_bytes()
        score = model.predict(decode_image(data)).probability
        level = assess_risk(score, card=model.card).level.value
        found.setdefault(level, (data, score))
        if len(found) == 3:
            break
    return found


@pytest.fixture(scope="module")
def images_by_level() -> dict[str, tuple[bytes, float]]:
    if not conjunctiva_images():
        unavailable("dataset not found (set HEALTHGUARD_DATASET_DIR)")
    return one_image_per_level()


def test_real_data_reaches_every_risk_level(images_by_level):
    assert set(images_by_level) == {"low", "medium", "high"}


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_each_risk_level_round_trips_through_the_api(api_client, images_by_level, level):
    if level not in images_by_level:
        pytest.fail(f"no image in the dataset reaches {level}")
    data, direct_score = images_by_level[level]
    api_client.get("/")  # a patient's browser holds the CSRF cookie from our page
    response = api_client.post(
        "/api/predict",
        {"image": SimpleUploadedFile("eyelid.png", data, content_type="image/png")},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["risk_level"] == level
    assert body["risk_score"] == round(direct_score, 2)
    row = Prediction.objects.get(message_id=body["message_id"])
    assert row.risk_score == pytest.approx(direct_score, abs=1e-6)
    assert row.image_sha256 == hashlib.sha256(data).hexdigest()
    fetched = api_client.get(f"/api/results/{body['message_id']}").json()
    assert fetched["risk_level"] == level
