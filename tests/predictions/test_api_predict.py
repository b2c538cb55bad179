"""POST /api/predict, with the real model (no mocks) and real images."""

from __future__ import annotations

import hashlib
import os
import tempfile

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from predictions.models import Prediction
from tests.security.hostile import png_bomb

URL = "/api/predict"
pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str = "eyelid.png", content_type: str = "image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_it_analyses_a_real_masked_crop(api_client, real_crop_bytes):
    response = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["condition"] == "anemia"
    assert body["site"] == "conjunctiva"
    assert body["segmentation"] == "provided"
    assert body["risk_level"] in {"low", "medium", "high"}
    assert 0.0 <= body["risk_score"] <= 1.0
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["recommendation"]
    assert body["message_id"].startswith("pred_") and len(body["message_id"]) >= 25
    assert body["analysis_date"].endswith("Z")
    assert body["model_version"].startswith("conjunctiva-")
    assert body["request_id"] == response["X-Request-ID"]
    assert "not a diagnosis" in body["disclaimer"]
    row = Prediction.objects.get(message_id=body["message_id"])
    assert row.image_sha256 == hashlib.sha256(real_crop_bytes).hexdigest()
    assert row.image_size_bytes == len(real_crop_bytes)
    assert round(row.risk_score, 2) == body["risk_score"]
    assert row.owner is None and row.owner_hash == ""


def test_the_result_has_the_fields_of_the_serializer_in_their_order(api_client, real_crop_bytes):
    from predictions.serializers import PredictionSerializer

    response = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart")
    assert list(response.json()) == PredictionSerializer.Meta.fields
    # The serializer builds only declared fields (PredictionSerializer.get_fields).
    assert set(PredictionSerializer.Meta.fields) <= set(PredictionSerializer._declared_fields)


def test_the_risk_level_follows_the_score_thresholds(api_client, real_crop_bytes):
    body = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart").json()
    row = Prediction.objects.get(message_id=body["message_id"])
    expected = "low" if row.risk_score < 0.3 else "medium" if row.risk_score < 0.7 else "high"
    assert body["risk_level"] == expected


def test_it_segments_an_opaque_jpeg_itself(api_client, real_jpeg_bytes):
    response = api_client.post(
        URL, {"image": upload(real_jpeg_bytes, "photo.jpg", "image/jpeg")}, format="multipart"
    )

    assert response.status_code == 201, response.content
    assert response.json()["segmentation"] == "automatic"


def test_it_gives_the_same_score_for_the_same_image_twice(api_client, real_crop_bytes):
    first = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart").json()
    second = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart").json()
    assert first["risk_score"] == second["risk_score"]
    assert first["message_id"] != second["message_id"]


def test_it_stores_the_owner_as_fk_and_keyed_hash(api_client, patient, real_crop_bytes):
    api_client.force_authenticate(patient)
    body = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart").json()

    row = Prediction.objects.get(message_id=body["message_id"])
    assert row.owner == patient
    assert len(row.owner_hash) == 64
    assert str(patient.pk) != row.owner_hash
    assert hashlib.sha256(str(patient.pk).encode()).hexdigest() != row.owner_hash


def test_it_echoes_a_sane_request_id_and_stores_it(api_client, real_crop_bytes):
    response = api_client.post(
        URL,
        {"image": upload(real_crop_bytes)},
        format="multipart",
        HTTP_X_REQUEST_ID="client-req-12345678",
    )
    assert response["X-Request-ID"] == "client-req-12345678"
    assert response.json()["request_id"] == "client-req-12345678"
    assert Prediction.objects.get().request_id == "client-req-12345678"


def test_it_replaces_an_insane_request_id(api_client, real_crop_bytes):
    response = api_client.post(
        URL,
        {"image": upload(real_crop_bytes)},
        format="multipart",
        HTTP_X_REQUEST_ID="<script>alert(1)</script>",
    )
    assert response["X-Request-ID"] != "<script>alert(1)</script>"
    assert len(response["X-Request-ID"]) == 32


