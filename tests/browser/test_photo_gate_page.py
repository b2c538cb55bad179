"""The patient page and the photo gate: a good-photo example, refusals said in words with a
way to retake, points placed by finger and by keyboard, a downsized whole photo, and the
result page's picture of what was analysed (from this browser only).

Refusals here are answered at the network boundary (page.route) in the API's error shape
(422, code and details.reasons/advice), so that the page is tested for every reason the
gate can give; the real server's 400 is exercised in test_errors.py.
"""

from __future__ import annotations

import base64
import json
import math
from itertools import pairwise
from typing import Any

import cv2
import numpy as np
import pytest

from predictions.models import Prediction
from tests.browser.tracing import eyelid_photo, outline_of, trace, view_of

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
FOCUSED_ID = "document.activeElement && document.activeElement.id"


def refusal(code: str, reasons: list[str], advice: str = "Take it again in daylight.") -> str:
    return json.dumps(
        {
            "error": {
                "code": code,
                "message": "The photo was refused.",
                "details": {"reasons": reasons, "advice": advice},
            }
        }
    )


def points(page: Any) -> int:
    return int(page.locator("#outline-canvas").get_attribute("data-points"))


def outline(page: Any) -> list[list[float]]:
    return json.loads(page.locator("#outline-canvas").get_attribute("data-outline"))


def open_photo(page: Any, path: Any) -> None:
    page.set_input_files("#id_image", str(path))
    page.locator("#outline-step").wait_for(state="visible")


def resample(polygon: list[tuple[float, float]], n: int) -> list[tuple[float, float]]:
    """n points evenly spaced along the closed polygon's perimeter."""
    closed = [*polygon, polygon[0]]
    lengths = [math.dist(a, b) for a, b in pairwise(closed)]
    total = sum(lengths)
    out = []
    for k in range(n):
        target = total * k / n
        for (a, b), length in zip(pairwise(closed), lengths, strict=True):
            if target <= length:
                t = target / length if length else 0.0
                out.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
                break
            target -= length
    return out


def jpeg_from_multipart(body: bytes) -> bytes:
    start = body.index(b"\xff\xd8\xff")
    end = body.index(b"\xff\xd9", len(body) - 200) + 2  # the part ends near the body's end
    return body[start:end]


def test_a_refusal_is_said_with_its_reasons_and_take_another_photo_starts_again(
    new_page, tmp_path, artifacts
):
    photo = eyelid_photo(tmp_path)
    page = new_page(**PHONE)
    page.route(
        "**/api/predict",
        lambda route: route.fulfill(
            status=422,
            body=refusal("photo_quality", ["too_dark", "colour_cast"]),
            content_type="application/json",
        ),
    )
    page.goto("/")
    open_photo(page, photo.path)

    page.click("#send-whole")

    status = page.locator("#outline-status")
    status.filter(has_text="not good enough").wait_for()
    text = status.inner_text()
    assert "The light in this photo is not good enough to read the colour" in text
    assert "The photo is too dark. Take it in daylight, near a window." in text
    assert "The light is strongly coloured" in text
    assert "Nothing from this photo was kept." in text
    assert "{" not in text and "too_dark" not in text
    assert status.get_attribute("role") == "status"
    assert page.evaluate(FOCUSED_ID) == "outline-status"
    assert page.locator("#retake").is_visible()
    assert page.locator("#reoutline").inner_text() == "Outline the inner eyelid instead"
    page.screenshot(path=str(artifacts / "refusal-360.png"), full_page=True)

    page.click("#retake")

    assert page.locator("#outline-step").is_hidden()
    assert page.evaluate(
        "Array.from(document.querySelectorAll('input[type=file]')).every(i => !i.files.length)"
    )
    # On a phone the first picker is the camera: focus lands on it, ready to press.
    assert page.evaluate(FOCUSED_ID) == "id_image_camera"
    retake = page.locator("#form-error").inner_text()
    assert "Take or choose another photo" in retake
    assert "The photo is too dark" in retake
    assert page.locator("html").get_attribute("lang") == "en"

    # The next photo opens a fresh outline step, with no trace of the refusal.
    page.unroute("**/api/predict")
    open_photo(page, photo.path)
    assert points(page) == 0
    assert page.locator("#refusal").is_hidden()
    assert page.locator("#outline-status").inner_text() != text
    page.click("#send-whole")
    page.wait_for_url("**/results/pred_*")
    assert Prediction.objects.count() == 1


