"""POST /api/predict refuses what the photo gate (ml/gate.py) will not score: 422, the
reasons and the advice, nothing stored, one count per refusal. The real model and real
crops throughout (no mocks)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile

from ml.gate import CODES, REASONS
from predictions.models import Prediction
from tests.observability.conftest import sample_value, scrape

URL = "/api/predict"
pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str = "photo.png", content_type: str = "image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def png(pixels: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", pixels)
    assert ok
    return buf.tobytes()


def landscape() -> bytes:
    """Sky over grass, with a little noise: a whole photo, no outline."""
    rng = np.random.default_rng(0)
    pixels = np.zeros((300, 400, 3), np.int16)
    pixels[:150] = (235, 180, 120)  # BGR sky
    pixels[150:] = (40, 160, 60)  # grass
    pixels += rng.integers(-20, 20, pixels.shape, dtype=np.int16)
    return png(np.clip(pixels, 0, 255).astype(np.uint8))


def spoiled(crop_png: bytes, *, gain_bgr: tuple[float, float, float]) -> bytes:
    """A real outlined crop under a different light: each colour channel scaled."""
    rgba = cv2.imdecode(np.frombuffer(crop_png, np.uint8), cv2.IMREAD_UNCHANGED)
    out = rgba.astype(np.float32)
    out[..., :3] = np.clip(out[..., :3] * np.asarray(gain_bgr, np.float32), 0, 255)
    return png(out.astype(np.uint8))


def assert_refused(response, code: str) -> dict:
    assert response.status_code == 422, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    error = body["error"]
    assert error["code"] == code
    assert set(error["details"]) == {"reasons", "advice"}
    reasons = error["details"]["reasons"]
    assert reasons and set(reasons) <= set(REASONS)
    assert reasons == [r for r in REASONS if r in reasons]  # stable order
    assert error["details"]["advice"] and error["message"] == error["details"]["advice"]
    return error


def test_it_refuses_a_landscape_as_not_a_conjunctiva(api_client):
    error = assert_refused(
        api_client.post(URL, {"image": upload(landscape())}, format="multipart"),
        "not_a_conjunctiva",
    )
    assert "unlike_training_photos" in error["details"]["reasons"]
    assert "eyelid" in error["details"]["advice"]


def test_it_refuses_a_blown_out_real_crop_as_photo_quality(api_client, real_crop_bytes):
    data = spoiled(real_crop_bytes, gain_bgr=(2.0, 2.0, 2.0))
    error = assert_refused(
        api_client.post(URL, {"image": upload(data)}, format="multipart"), "photo_quality"
    )
    assert {"too_bright", "clipped"} <= set(error["details"]["reasons"])
    assert "flash" in error["details"]["advice"]


def test_it_refuses_a_real_crop_under_a_blue_light_as_a_colour_cast(api_client, real_crop_bytes):
    data = spoiled(real_crop_bytes, gain_bgr=(1.4, 1.0, 0.7))
    error = assert_refused(
        api_client.post(URL, {"image": upload(data)}, format="multipart"), "photo_quality"
    )
    assert "colour_cast" in error["details"]["reasons"]


def test_the_same_real_crop_untouched_is_scored(api_client, real_crop_bytes):
    # The two refusals above come from the light, not from the crop itself.
    response = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart")
    assert response.status_code == 201, response.content


def test_a_refusal_stores_nothing_and_writes_no_audit_entry(api_client, patient):
    api_client.force_authenticate(user=patient)
    entries_before = LogEntry.objects.count()

    response = api_client.post(URL, {"image": upload(landscape())}, format="multipart")

    assert response.status_code == 422
    assert not Prediction.objects.exists()
    assert LogEntry.objects.count() == entries_before


def test_a_refusal_is_counted_once_under_its_code(client, api_client, real_crop_bytes):
    before = scrape(client)
    api_client.post(URL, {"image": upload(landscape())}, format="multipart")
    spoilt = spoiled(real_crop_bytes, gain_bgr=(2.0, 2.0, 2.0))
    api_client.post(URL, {"image": upload(spoilt)}, format="multipart")
    after = scrape(client)

    name = "healthguard_upload_rejections_total"
    for code in ("not_a_conjunctiva", "photo_quality"):
        # One increment per refused photo, labelled with the code, however many reasons.
        assert sample_value(after, name, reason=code) == sample_value(before, name, reason=code) + 1
        errors = "healthguard_api_errors_total"
        labels = {"endpoint": "predict", "code": code}
        assert sample_value(after, errors, **labels) == sample_value(before, errors, **labels) + 1
    for reason in REASONS:  # never a reason as a label value
        assert sample_value(after, name, reason=reason) == 0


def _resolved(schema: dict, node: dict) -> dict:
    """Follow a $ref (or a one-item allOf wrapping one) to the component it names."""
    while True:
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        elif len(node.get("allOf", [])) == 1:
            node = node["allOf"][0]
        else:
            return node


def test_the_schema_documents_the_refusal(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    response = schema["paths"]["/api/predict"]["post"]["responses"]["422"]
    body = _resolved(schema, response["content"]["application/json"]["schema"])
    error = _resolved(schema, body["properties"]["error"])
    assert set(CODES) <= set(_resolved(schema, error["properties"]["code"])["enum"])
    details = _resolved(schema, error["properties"]["details"])
    reasons = _resolved(schema, details["properties"]["reasons"]["items"])
    assert reasons["enum"] == list(REASONS)
    assert details["properties"]["advice"]["type"] == "string"
    assert "not_a_conjunctiva" in response["description"]
