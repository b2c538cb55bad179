"""POST /api/predict with everything a patient, a client or an attacker might send.

Every body is built by hand (tests/security/hostile.py) and sent as raw multipart
bytes, so file names, field names and framing reach Django exactly as written. Each
refusal must be a clean 4xx in the one error shape, store nothing, leak no traceback
and be counted in healthguard_upload_rejections_total; the valid oddities (greyscale
and CMYK JPEGs, 16-bit PNG) must be analysed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from django.test import Client

from devtools.multipart import Part, image_part, multipart
from predictions.models import Prediction
from tests.conftest import flatten_on_skin
from tests.security import hostile

URL = "/api/predict"
pytestmark = pytest.mark.django_db


def post_parts(client: Client, parts: list[Part]):
    body, content_type = multipart(parts)
    return client.generic("POST", URL, body, content_type=content_type)


def assert_refused(response, status: int, codes: set[str] | str) -> dict:
    codes = {codes} if isinstance(codes, str) else codes
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] in codes, body
    assert body["error"]["message"]
    text = response.content.decode()
    assert "Traceback" not in text and 'File "' not in text
    assert Prediction.objects.count() == 0
    return body


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def pixels(real_crop_bytes: bytes) -> np.ndarray:
    return flatten_on_skin(real_crop_bytes)


# --- valid oddities -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "filename", "ctype"),
    [
        (hostile.cmyk_jpeg, b"cmyk.jpg", b"image/jpeg"),
        (hostile.png_16bit, b"deep.png", b"image/png"),
    ],
    ids=["cmyk-jpeg", "16-bit-png"],
)
def test_it_analyses_valid_but_unusual_images(client, real_crop_bytes, builder, filename, ctype):
    data = builder(real_crop_bytes)
    response = post_parts(client, [image_part(data, filename, ctype)])

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["risk_level"] in {"low", "medium", "high"}
    row = Prediction.objects.get(message_id=body["message_id"])
    assert row.image_sha256 == hashlib.sha256(data).hexdigest()


def test_a_16_bit_png_scores_like_its_8_bit_original(client, real_crop_bytes):
    deep = post_parts(client, [image_part(hostile.png_16bit(real_crop_bytes), b"a.png")]).json()
    plain = post_parts(client, [image_part(real_crop_bytes, b"b.png", b"image/png")]).json()
    assert deep["risk_score"] == pytest.approx(plain["risk_score"], abs=0.02)


# --- files that must be refused -------------------------------------------------------


def _over_limit(limit: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + b"\x00" * (limit + 1 - 4)


HOSTILE: dict[str, tuple[Callable[[bytes, np.ndarray], bytes], int, set[str]]] = {
    "zero-byte": (lambda jpeg, px: b"", 400, {"invalid_image"}),
    "one-pixel": (lambda jpeg, px: hostile.tiny_png(), 400, {"invalid_dimensions"}),
    "png-bomb-50000x50000": (lambda jpeg, px: hostile.png_bomb(), 400, {"invalid_dimensions"}),
    "truncated-jpeg": (lambda jpeg, px: hostile.truncated_jpeg(jpeg), 400, {"invalid_image"}),
    "jpeg-corrupt-huffman": (
        lambda jpeg, px: hostile.jpeg_with_corrupt_huffman_table(jpeg),
        400,
        {"invalid_image"},
    ),
    "png-bad-crc": (
        lambda jpeg, px: hostile.png_with_bad_crc(hostile.encode(".png", px)),
        400,
        {"invalid_image"},
    ),
    "gif": (lambda jpeg, px: hostile.gif(), 415, {"unsupported_media_type"}),
    "bmp": (lambda jpeg, px: hostile.bmp(px), 415, {"unsupported_media_type"}),
    "webp": (lambda jpeg, px: hostile.webp(px), 415, {"unsupported_media_type"}),
    "svg-with-script": (lambda jpeg, px: hostile.SVG_WITH_SCRIPT, 415, {"unsupported_media_type"}),
    "pdf": (lambda jpeg, px: hostile.PDF, 415, {"unsupported_media_type"}),
    "html": (lambda jpeg, px: hostile.HTML, 415, {"unsupported_media_type"}),
    "zip-renamed-jpg": (
        lambda jpeg, px: hostile.zip_of("eyelid.jpg", jpeg),
        415,
        {"unsupported_media_type"},
    ),
    "polyglot-jpeg-zip": (
        lambda jpeg, px: hostile.polyglot_jpeg_zip(jpeg),
        415,
        {"unsupported_media_type"},
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_it_refuses_a_hostile_file_cleanly(client, real_jpeg, pixels, rejection_counter, case):
    build, status, codes = HOSTILE[case]
    data = build(real_jpeg, pixels)
    # Whatever the name and declared type claim, the bytes decide.
    response = post_parts(client, [image_part(data, b"eyelid.jpg", b"image/jpeg")])

    assert_refused(response, status, codes)
    assert rejection_counter() == 1


def test_it_refuses_a_file_one_byte_over_5_mb_without_analysing_it(
    client, settings, rejection_counter
):
    assert settings.MAX_UPLOAD_BYTES == 5 * 1024 * 1024
    response = post_parts(client, [image_part(_over_limit(settings.MAX_UPLOAD_BYTES))])

    body = assert_refused(response, 413, "file_too_large")
    assert body["error"]["details"]["max_bytes"] == 5 * 1024 * 1024
    assert rejection_counter() == 1


def test_the_polyglot_is_refused_though_its_jpeg_part_is_valid(client, real_jpeg):
    valid = post_parts(client, [image_part(real_jpeg)])
    assert valid.status_code == 201, valid.content
    Prediction.objects.all().delete()

    response = post_parts(client, [image_part(hostile.polyglot_jpeg_zip(real_jpeg))])
    assert_refused(response, 415, "unsupported_media_type")


# --- names, fields and framing ------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        b"../../../../etc/passwd",
        b"..\\..\\windows\\system32\\eyelid.jpg",
        b"eye\x00lid.jpg",
        b"\x00",
        b"A" * 10_000 + b".jpg",
        b"../" * 3_000 + b"eyelid\x00.jpg",
    ],
    ids=["dot-dot-slash", "dot-dot-backslash", "nul-byte", "only-nul", "10000-chars", "all-of-it"],
)
def test_a_hostile_file_name_changes_nothing(client, real_jpeg, filename, caplog):
    response = post_parts(client, [image_part(real_jpeg, filename)])

    # The name is never used: the image is analysed (or refused for the name alone,
    # cleanly), and the name is stored nowhere and logged nowhere.
    if response.status_code == 201:
        row = Prediction.objects.get()
        assert all(filename.decode("latin-1")[:20] not in str(v) for v in vars(row).values())
    else:
        assert_refused(response, 400, {"missing_image", "malformed_request"})
    assert "etc/passwd" not in caplog.text
    assert "A" * 100 not in caplog.text


def test_it_refuses_a_body_without_the_image_field(client, real_jpeg, rejection_counter):
    response = post_parts(client, [Part(b"photo", real_jpeg, b"eyelid.jpg", b"image/jpeg")])
    assert_refused(response, 400, "missing_image")
    assert rejection_counter() == 1


def test_it_refuses_the_image_sent_as_a_plain_field(client, rejection_counter):
    response = post_parts(client, [Part(b"image", b"\xff\xd8\xff\xe0 not a file")])
    assert_refused(response, 400, "missing_image")
    assert rejection_counter() == 1


def test_it_refuses_two_image_fields_even_when_one_is_valid(client, real_jpeg, rejection_counter):
    response = post_parts(client, [image_part(real_jpeg), image_part(b"", b"second.jpg")])
    body = assert_refused(response, 400, "missing_image")
    assert body["error"]["details"] == {"image_fields_received": 2}
    assert rejection_counter() == 1


@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [
        ("image/jpeg", 415, "unsupported_content_type"),
        ("application/octet-stream", 415, "unsupported_content_type"),
        ("text/plain", 415, "unsupported_content_type"),
        ("application/x-www-form-urlencoded", 415, "unsupported_content_type"),
        ("multipart/form-data", 400, "malformed_request"),
        ("multipart/form-data; boundary=", 400, "malformed_request"),
        # The whole body is read as the preamble of a part that never starts.
        ("multipart/form-data; boundary=nothing-like-the-body", 400, "malformed_request"),
    ],
)
def test_it_refuses_a_wrong_content_type(
    client, real_jpeg, content_type, status, code, rejection_counter
):
    response = client.generic("POST", URL, real_jpeg, content_type=content_type)
    assert_refused(response, status, code)
    assert rejection_counter() == 1


@pytest.mark.parametrize("files", [False, True], ids=["fields", "files"])
def test_it_refuses_a_body_of_10000_parts(client, real_jpeg, files, rejection_counter):
    parts = [image_part(real_jpeg), *hostile.many_parts(10_000, files=files)]
    body, content_type = multipart(parts)
    assert body.count(b"Content-Disposition") == 10_001

    response = client.generic("POST", URL, body, content_type=content_type)
    assert_refused(response, 400, "malformed_request")
    assert rejection_counter() == 1


def test_it_refuses_a_body_whose_framing_never_ends(client, real_jpeg, rejection_counter):
    body, content_type = multipart([image_part(real_jpeg)])
    response = client.generic("POST", URL, body[: len(body) // 2], content_type=content_type)
    assert response.status_code == 400, response.content
    assert_refused(response, 400, {"invalid_image", "malformed_request", "missing_image"})
    assert rejection_counter() == 1


def test_it_ignores_a_declared_image_type_that_lies(client, real_crop_bytes, rejection_counter):
    # A PNG sent as a JPEG with an .exe name is still a PNG: analysed, not refused.
    response = post_parts(
        client, [image_part(real_crop_bytes, b"setup.exe", b"application/x-msdownload")]
    )
    assert response.status_code == 201, response.content
    assert rejection_counter() == 0


def test_a_greyscale_jpeg_is_accepted_as_an_image(client, real_crop_bytes, rejection_counter):
    # A one-component JPEG decodes like any other (not 400 invalid_image, not 415). The
    # automatic segmentation looks for the red of the inner eyelid, which a greyscale
    # photo does not have, so the answer is the clear "no conjunctiva found" 400 unless
    # the model finds one; the masked greyscale PNG below shows grey pixels analysed.
    data = hostile.greyscale_jpeg(real_crop_bytes)
    response = post_parts(client, [image_part(data, b"grey.jpg", b"image/jpeg")])
    if response.status_code != 201:
        assert_refused(response, 400, "no_conjunctiva_found")
    assert rejection_counter() == 0


def test_a_greyscale_image_with_its_outline_is_read_and_judged_washed_out(
    client, real_crop_bytes
):
    # The grey PNG with its alpha outline decodes (not 400 invalid_image, not 415) and its
    # grey pixels reach the photo gate, which refuses them: a grey eyelid has no colour
    # to read anemia from (before the gate, this was scored: 201).
    rgba = cv2.imdecode(np.frombuffer(real_crop_bytes, np.uint8), cv2.IMREAD_UNCHANGED)
    grey = cv2.cvtColor(rgba[:, :, :3], cv2.COLOR_BGR2GRAY)
    grey_alpha = np.dstack([grey, grey, grey, rgba[:, :, 3]])
    response = post_parts(
        client, [image_part(hostile.encode(".png", grey_alpha), b"g.png", b"image/png")]
    )
    assert_refused(response, 422, "photo_quality")
    assert "washed_out" in response.json()["error"]["details"]["reasons"]


# --- what may and may not follow the end of an image ----------------------------------


def _junk(size: int) -> bytes:
    # Like the leftover tail of a file rewritten in place (22 CP-AnemiC crops have one).
    return np.random.default_rng(9).integers(1, 255, size, dtype=np.uint8).tobytes()


@pytest.mark.parametrize(
    "trailer",
    [
        pytest.param(_junk(700), id="leftover-bytes"),
        pytest.param(b"\x00" * 4096, id="zero-padding"),
    ],
)
def test_harmless_bytes_after_a_png_are_allowed(client, real_crop_bytes, trailer):
    response = post_parts(client, [image_part(real_crop_bytes + trailer, b"a.png", b"image/png")])
    assert response.status_code == 201, response.content


def test_a_second_jpeg_after_the_first_is_allowed(client, real_jpeg, pixels):
    # Ultra HDR and MPF photos append a gain map or preview JPEG after the main image.
    gain_map = hostile.encode(".jpg", cv2.resize(pixels, (64, 64)), 1, 80)
    response = post_parts(client, [image_part(real_jpeg + gain_map)])
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda: hostile.zip_of("x.html", hostile.HTML), id="zip"),
        pytest.param(lambda: hostile.PDF, id="pdf"),
        pytest.param(lambda: b"\n<SCRIPT>alert(1)</SCRIPT>", id="script"),
        pytest.param(lambda: b"<?php system($_GET['c']); ?>", id="php"),
        pytest.param(
            lambda: b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode.",
            id="pe-executable",
        ),
        pytest.param(lambda: b"\x7fELF\x02\x01\x01" + b"\x00" * 57, id="elf-executable"),
    ],
)
def test_a_file_hidden_after_a_png_is_refused(client, real_crop_bytes, payload, rejection_counter):
    data = real_crop_bytes + _junk(100) + payload()
    response = post_parts(client, [image_part(data, b"a.png", b"image/png")])
    assert_refused(response, 415, "unsupported_media_type")
    assert rejection_counter() == 1


def test_a_zip_hidden_after_a_second_jpeg_is_refused(client, real_jpeg):
    data = real_jpeg + real_jpeg + hostile.zip_of("x.txt", b"hidden")
    assert_refused(post_parts(client, [image_part(data)]), 415, "unsupported_media_type")


def test_a_png_without_its_end_chunk_is_truncated(client, real_crop_bytes):
    data = real_crop_bytes[: real_crop_bytes.rindex(b"IEND") - 4]
    assert_refused(post_parts(client, [image_part(data, b"a.png")]), 400, "invalid_image")