def test_a_reason_new_to_the_page_falls_back_to_the_servers_advice(new_page, tmp_path):
    page = new_page()
    page.route(
        "**/api/predict",
        lambda route: route.fulfill(
            status=422,
            body=refusal("not_a_conjunctiva", ["a_reason_from_the_future"], "Plain advice."),
            content_type="application/json",
        ),
    )
    page.goto("/")
    open_photo(page, eyelid_photo(tmp_path).path)
    view = view_of(page)
    for x, y in [(200, 200), (400, 220), (300, 400)]:
        page.mouse.click(view.left + x, view.top + y)

    page.click("#send-outline")

    status = page.locator("#outline-status")
    status.filter(has_text="Plain advice.").wait_for()
    assert "does not look like the inside of a lower eyelid" in status.inner_text()
    assert page.locator("#reoutline").inner_text() == "Change the outline"
    page.click("#reoutline")
    assert page.evaluate(FOCUSED_ID) == "outline-canvas"
    assert points(page) == 3  # the outline is still there to correct
    assert page.locator("#refusal").is_hidden()


def test_twelve_taps_at_the_default_zoom_on_a_360_px_phone_place_twelve_points(
    new_page, tmp_path, artifacts
):
    photo = eyelid_photo(tmp_path)
    page = new_page(**PHONE)
    page.goto("/")
    open_photo(page, photo.path)
    page.locator("#outline-canvas").scroll_into_view_if_needed()
    view = view_of(page)
    taps = [view.to_client(p) for p in resample(outline_of(photo.mask), 12)]
    # At the default zoom the eyelid is small: neighbouring taps are close together.
    assert min(math.dist(a, b) for a, b in zip(taps, [*taps[1:], taps[0]], strict=False)) < 18

    for tap in taps:
        page.touchscreen.tap(*tap)

    assert points(page) == 12
    assert view_of(page) == view  # no tap became a pan
    placed = outline(page)
    for tap, point in zip(taps, placed, strict=True):
        assert math.dist(view.to_client((point[0], point[1])), tap) <= 1.5
    page.locator("#outline-step").screenshot(path=str(artifacts / "outline-12-taps-360.png"))


def test_a_press_and_drag_near_a_point_still_moves_it(new_page, tmp_path):
    page = new_page()
    page.goto("/")
    open_photo(page, eyelid_photo(tmp_path).path)
    view = view_of(page)
    first = (round(view.left + 300), round(view.top + 300))
    page.mouse.click(*first)
    page.mouse.click(first[0] + 12, first[1])  # close by: a tap still adds a point

    page.mouse.move(first[0] - 2, first[1] + 1)
    page.mouse.down()
    page.mouse.move(first[0] - 40, first[1] + 30, steps=5)
    page.mouse.up()

    assert points(page) == 2
    moved = view.to_client((outline(page)[0][0], outline(page)[0][1]))
    assert math.dist(moved, (first[0] - 38, first[1] + 29)) <= 2
    assert view_of(page) == view


def test_the_keyboard_places_and_moves_points_at_the_crosshair(new_page, tmp_path):
    page = new_page()
    page.goto("/")
    open_photo(page, eyelid_photo(tmp_path).path)
    page.focus("#outline-canvas")
    start = view_of(page)
    box = page.locator("#outline-canvas").bounding_box()
    centre = (box["width"] / 2, box["height"] / 2)

    def under_cross() -> tuple[float, float]:
        v = view_of(page)
        return ((centre[0] - v.ox) / v.scale, (centre[1] - v.oy) / v.scale)

    page.keyboard.press("Enter")
    first = under_cross()
    for _ in range(2):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Enter")
    third = under_cross()

    assert points(page) == 3
    placed = outline(page)
    assert placed[0] == pytest.approx(first, abs=1)
    assert placed[2] == pytest.approx(third, abs=1)
    assert placed[1][0] - placed[0][0] == pytest.approx(80 / start.scale, abs=0.2)
    assert "Points placed: 3" in page.locator("#outline-status").inner_text()

    # N brings point 1 under the cross; Space picks it up, the arrows carry it, Enter
    # puts it down; Escape would have put it back.
    page.keyboard.press("n")
    assert "Point 1 of 3 is under the cross" in page.locator("#outline-status").inner_text()
    page.keyboard.press(" ")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    assert points(page) == 3
    after = outline(page)
    assert after[0][1] == pytest.approx(placed[0][1] - 40 / start.scale, abs=0.2)
    assert after[1:] == placed[1:]
    page.keyboard.press("n")
    page.keyboard.press(" ")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Escape")
    assert outline(page) == after
    page.keyboard.press("Backspace")  # undoes the last change: the move of point 1
    assert outline(page) == placed


