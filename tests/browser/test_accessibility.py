"""Keyboard order, names for every control, focus moved to the next step; drag and drop."""

from __future__ import annotations

import base64

import pytest

from tests.browser.tracing import eyelid_photo

pytestmark = pytest.mark.browser

FOCUSED = "document.activeElement.id || document.activeElement.textContent.trim()"
UNNAMED_CONTROLS = """
() => Array.from(document.querySelectorAll('input, button, select, textarea, a[href], canvas'))
  .filter(el => el.type !== 'hidden' && el.getClientRects().length > 0)
  .filter(el => {
    const labelled = el.labels && el.labels.length > 0;
    const named = (el.getAttribute('aria-label') || '').trim() || (el.textContent || '').trim();
    return !(labelled || named);
  })
  .map(el => el.outerHTML.slice(0, 80))
"""


@pytest.mark.parametrize("path", ["/", "/history", "/accounts/login/"])
def test_every_visible_control_has_a_name(new_page, path):
    page = new_page()
    page.goto(path)

    assert page.evaluate(UNNAMED_CONTROLS) == []


def test_the_keyboard_reaches_the_skip_link_first_and_the_photo_before_its_button(new_page):
    page = new_page()
    page.goto("/")

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to the main content"
    order = []
    for _ in range(15):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED))
    assert order.index("id_image") < order.index("upload-submit")


def test_choosing_a_photo_moves_focus_to_the_outline_step(new_page, tmp_path):
    page = new_page()
    page.goto("/")

    page.set_input_files("#id_image", str(eyelid_photo(tmp_path).path))

    page.locator("#outline-step").wait_for(state="visible")
    page.wait_for_function("document.activeElement.id === 'outline-title'")
    canvas_name = page.locator("#outline-canvas").get_attribute("aria-label")
    assert canvas_name and "place points" in canvas_name


def test_a_photo_dropped_on_the_form_opens_the_outline_step(new_page, tmp_path):
    photo = eyelid_photo(tmp_path)
    page = new_page()
    page.goto("/")

    page.evaluate(
        """([data, name]) => {
          const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], name, {type: 'image/jpeg'}));
          const zone = document.getElementById('dropzone');
          const options = {dataTransfer: transfer, bubbles: true, cancelable: true};
          zone.dispatchEvent(new DragEvent('dragover', options));
          zone.dispatchEvent(new DragEvent('drop', options));
        }""",
        [base64.b64encode(photo.path.read_bytes()).decode(), "dropped.jpg"],
    )

    page.locator("#outline-step").wait_for(state="visible")
    assert page.evaluate("document.getElementById('id_image').files[0].name") == "dropped.jpg"