def test_it_reports_server_timings(api_client, real_crop_bytes):
    response = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart")
    stages = {part.split(";")[0].strip() for part in response["Server-Timing"].split(",")}
    # "commit": the request transaction's commit (AtomicUploadMiddleware), database time
    # that would otherwise be counted as Django's.
    assert stages == {"read_hash", "decode", "preprocess", "inference", "database", "commit"}


def test_an_upload_with_an_idempotency_key_has_no_separate_commit_stage(
    api_client, real_crop_bytes
):
    # Not wrapped in the request transaction: the service's own commit is in "database".
    response = api_client.post(
        URL, {"image": upload(real_crop_bytes)}, format="multipart", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert response.status_code == 201
    stages = {part.split(";")[0].strip() for part in response["Server-Timing"].split(",")}
    assert stages == {"read_hash", "decode", "preprocess", "inference", "database"}


def test_an_anonymous_session_can_read_back_its_result(api_client, real_crop_bytes):
    api_client.get("/")  # the page sets the CSRF cookie, as a patient's browser has
    body = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart").json()
    again = api_client.get(f"/api/results/{body['message_id']}")
    assert again.status_code == 200
    assert again.json()["message_id"] == body["message_id"]


def test_a_cookie_less_api_client_creates_no_session(api_client, real_crop_bytes):
    from django.contrib.sessions.models import Session

    response = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart")
    assert response.status_code == 201
    assert Session.objects.count() == 0
    assert "sessionid" not in response.cookies


# --- upload rules: each error is clean, in the one shape, and stores nothing ---------


def test_it_rejects_a_file_over_5_mb_with_413(api_client, settings):
    data = b"\xff\xd8\xff" + b"\x00" * (settings.MAX_UPLOAD_BYTES - 2)
    response = api_client.post(URL, {"image": upload(data, "big.jpg")}, format="multipart")
    assert_error(response, 413, "file_too_large")
    assert Prediction.objects.count() == 0


def test_it_accepts_a_file_of_exactly_the_limit_size_as_far_as_size_goes(api_client, settings):
    data = b"\xff\xd8\xff" + b"\x00" * (settings.MAX_UPLOAD_BYTES - 3)
    response = api_client.post(URL, {"image": upload(data, "big.jpg")}, format="multipart")
    # Not a decodable JPEG, but not refused for its size either.
    assert_error(response, 400, "invalid_image")


def test_it_refuses_a_huge_declared_body_before_reading_it(rf, settings):
    from predictions.exceptions import UploadTooLarge
    from predictions.uploads import LimitedMemoryUploadHandler

    handler = LimitedMemoryUploadHandler()
    with pytest.raises(UploadTooLarge):
        handler.handle_raw_input(None, {}, settings.MAX_UPLOAD_BYTES * 4, b"x")


def _handler_fed(chunks: list[bytes]):
    from predictions.uploads import LimitedMemoryUploadHandler

    handler = LimitedMemoryUploadHandler()
    handler.new_file("image", "eyelid.jpg", "image/jpeg", None)
    start = 0
    for chunk in chunks:
        handler.receive_data_chunk(chunk, start)
        start += len(chunk)
    return handler.file_complete(start)


def test_the_upload_handler_gives_back_the_bytes_sent_in_chunks():
    data = os.urandom(3 * 65536 + 123)
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    uploaded = _handler_fed(chunks)
    assert uploaded.size == len(data)
    assert uploaded.read() == data


def test_reading_an_upload_hands_out_its_buffer_without_copying_it():
    uploaded = _handler_fed([b"\xff\xd8\xff" + b"\x01" * 70000, b"\x02" * 70000])
    first = uploaded.read()
    uploaded.seek(0)
    # The same object twice: read() returns the joined chunks themselves, not a copy.
    assert uploaded.read() is first
    assert len(first) == 140003


def test_the_upload_handler_refuses_a_stream_past_the_limit(settings):
    from predictions.exceptions import UploadTooLarge

    settings.MAX_UPLOAD_BYTES = 100_000
    with pytest.raises(UploadTooLarge):
        _handler_fed([b"\x00" * 65536, b"\x00" * 65536])


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04", "eyelid.png"),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "eyelid.jpg"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "e.png"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40, "eyelid.jpg"),
        (b"BM" + b"\x00" * 60, "eyelid.png"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40, "eyelid.jpg"),
    ],
    ids=["gif", "pdf", "svg", "zip", "bmp", "webp"],
)
def test_it_rejects_non_png_non_jpeg_bytes_with_415(api_client, data, name):
    response = api_client.post(URL, {"image": upload(data, name, "image/png")}, format="multipart")
    assert_error(response, 415, "unsupported_media_type")
    assert Prediction.objects.count() == 0