def test_analyse_in_step_one_keeps_the_outline(new_page, tmp_path):
    page = new_page()
    page.goto("/")
    open_photo(page, eyelid_photo(tmp_path).path)
    view = view_of(page)
    for x, y in [(200, 200), (400, 220), (380, 400), (220, 380)]:
        page.mouse.click(view.left + x, view.top + y)
    before = outline(page)

    page.click("#upload-submit")

    assert outline(page) == before
    assert page.locator("#outline-step").is_visible()
    assert page.evaluate(FOCUSED_ID) == "outline-title"
    assert "Your outline is kept" in page.locator("#outline-status").inner_text()


def test_the_whole_photo_is_downsized_in_the_browser_before_upload(new_page, tmp_path):
    photo = eyelid_photo(tmp_path, index=3)
    # A phone camera's 12 megapixels of the same scene.
    big = cv2.resize(cv2.imread(str(photo.path)), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "phone.jpg"
    assert cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    page = new_page()
    page.goto("/")
    open_photo(page, path)

    with page.expect_request("**/api/predict") as request_info:
        page.click("#send-whole")
    page.wait_for_url("**/results/pred_*")

    body = request_info.value.post_data_buffer
    assert b'filename="photo.jpg"' in body
    sent = cv2.imdecode(np.frombuffer(jpeg_from_multipart(body), np.uint8), cv2.IMREAD_COLOR)
    assert sent is not None
    assert (sent.shape[1], sent.shape[0]) == (1600, 1200)
    assert len(body) < path.stat().st_size / 2
    assert Prediction.objects.get().segmentation == "automatic"


def test_the_result_page_shows_exactly_the_outlined_area_from_this_browser_only(
    new_page, tmp_path, artifacts
):
    page = new_page()
    page.goto("/")
    photo = eyelid_photo(tmp_path)
    open_photo(page, photo.path)
    # The eyelid itself is traced: the photo gate refuses an outline on the skin.
    trace(page, outline_of(photo.mask))
    with page.expect_request("**/api/predict") as request_info:
        page.click("#send-outline")
    page.wait_for_url("**/results/pred_*")

    image = page.locator("#analysed-image")
    image.wait_for(state="visible")
    assert (
        "Exactly this part of the photo was analysed."
        in page.locator("#analysed-area figcaption").inner_text()
    )
    src = image.get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    thumb = cv2.imdecode(
        np.frombuffer(base64.b64decode(src.split(",", 1)[1]), np.uint8), cv2.IMREAD_UNCHANGED
    )
    assert thumb.shape[2] == 4 and max(thumb.shape[:2]) <= 320
    assert thumb[:, :, 3].min() == 0 and thumb[:, :, 3].max() == 255  # outside is transparent
    sent = request_info.value.post_data_buffer
    # The upload itself and the chosen body site, nothing more (no thumbnail).
    assert sent.count(b"Content-Disposition") == 2
    assert sent.count(b"filename=") == 1
    assert b'name="site"\r\n\r\nconjunctiva\r\n' in sent
    # The server's page has no picture in it: it comes from this tab's storage.
    served = page.request.get(page.url).text()
    assert "data:image" not in served
    assert 'id="automatic-note"' not in served
    page.screenshot(path=str(artifacts / "result-outline-800.png"), full_page=True)

    # Another tab (a new session storage) of the same browser shows no picture.
    other = page.context.new_page()
    other.goto(page.url)
    assert other.locator("h1").inner_text() == "Your result"
    assert other.locator("#analysed-area").is_hidden()


def test_an_automatic_result_says_an_outline_is_more_reliable(new_page, tmp_path, artifacts):
    page = new_page()
    page.goto("/")
    open_photo(page, eyelid_photo(tmp_path, index=3).path)

    page.click("#send-whole")
    page.wait_for_url("**/results/pred_*")

    note = page.locator("#automatic-note")
    assert "outline you draw yourself" in note.inner_text()
    assert "more reliable" in note.inner_text()
    page.locator("#analysed-image").wait_for(state="visible")
    assert "The photo you sent" in page.locator("#analysed-area figcaption").inner_text()
    page.screenshot(path=str(artifacts / "gate-result-automatic-800.png"), full_page=True)


def test_the_whole_photo_is_offered_below_the_outline_as_a_fallback(new_page, tmp_path):
    page = new_page()
    page.goto("/")
    open_photo(page, eyelid_photo(tmp_path).path)

    outline_button = page.locator("#send-outline")
    whole_button = page.locator("#send-whole")
    assert "button-primary" in (outline_button.get_attribute("class") or "")
    assert "button-primary" not in (whole_button.get_attribute("class") or "")
    assert whole_button.bounding_box()["y"] > outline_button.bounding_box()["y"]
    hint = page.locator("#" + whole_button.get_attribute("aria-describedby"))
    assert "less reliable" in hint.inner_text()
    assert page.locator(".howto img").first.is_visible()


@pytest.mark.parametrize(
    ("device", "camera_shown", "drop_hint_shown"),
    [(PHONE, True, False), (DESKTOP, False, True)],
    ids=["phone-360", "desktop-1280"],
)
def test_the_phone_can_take_or_choose_a_photo_and_only_a_mouse_is_offered_dropping(
    new_page, tmp_path, device, camera_shown, drop_hint_shown
):
    page = new_page(**device)
    page.goto("/")

    assert page.locator("label[for=id_image_camera]").is_visible() is camera_shown
    assert page.locator("label[for=id_image]").is_visible()
    assert page.locator("#id_image_camera").get_attribute("capture") == "environment"
    assert page.locator("#id_image").get_attribute("capture") is None
    assert page.locator(".drop-hint").is_visible() is drop_hint_shown

    # Choosing with one picker lets go of the other's photo: one photo is sent.
    photo = eyelid_photo(tmp_path).path
    page.set_input_files("#id_image_camera", str(photo))
    page.locator("#outline-step").wait_for(state="visible")
    page.set_input_files("#id_image", str(photo))
    assert page.evaluate("document.getElementById('id_image_camera').files.length") == 0


@pytest.mark.parametrize(
    ("device", "width"), [(PHONE, 360), (DESKTOP, 1280)], ids=["phone-360", "desktop-1280"]
)
def test_the_gate_screens_fit_the_width_and_are_kept_as_screenshots(
    new_page, tmp_path, artifacts, device, width
):
    photo = eyelid_photo(tmp_path)
    page = new_page(**device)
    page.goto("/")

    def shot(name: str) -> None:
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{name} is {scroll_width} px wide at {width} px"
        if width > 360:
            page.screenshot(path=str(artifacts / f"gate-{name}-{width}.png"), full_page=True)
            return
        # A full-page capture drops Chromium's touch emulation (hover: none no longer
        # matches): on the phone, each section is captured on its own instead.
        for index, section in enumerate(page.locator("main > section:visible").all()):
            section.screenshot(path=str(artifacts / f"gate-{name}-{width}-{index}.png"))

    shot("home")
    open_photo(page, photo.path)
    page.click("#zoom-in")
    page.locator("#outline-canvas").scroll_into_view_if_needed()
    view = view_of(page)
    for p in resample(outline_of(photo.mask), 12):
        page.mouse.click(*view.to_client(p))
    page.locator("#outline-step").screenshot(path=str(artifacts / f"gate-outline-{width}.png"))

    page.route(
        "**/api/predict",
        lambda route: route.fulfill(
            status=422,
            body=refusal("not_a_conjunctiva", ["unlike_training_photos", "mask_too_small"]),
            content_type="application/json",
        ),
    )
    page.click("#send-outline")
    page.locator("#outline-status").filter(has_text="does not look like").wait_for()
    page.locator("#outline-step").screenshot(path=str(artifacts / f"gate-refusal-{width}.png"))
    page.click("#retake")
    page.locator("#check").screenshot(path=str(artifacts / f"gate-retake-{width}.png"))

    page.unroute("**/api/predict")
    open_photo(page, photo.path)
    page.click("#zoom-in")
    page.locator("#outline-canvas").scroll_into_view_if_needed()
    view = view_of(page)
    for p in resample(outline_of(photo.mask), 12):
        page.mouse.click(*view.to_client(p))
    page.click("#send-outline")
    page.wait_for_url("**/results/pred_*")
    page.locator("#analysed-image").wait_for(state="visible")
    shot("result")


def test_a_refusal_is_said_in_french_on_a_french_page(new_page, tmp_path, artifacts):
    page = new_page(locale="fr-FR", **PHONE)
    page.route(
        "**/api/predict",
        lambda route: route.fulfill(
            status=422,
            body=refusal("photo_quality", ["too_dark", "no_texture"]),
            content_type="application/json",
        ),
    )
    page.goto("/")
    assert page.locator("label[for=id_image]").inner_text() == "Choisir une photo"
    open_photo(page, eyelid_photo(tmp_path).path)

    page.click("#send-whole")

    status = page.locator("#outline-status")
    status.filter(has_text="trop sombre").wait_for()
    text = status.inner_text()
    assert "La lumière de cette photo ne permet pas de lire la couleur" in text
    assert "Tenez le téléphone immobile" in text
    assert "Rien de cette photo n\u2019a été conservé." in text
    assert page.locator("#retake").inner_text() == "Prendre une autre photo"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.locator("#outline-step").screenshot(path=str(artifacts / "gate-refusal-360-fr.png"))
    reoutline = page.locator("#reoutline").inner_text()
    assert reoutline == "Entourer plutôt l\u2019intérieur de la paupière"
