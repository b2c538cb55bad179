"""POST /analyse: the upload form without JavaScript, through the same service as the API."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from predictions.exceptions import ModelUnavailable
from predictions.models import Prediction
from predictions.selectors import SESSION_KEY
from tests.pages.conftest import csrf_token_from, logged_in, text_of

pytestmark = pytest.mark.django_db
URL = "/analyse"


def photo(data: bytes, name: str = "eyelid.jpg", content_type: str = "image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def post_photo(client: Client, data: bytes, **kwargs):
    token = csrf_token_from(client)
    return client.post(URL, {"image": photo(data, **kwargs), "csrfmiddlewaretoken": token})


def assert_friendly_error(response, status: int, words: str) -> None:
    assert response.status_code == status
    assert "predictions/home.html" in [t.name for t in response.templates]
    assert response["Content-Type"].startswith("text/html")
    text = text_of(response)
    assert words in text
    assert '"error"' not in text and "Traceback" not in text
    assert "<title>Error: " in response.content.decode()  # read first by screen readers
    assert Prediction.objects.count() == 0


def test_it_analyses_a_whole_photo_and_shows_the_result(client, real_jpeg_bytes):
    response = post_photo(client, real_jpeg_bytes)

    prediction = Prediction.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/results/{prediction.message_id}"
    assert prediction.segmentation == "automatic"
    assert prediction.owner is None
    assert client.session[SESSION_KEY] == [prediction.message_id]
    assert client.get(response["Location"]).status_code == 200


def test_a_signed_in_patient_owns_the_result(patient, real_jpeg_bytes):
    client = logged_in(patient)

    response = post_photo(client, real_jpeg_bytes)

    prediction = Prediction.objects.get()
    assert response.status_code == 302
    assert prediction.owner == patient
    assert SESSION_KEY not in client.session


def test_it_refuses_a_post_without_the_csrf_token(client, real_jpeg_bytes):
    client.get("/")

    response = client.post(URL, {"image": photo(real_jpeg_bytes)})

    assert response.status_code == 403
    assert "403.html" in [t.name for t in response.templates]
    assert Prediction.objects.count() == 0


def test_it_says_when_the_file_is_not_an_image(client):
    response = post_photo(client, b"%PDF-1.4 not a photo", name="eyelid.png")

    assert_friendly_error(response, 415, "This file is not a photo we can read.")
    assert response.context["error_code"] == "unsupported_media_type"


def test_it_says_when_the_photo_is_truncated(client, real_jpeg_bytes):
    response = post_photo(client, real_jpeg_bytes[:200])

    assert_friendly_error(response, 400, "The photo could not be read")


def test_it_says_when_the_photo_is_too_small(client):
    ok, buf = cv2.imencode(".png", np.full((10, 10, 3), 128, np.uint8))
    response = post_photo(client, buf.tobytes(), name="tiny.png", content_type="image/png")

    assert_friendly_error(response, 400, "too small or too large")


def test_it_says_when_the_photo_is_larger_than_the_limit(client, settings):
    settings.MAX_UPLOAD_BYTES = 1024 * 1024

    response = post_photo(client, b"\xff\xd8\xff" + b"\0" * (2 * 1024 * 1024))

    assert_friendly_error(response, 413, "The photo is larger than 1 MB.")


def test_it_asks_for_a_photo_when_none_is_sent(client):
    token = csrf_token_from(client)

    response = client.post(URL, {"csrfmiddlewaretoken": token})

    assert_friendly_error(response, 400, "Choose a photo first.")


def test_it_says_when_the_model_is_not_loaded(client, real_jpeg_bytes, monkeypatch):
    def unavailable(**kwargs):
        raise ModelUnavailable()

    monkeypatch.setattr("predictions.services.model_get", unavailable)

    response = post_photo(client, real_jpeg_bytes)

    assert_friendly_error(response, 503, "Please try again in a few minutes.")


def test_it_says_when_the_database_is_down(client, real_jpeg_bytes, monkeypatch):
    from django.db import OperationalError

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("predictions.services.Prediction.objects.create", down)

    response = post_photo(client, real_jpeg_bytes)

    assert_friendly_error(response, 503, "Please try again in a few minutes.")


def test_it_shares_the_api_throttle(client, settings, real_jpeg_bytes, monkeypatch):
    from predictions.throttles import PredictAnonThrottle

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "predict_anon": "1/minute"}
    monkeypatch.setattr(PredictAnonThrottle, "THROTTLE_RATES", rates)

    assert post_photo(client, real_jpeg_bytes).status_code == 302
    response = post_photo(client, real_jpeg_bytes)

    assert response.status_code == 429
    assert "Wait a minute" in text_of(response)
    assert Prediction.objects.count() == 1


def test_it_speaks_french_when_asked(real_jpeg_bytes):
    client = Client(enforce_csrf_checks=True, headers={"accept-language": "fr"})

    response = post_photo(client, b"GIF89a not a photo", name="x.gif", content_type="image/gif")

    assert response.status_code == 415
    assert "Ce fichier n\u2019est pas une photo" in text_of(response)


def test_a_get_goes_back_to_the_form(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_the_page_and_the_api_give_the_same_answer(client, api_client, real_jpeg_bytes):
    # One service behind both: same image, same score, same segmentation path.
    post_photo(client, real_jpeg_bytes)
    api = api_client.post("/api/predict", {"image": photo(real_jpeg_bytes)}, format="multipart")

    from_page, from_api = Prediction.objects.order_by("id")
    assert api.status_code == 201
    assert from_page.risk_score == pytest.approx(from_api.risk_score)
    assert from_page.risk_level == from_api.risk_level
    assert from_page.segmentation == from_api.segmentation == "automatic"
    assert from_page.image_sha256 == from_api.image_sha256


def _landscape_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    pixels = np.zeros((300, 400, 3), np.int16)
    pixels[:150] = (235, 180, 120)  # BGR sky
    pixels[150:] = (40, 160, 60)  # grass
    pixels += rng.integers(-20, 20, pixels.shape, dtype=np.int16)
    ok, buf = cv2.imencode(".jpg", np.clip(pixels, 0, 255).astype(np.uint8))
    assert ok
    return buf.tobytes()


def test_it_says_in_words_why_the_photo_gate_refused_a_photo(client):
    response = post_photo(client, _landscape_jpeg())

    assert_friendly_error(
        response, 422, "This does not look like a photo of the inside of the lower eyelid"
    )
    assert response.context["error_code"] == "not_a_conjunctiva"
    assert "unlike_training_photos" in response.context["error_reasons"]
    # The reason in words, with how to take a better photo.
    assert "Gently pull the lower eyelid down" in text_of(response)


def test_it_says_when_the_light_spoils_a_real_photo(client, real_jpeg_bytes):
    pixels = cv2.imdecode(np.frombuffer(real_jpeg_bytes, np.uint8), cv2.IMREAD_COLOR)
    dark = (pixels.astype(np.float32) * 0.2).astype(np.uint8)  # a fifth of the light
    ok, buf = cv2.imencode(".jpg", dark)
    assert ok

    response = post_photo(client, buf.tobytes())

    assert_friendly_error(response, 422, "The colour in this photo cannot be read reliably")
    assert response.context["error_code"] == "photo_quality"
    assert "too_dark" in response.context["error_reasons"]
    assert "The photo is too dark." in text_of(response)
