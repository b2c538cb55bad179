"""Errors in the browser: said in words in the status region, never as JSON."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from predictions.models import Prediction
from tests.browser.tracing import eyelid_photo

pytestmark = pytest.mark.browser


def assert_said_in_words(status, words: str) -> None:
    text = status.inner_text()
    assert words in text
    assert "{" not in text and "error" not in text.lower().split()
    assert status.get_attribute("role") == "status"
    assert status.get_attribute("aria-live") == "polite"
    assert "status-error" in (status.get_attribute("class") or "")


def test_a_file_that_is_not_an_image_is_refused_in_words(new_page, tmp_path):
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_bytes(b"These are my notes, not a photo.\n" * 20)
    page = new_page()
    page.goto("/")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/predict" in r.url else None)

    page.set_input_files("#id_image", str(not_a_photo))

    status = page.locator("#form-error")
    status.filter(has_text="not a photo").wait_for()
    assert_said_in_words(
        status, "This file is not a photo we can read. Choose a PNG or JPEG photo."
    )
    assert page.locator("#outline-step").is_hidden()
    assert sent == []


def test_the_servers_refusal_is_said_in_words(new_page, tmp_path):
    # Skin and nothing else: the server finds no inner eyelid in the whole photo.
    skin = tmp_path / "skin.jpg"
    cv2.imwrite(str(skin), np.full((600, 800, 3), (140, 170, 215), np.uint8))
    page = new_page()
    page.goto("/")
    page.set_input_files("#id_image", str(skin))
    page.locator("#outline-step").wait_for(state="visible")

    with page.expect_response("**/api/predict") as response_info:
        page.click("#send-whole")

    response = response_info.value
    assert response.status == 400
    assert response.json()["error"]["code"] == "no_conjunctiva_found"
    status = page.locator("#outline-status")
    status.filter(has_text="could not be found").wait_for()
    assert_said_in_words(status, "The inner eyelid could not be found in this photo.")
    assert "Outline it yourself on the photo: that is more reliable." in status.inner_text()
    assert page.locator("#send-whole").is_enabled()  # the patient can try again
    assert Prediction.objects.count() == 0

    # ... or take another photo: back to the pickers, the old photo let go.
    page.click("#retake")
    assert page.locator("#outline-step").is_hidden()
    assert page.evaluate("document.getElementById('id_image').files.length") == 0
    assert page.evaluate("document.activeElement.id") == "id_image"


@pytest.mark.parametrize(
    ("status_code", "body", "content_type", "words"),
    [
        (
            503,
            json.dumps({"error": {"code": "model_unavailable", "message": "x", "details": {}}}),
            "application/json",
            "The service is busy or under maintenance.",
        ),
        (
            429,
            json.dumps({"error": {"code": "throttled", "message": "x", "details": {}}}),
            "application/json",
            "Too many photos were sent in a short time.",
        ),
        (502, "<html><body>Bad gateway</body></html>", "text/html", "busy or under maintenance"),
        (413, "<html><body>Too large</body></html>", "text/html", "larger than 5 MB"),
    ],
    ids=["model-unavailable", "throttled", "proxy-502", "proxy-413"],
)
def test_every_failure_from_the_network_is_said_in_words(
    new_page, tmp_path, status_code, body, content_type, words
):
    # The boundary is the network: a proxy or an outage answers instead of the service.
    photo = eyelid_photo(tmp_path)
    page = new_page()
    page.route(
        "**/api/predict",
        lambda route: route.fulfill(status=status_code, body=body, content_type=content_type),
    )
    page.goto("/")
    page.set_input_files("#id_image", str(photo.path))
    page.locator("#outline-step").wait_for(state="visible")

    page.click("#send-whole")

    status = page.locator("#outline-status")
    status.filter(has_text=words).wait_for()
    assert_said_in_words(status, words)
    assert "Bad gateway" not in page.content()


def test_a_lost_connection_is_said_in_words(new_page, tmp_path):
    photo = eyelid_photo(tmp_path)
    page = new_page()
    page.route("**/api/predict", lambda route: route.abort("internetdisconnected"))
    new_page.problems.expected.append("ERR_INTERNET_DISCONNECTED")
    page.goto("/")
    page.set_input_files("#id_image", str(photo.path))
    page.locator("#outline-step").wait_for(state="visible")

    page.click("#send-whole")

    status = page.locator("#outline-status")
    status.filter(has_text="Check your internet connection").wait_for()
    assert_said_in_words(status, "The photo could not be sent.")
    assert page.locator("#send-whole").is_enabled()
