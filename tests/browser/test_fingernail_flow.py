"""The fingernail flow at 360 px on a touch phone: choose Fingernails, outline each of the
three nails of a real dataset photo, send, and read a result that says Fingernails."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from predictions.models import Prediction
from tests.browser.tracing import png_from_multipart, view_of
from tests.conftest import DATASET_DIR, dataset_available

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
SCREENSHOTS = Path(os.environ.get("HEALTHGUARD_SCREENSHOTS", "artifacts"))


def nail_photo() -> tuple[Path, list[list[int]]]:
    """yakimov_P001 and its three nail boxes, [y_min, x_min, y_max, x_max] (checked by
    drawing them: they sit on the nails)."""
    if not dataset_available():
        raise AssertionError("the anemia dataset is needed (HEALTHGUARD_DATASET_DIR)")
    with (DATASET_DIR / "labels.csv").open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["file"].endswith("yakimov_P001.png"))
    return DATASET_DIR / row["file"], json.loads(row["nail_bboxes"])


def ellipse(box: list[int], n: int = 8) -> list[tuple[float, float]]:
    """n points on the ellipse inside a nail box, in photo pixels (x, y)."""
    y0, x0, y1, x1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * 0.9, (y1 - y0) / 2 * 0.9
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


def test_it_outlines_three_nails_and_shows_a_fingernail_result(new_page, artifacts):
    shots = SCREENSHOTS if SCREENSHOTS.is_absolute() else artifacts
    shots.mkdir(parents=True, exist_ok=True)
    path, boxes = nail_photo()
    page = new_page(**PHONE)
    page.goto("/")

    # The eyelid is the default; the nail instructions show only once chosen.
    assert page.locator("#site-conjunctiva").is_checked()
    assert not page.locator("#howto-nails-title").is_visible()
    page.locator("label[for=site-fingernail]").tap()
    assert page.locator("#site-fingernail").is_checked()
    page.locator("#howto-nails-title").wait_for(state="visible")
    assert not page.locator("#howto-title").is_visible()
    assert "nail polish" in page.locator("#howto-nails-title + .howto").inner_text()
    page.locator("#site-step").screenshot(path=str(shots / "nails-choice-360.png"))

    page.set_input_files("#id_image", str(path))
    page.locator("#outline-step").wait_for(state="visible")
    assert page.locator("#next-nail").is_visible()
    assert not page.locator("#send-whole").is_visible()  # nails must be outlined
    assert page.locator("#nails-whole-hint").is_visible()
    # The three fingertips fill a third of the 800x600 photo: zoom in on them.
    for _ in range(2):
        page.locator("#zoom-in").tap()
    view = view_of(page)
    # Centre the nails: pan so the middle of the three boxes is mid-canvas.
    xs = [(b[1] + b[3]) / 2 for b in boxes]
    ys = [(b[0] + b[2]) / 2 for b in boxes]
    mid = view.to_client((float(np.mean(xs)), float(np.mean(ys))))
    box = page.locator("#outline-canvas").bounding_box()
    start = (box["x"] + box["width"] / 2, box["y"] + box["height"] - 20)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(
        start[0] - (mid[0] - (box["x"] + box["width"] / 2)),
        start[1] - (mid[1] - (box["y"] + box["height"] / 2)),
        steps=8,
    )
    page.mouse.up()
    view = view_of(page)

    placed: list[list[tuple[float, float]]] = []
    for i, nail in enumerate(boxes):
        clicks = [view.to_client(p) for p in ellipse(nail)]
        for client in clicks:
            page.touchscreen.tap(*client)
        placed.append([view.to_image(c) for c in clicks])
        if i < len(boxes) - 1:
            page.locator("#next-nail").tap()
        else:
            page.touchscreen.tap(*clicks[0])  # tapping the first point closes the last nail
    canvas = page.locator("#outline-canvas")
    assert canvas.get_attribute("data-outlines") == "3"
    assert "Nails outlined: 3." in page.locator("#point-count").inner_text()
    page.locator("#outline-step").screenshot(path=str(shots / "nails-outline-360.png"))

    with page.expect_response("**/api/predict") as response_info:
        page.locator("#send-outline").tap()
    response = response_info.value
    assert response.status == 201  # the body is gone once the page moves to the result
    request = response.request
    assert b'name="site"\r\n\r\nfingernail' in request.post_data_buffer
    rgba = cv2.imdecode(
        np.frombuffer(png_from_multipart(request.post_data_buffer), np.uint8), cv2.IMREAD_UNCHANGED
    )
    alpha = rgba[:, :, 3]
    # Three separate opaque areas (one per nail), 255 inside, 0 elsewhere.
    count, _ = cv2.connectedComponents((alpha >= 128).astype(np.uint8))
    assert count - 1 == 3
    assert set(np.unique(alpha)) - set(range(1, 255)) == {0, 255}

    page.wait_for_url("**/results/pred_*")
    message_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.locator("#result-site").inner_text() == "Fingernails"
    assert "the child" not in page.locator(".recommendation").inner_text()
    page.screenshot(path=str(shots / "nails-result-360.png"), full_page=True)
    prediction = Prediction.objects.get(message_id=message_id)
    assert prediction.site == "fingernail"
    assert prediction.segmentation == "provided"
    assert prediction.model_version == "fingernail-1.0.0"
