"""A large phone photo: what the page sends stays under the upload limit.

The limit is lowered to 1 MB here so that even a well-compressing outline has to be
shrunk: the page reads the limit from the server's settings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.browser.tracing import png_from_multipart, view_of

pytestmark = pytest.mark.browser
LIMIT = 1024 * 1024


@pytest.fixture
def big_photo(tmp_path, settings):
    settings.MAX_UPLOAD_BYTES = LIMIT
    # 12 megapixels of fine detail: a JPEG well over the limit, and a PNG of any large
    # part of it even more so.
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    pixels[:, :, 2] = np.maximum(pixels[:, :, 2], 150)  # reddish, like the eyelid
    path = tmp_path / "big.jpg"
    assert cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, 97])
    assert path.stat().st_size > LIMIT
    return path


def test_a_large_outline_is_downscaled_under_the_limit(new_page, big_photo):
    page = new_page()
    page.goto("/")
    page.set_input_files("#id_image", str(big_photo))
    page.locator("#outline-step").wait_for(state="visible")
    view = view_of(page)
    for x, y in [(300, 300), (3700, 250), (3800, 2700), (2000, 2900), (200, 2600)]:
        page.mouse.click(*view.to_client((x, y)))

    with page.expect_request("**/api/predict") as request_info:
        page.click("#send-outline")
    page.wait_for_url("**/results/pred_*")

    png = png_from_multipart(request_info.value.post_data_buffer)
    assert len(png) <= LIMIT
    rgba = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4
    assert max(rgba.shape[:2]) < 1024  # first capped at 1024 px, then shrunk to fit


def test_a_large_whole_photo_is_reencoded_under_the_limit(new_page, big_photo):
    page = new_page()
    page.goto("/")
    page.set_input_files("#id_image", str(big_photo))
    page.locator("#outline-step").wait_for(state="visible")

    with page.expect_response("**/api/predict") as response_info:
        page.click("#send-whole")

    response = response_info.value
    assert response.status != 413
    body = response.request.post_data_buffer
    assert len(body) <= LIMIT + 1024
    assert b"\xff\xd8\xff" in body  # a JPEG made by the page, not the original file
