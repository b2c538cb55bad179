"""Zoom and pan on the outline canvas: keyboard, wheel, buttons, drag, two-finger pinch."""

from __future__ import annotations

import pytest

from tests.browser.tracing import drag, eyelid_photo, view_of

pytestmark = pytest.mark.browser


@pytest.fixture
def outline_page(new_page, tmp_path):
    def make(**options):
        page = new_page(**options)
        page.goto("/")
        page.set_input_files("#id_image", str(eyelid_photo(tmp_path).path))
        page.locator("#outline-step").wait_for(state="visible")
        return page

    return make


def points(page) -> int:
    return int(page.locator("#outline-canvas").get_attribute("data-points"))


def test_the_keyboard_zooms_and_moves_the_photo(outline_page):
    page = outline_page()
    start = view_of(page)

    page.focus("#outline-canvas")
    page.keyboard.press("+")
    zoomed = view_of(page)
    page.keyboard.press("ArrowLeft")
    moved = view_of(page)

    assert zoomed.scale == pytest.approx(start.scale * 1.25)
    assert moved.ox == pytest.approx(zoomed.ox + 40)
    assert moved.oy == pytest.approx(zoomed.oy)


def test_the_buttons_and_the_wheel_zoom_and_fit_restores(outline_page):
    page = outline_page()
    start = view_of(page)
    box = page.locator("#outline-canvas").bounding_box()

    page.click("#zoom-out")
    assert view_of(page).scale == pytest.approx(start.scale * 0.8)
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.wheel(0, -120)
    page.wait_for_function(
        f"document.querySelector('#outline-canvas').dataset.scale > {start.scale * 0.8 + 1e-9}"
    )
    page.click("#zoom-fit")
    assert view_of(page) == start


def test_dragging_the_photo_pans_without_placing_a_point(outline_page):
    page = outline_page()
    start = view_of(page)
    x, y = start.left + 50, start.top + 50

    drag(page, (round(x), round(y)), (round(x) + 60, round(y) + 35))

    after = view_of(page)
    assert after.ox == pytest.approx(start.ox + 60)
    assert after.oy == pytest.approx(start.oy + 35)
    assert points(page) == 0


def test_dragging_a_point_moves_it_and_undo_puts_it_back(outline_page):
    page = outline_page()
    view = view_of(page)
    for client in [(200, 300), (400, 300), (300, 450)]:
        page.mouse.click(view.left + client[0], view.top + client[1])
    assert points(page) == 3

    second = (round(view.left + 400), round(view.top + 300))
    drag(page, second, (second[0] + 50, second[1] + 20))
    page.click("#undo-point")  # undoes the drag, not the last point
    assert points(page) == 3
    page.click("#undo-point")
    assert points(page) == 2
    page.click("#clear-points")
    assert points(page) == 0
    page.click("#undo-point")
    assert points(page) == 2


def test_two_fingers_pinch_to_zoom(outline_page):
    page = outline_page(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    page.locator("#outline-canvas").scroll_into_view_if_needed()
    start = view_of(page)
    cx, cy = start.left + 160, start.top + 160
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, spread: float) -> None:
        fingers = [] if kind == "touchEnd" else [
            {"x": cx - spread, "y": cy, "id": 1},
            {"x": cx + spread, "y": cy, "id": 2},
        ]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": fingers})

    touch("touchStart", 40)
    for spread in (50, 60, 70, 80):
        touch("touchMove", spread)
    touch("touchEnd", 0)

    after = view_of(page)
    assert after.scale == pytest.approx(start.scale * 2, rel=0.05)
    assert points(page) == 0