def test_it_rejects_an_empty_file_with_400(api_client):
    response = api_client.post(URL, {"image": upload(b"", "empty.png")}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid_image", "invalid"}
    assert Prediction.objects.count() == 0


def test_it_rejects_a_truncated_jpeg_with_400(api_client, real_jpeg_bytes):
    data = real_jpeg_bytes[: len(real_jpeg_bytes) // 3]
    response = api_client.post(URL, {"image": upload(data, "t.jpg")}, format="multipart")
    assert_error(response, 400, "invalid_image")
    assert Prediction.objects.count() == 0


def test_it_rejects_a_tiny_image_with_400(api_client):
    ok, buf = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))
    response = api_client.post(URL, {"image": upload(buf.tobytes())}, format="multipart")
    assert_error(response, 400, "invalid_dimensions")


def test_it_rejects_a_decompression_bomb_from_its_header(api_client):
    data = png_bomb(50000, 50000)
    assert len(data) < 5000
    response = api_client.post(URL, {"image": upload(data)}, format="multipart")
    assert_error(response, 400, "invalid_dimensions")
    assert Prediction.objects.count() == 0


def test_it_requires_the_image_field(api_client):
    response = api_client.post(URL, {"photo": upload(b"x")}, format="multipart")
    assert_error(response, 400, "missing_image")


def test_it_refuses_two_image_fields(api_client, real_crop_bytes):
    response = api_client.post(
        URL,
        {"image": [upload(real_crop_bytes), upload(real_crop_bytes, "b.png")]},
        format="multipart",
    )
    assert_error(response, 400, "missing_image")
    assert Prediction.objects.count() == 0


def test_it_refuses_a_json_body(api_client):
    response = api_client.post(URL, {"image": "aGVsbG8="}, format="json")
    assert_error(response, 415, "unsupported_content_type")


def test_it_refuses_an_unknown_site(api_client, real_crop_bytes):
    response = api_client.post(
        URL, {"image": upload(real_crop_bytes), "site": "toenail"}, format="multipart"
    )
    assert_error(response, 400, "unknown_site")
    assert "conjunctiva" in response.json()["error"]["details"]["available_sites"]


def test_get_is_not_allowed(api_client):
    assert_error(api_client.get(URL), 405, "method_not_allowed")


def test_it_throttles_anonymous_posts(api_client, settings, real_crop_bytes):
    from predictions.throttles import PredictAnonThrottle

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "predict_anon": "2/minute"}
    PredictAnonThrottle.THROTTLE_RATES = rates
    try:
        codes = [
            api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart").status_code
            for _ in range(3)
        ]
    finally:
        PredictAnonThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert codes == [201, 201, 429]


# --- privacy: the image never touches disk and never reaches the database ------------


def test_no_upload_is_written_to_the_temp_dir(api_client, settings, tmp_path, monkeypatch):
    # 4 MB is past Django's default in-memory limit (2.5 MB), where its default
    # handlers would spool the upload to a temporary file.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    data = b"\xff\xd8\xff" + os.urandom(4 * 1024 * 1024)
    response = api_client.post(URL, {"image": upload(data, "big.jpg")}, format="multipart")
    assert response.status_code == 400
    assert list(tmp_path.iterdir()) == []


def test_no_image_bytes_reach_the_database(api_client, real_crop_bytes):
    api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM predictions_prediction")
        row = cursor.fetchone()
    needle = real_crop_bytes[100:132]
    for value in row:
        if isinstance(value, bytes | memoryview):
            assert needle not in bytes(value)
        else:
            assert needle.hex() not in str(value)
    sizes = [len(str(v)) for v in row]
    assert max(sizes) < 1000
