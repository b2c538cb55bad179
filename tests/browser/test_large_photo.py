"""A large phone photo: what the page sends stays under the upload limit.

The limit is lowered to 1 MB here so that even a well-compressing outline has to be
shrunk: the page reads the limit from the server's settings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.browser.tracing import png_from_multipart, view_of
from tests.conftest import conjunctiva_images

pytestmark = pytest.mark.browser
LIMIT = 1024 * 1024


@pytest.fixture
def big_photo(tmp_path, settings):
    settings.MAX_UPLOAD_BYTES = LIMIT
    # 12 megapixels of fine detail: a JPEG well over the limit, and a PNG of any large
    # part of it even more so.
    # A real inner eyelid (its texture filled out to the whole frame), so that the photo
    # gate lets the outline through: 12 MP of it with fine grain.
    rgba = cv2.imdecode(
        np.frombuffer(conjunctiva_images()[2].read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED
    )
    inside = rgba[:, :, 3] >= 128
    ys, xs = np.nonzero(inside)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    bgr = np.ascontiguousarray(rgba[box][:, :, :3])
    hole = (~inside[box]).astype(np.uint8) * 255
    bgr = cv2.inpaint(bgr, hole, 5, cv2.INPAINT_TELEA)
    big = cv2.resize(bgr, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(7)
    grain = rng.integers(-10, 11, big.shape)
    pixels = np.clip(big.astype(np.int16) + grain, 0, 255).astype(np.uint8)
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
