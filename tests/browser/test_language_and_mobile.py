"""French UI, and the pages at 360 px wide on a touch phone (screenshots in artifacts/)."""

from __future__ import annotations

import pytest

from predictions.models import Prediction
from tests.browser.tracing import eyelid_photo, outline_of, trace

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def assert_fits_the_width(page, width: int = 360) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width} px wide at {width} px"


def test_the_pages_speak_french(new_page, tmp_path):
    page = new_page(locale="fr-FR")
    page.goto("/")

    assert page.locator("html").get_attribute("lang") == "fr"
    assert "pour des signes d\u2019anémie" in page.locator("h1").inner_text()
    assert "pas un diagnostic" in page.content()

    # The script's words come from the page, in French too.
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_bytes(b"pas une photo" * 10)
    page.set_input_files("#id_image", str(not_a_photo))
    page.locator("#form-error").filter(has_text="pas une photo").wait_for()
    page.set_input_files("#id_image", str(eyelid_photo(tmp_path).path))
    page.locator("#outline-step").wait_for(state="visible")
    assert page.locator("#point-count").inner_text() == "Points placés : 0."

    # The switcher goes back to English and stays there.
    page.click("button[name=language][value=en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto("/history")
    assert page.locator("h1").inner_text() == "My results"


def test_the_whole_journey_fits_a_360_px_phone(new_page, tmp_path, artifacts):
    page = new_page(**PHONE)
    page.goto("/")
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "home-360.png"), full_page=True)

    photo = eyelid_photo(tmp_path)
    page.set_input_files("#id_image", str(photo.path))
    page.locator("#outline-step").wait_for(state="visible")
    page.click("#zoom-in")
    placed = trace(page, outline_of(photo.mask), touch=True)
    assert page.locator("#outline-canvas").get_attribute("data-points") == str(len(placed))
    assert len(placed) >= 6
    assert_fits_the_width(page)
    page.locator("#outline-step").screenshot(path=str(artifacts / "outline-360.png"))

    page.click("#send-outline")
    page.wait_for_url("**/results/pred_*")
    assert Prediction.objects.get().segmentation == "provided"
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "result-360.png"), full_page=True)

    # The switcher keeps the patient on their result, now in French.
    result_url = page.url
    page.click("button[name=language][value=fr]")
    page.wait_for_load_state()
    assert page.url == result_url
    assert page.locator("h1").inner_text() == "Votre résultat"
    assert "prise de sang" in page.locator(".recommendation").inner_text()
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "result-360-fr.png"), full_page=True)


def test_the_french_pages_fit_a_360_px_phone(new_page, tmp_path, artifacts):
    page = new_page(locale="fr-FR", **PHONE)
    page.goto("/")
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "home-360-fr.png"), full_page=True)

    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_bytes(b"pas une photo" * 10)
    page.set_input_files("#id_image", str(not_a_photo))
    page.locator("#form-error").filter(has_text="pas une photo").wait_for()
    assert_fits_the_width(page)
    page.locator("#check").screenshot(path=str(artifacts / "upload-error-360-fr.png"))

    page.goto("/accounts/login/")
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "login-360-fr.png"), full_page=True)

    response = page.goto("/results/pred_nothing_here")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page introuvable"
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "404-360-fr.png"), full_page=True)

    page.goto("/history")
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "history-360-fr.png"), full_page=True)
