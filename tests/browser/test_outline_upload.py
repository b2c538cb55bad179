"""The upload page in a real browser: trace the inner eyelid, upload, see the result."""

from __future__ import annotations

import hashlib
import math

import cv2
import numpy as np
import pytest

from predictions.models import Prediction
from tests.browser.tracing import (
    drag,
    eyelid_photo,
    iou,
    outline_of,
    png_from_multipart,
    rasterise,
    trace,
    view_of,
)

pytestmark = pytest.mark.browser


def test_it_uploads_the_traced_outline_and_shows_the_result(new_page, tmp_path, artifacts):
    photo = eyelid_photo(tmp_path)
    page = new_page()
    response = page.goto("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]

    page.set_input_files("#id_image", str(photo.path))
    page.locator("#outline-step").wait_for(state="visible")
    page.click("#zoom-in")  # the crescent sits in the middle: zoom in on it
    polygon = outline_of(photo.mask)

    # A stray point, then undo.
    view = view_of(page)
    page.mouse.click(view.left + 10, view.top + 10)
    assert page.locator("#outline-canvas").get_attribute("data-points") == "1"
    page.click("#undo-point")
    assert page.locator("#outline-canvas").get_attribute("data-points") == "0"

    # The first point placed 40 px outside the outline, then dragged where it belongs.
    view = view_of(page)  # clicking Undo may have scrolled the page
    first_client = view.to_client(polygon[0])
    centre = view.to_client(tuple(np.mean(polygon, axis=0)))
    away = math.atan2(first_client[1] - centre[1], first_client[0] - centre[0])
    wrong = (
        first_client[0] + round(40 * math.cos(away)),
        first_client[1] + round(40 * math.sin(away)),
    )
    page.mouse.click(*wrong)
    placed = trace(page, polygon[1:], avoid=(wrong, first_client))
    assert view_of(page) == view
    drag(page, wrong, first_client)
    placed = [view.to_image(first_client), *placed]
    assert page.locator("#outline-canvas").get_attribute("data-points") == str(len(placed))
    assert len(placed) >= 8
    page.locator("#outline-step").screenshot(path=str(artifacts / "outline-800.png"))

    with page.expect_request("**/api/predict") as request_info:
        page.click("#send-outline")
    page.wait_for_url("**/results/pred_*")

    # What was sent: a PNG of the outline's bounding box, transparent outside it.
    request = request_info.value
    assert request.method == "POST"
    assert request.headers.get("x-csrftoken")
    png = png_from_multipart(request.post_data_buffer)
    assert len(png) < 5 * 1024 * 1024
    rgba = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert rgba is not None and rgba.ndim == 3 and rgba.shape[2] == 4
    height, width = rgba.shape[:2]
    xs = [p[0] for p in placed]
    ys = [p[1] for p in placed]
    x0, y0 = math.floor(min(xs)), math.floor(min(ys))
    box_w, box_h = math.ceil(max(xs)) - x0, math.ceil(max(ys)) - y0
    assert abs(width / height - box_w / box_h) < 0.02
    sx, sy = width / box_w, height / box_h
    expected = rasterise([((x - x0) * sx, (y - y0) * sy) for x, y in placed], (width, height))
    sent = rgba[:, :, 3] >= 128
    assert iou(sent, expected) > 0.9
    # Outside the polygon (past its anti-aliased edge) everything is fully transparent.
    near = cv2.dilate(expected.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert (~near).sum() > 0.2 * width * height
    assert rgba[~near][:, 3].max() == 0
    # And it is the eyelid that was traced: close to the crop's own mask.
    crop = photo.mask[y0 : y0 + box_h, x0 : x0 + box_w].astype(np.uint8) * 255
    truth = np.asarray(cv2.resize(crop, (width, height), interpolation=cv2.INTER_NEAREST)) > 0
    assert iou(sent, truth) > 0.8

    # The result page.
    prediction = Prediction.objects.get()
    assert prediction.segmentation == "provided"
    assert page.url.endswith(f"/results/{prediction.message_id}")
    assert page.locator("h1").inner_text() == "Your result"
    badge = page.locator(".risk-badge").inner_text()
    assert badge in {"Low risk", "Medium risk", "High risk"}
    assert f"{prediction.risk_score:.2f}" in page.locator(".score").inner_text()
    assert "blood test" in page.locator(".recommendation").inner_text()
    assert prediction.model_version in page.content()

    # The anonymous session that made it finds it in its history.
    page.click("text=My results")
    assert page.locator(".history-item").count() == 1


def test_it_can_send_the_whole_photo_for_automatic_segmentation(new_page, tmp_path):
    photo = eyelid_photo(tmp_path, index=3)
    page = new_page()
    page.goto("/")
    page.set_input_files("#id_image", str(photo.path))
    page.locator("#outline-step").wait_for(state="visible")

    with page.expect_request("**/api/predict") as request_info:
        page.click("#send-whole")
    page.wait_for_url("**/results/pred_*")

    # Chromium does not report a file's bytes in the request: compare fingerprints.
    assert b'filename="eyelid.jpg"' in request_info.value.post_data_buffer
    prediction = Prediction.objects.get()
    assert prediction.image_sha256 == hashlib.sha256(photo.path.read_bytes()).hexdigest()
    assert prediction.segmentation == "automatic"


def test_it_asks_for_three_points_before_sending(new_page, tmp_path):
    photo = eyelid_photo(tmp_path)
    page = new_page()
    page.goto("/")
    page.set_input_files("#id_image", str(photo.path))
    page.locator("#outline-step").wait_for(state="visible")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/predict" in r.url else None)

    page.click("#send-outline")

    status = page.locator("#outline-status")
    assert "Place at least 3 points" in status.inner_text()
    assert status.get_attribute("role") == "status"
    assert sent == []


def test_without_javascript_the_form_posts_the_whole_photo(new_page, tmp_path):
    photo = eyelid_photo(tmp_path, index=3)
    page = new_page(java_script_enabled=False)
    page.goto("/")
    assert page.locator("#outline-step").is_hidden()

    page.set_input_files("#id_image", str(photo.path))
    page.click("#upload-submit")

    page.wait_for_url("**/results/pred_*")
    assert page.locator("h1").inner_text() == "Your result", page.content()
    assert Prediction.objects.get().segmentation == "automatic"
