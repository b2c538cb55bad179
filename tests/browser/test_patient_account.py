"""A patient at 360 px: sign up and find the result checked just before, delete it,
forget this device, read the history chart (local dates, print view), the privacy
page. Screenshots in artifacts/."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import pytest
from django.contrib.auth.models import User

from predictions.models import Prediction
from tests.browser.tracing import eyelid_photo
from tests.factories import PredictionFactory, UserFactory

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
PASSWORD = "correct horse battery staple"


def assert_fits_the_width(page: Any, width: int = 360) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width} px wide at {width} px"


def check_a_photo(page: Any, tmp_path: Any) -> str:
    """Check a real photo as an anonymous patient would; the result's message_id."""
    page.goto("/")
    page.set_input_files("#id_image", str(eyelid_photo(tmp_path, index=2).path))
    page.locator("#outline-step").wait_for(state="visible")
    with page.expect_response("**/api/predict") as response_info:
        page.click("#send-whole")
    assert response_info.value.status == 201, response_info.value.text()
    page.wait_for_url("**/results/pred_*")
    return str(page.url.rsplit("/", 1)[1])


def test_signing_up_keeps_the_result_checked_just_before(new_page, tmp_path, artifacts):
    page = new_page(**PHONE)
    message_id = check_a_photo(page, tmp_path)

    page.click("nav >> text=Create an account")
    page.wait_for_url("**/accounts/signup/")
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "signup-360.png"), full_page=True)
    page.fill("#id_username", "amina")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("main button[type=submit]")

    page.wait_for_url("**/history")
    assert "Your account is ready" in page.locator(".messages").inner_text()
    assert page.locator(".history-item a").get_attribute("href") == f"/results/{message_id}"
    assert Prediction.objects.get(message_id=message_id).owner == User.objects.get(
        username="amina"
    )
    page.goto(f"/results/{message_id}")
    assert page.locator("h1").inner_text() == "Your result"
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "result-owner-360.png"), full_page=True)


def test_signing_in_keeps_the_result_too_and_lands_on_my_results(new_page, tmp_path):
    UserFactory.create(username="amina")
    page = new_page(**PHONE)
    message_id = check_a_photo(page, tmp_path)

    page.goto(f"/accounts/login/?next=/results/{message_id}")
    page.fill("#id_username", "amina")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")

    page.wait_for_url(f"**/results/{message_id}")
    assert page.locator("h1").inner_text() == "Your result"
    page.click("nav >> text=My results")
    assert page.locator(".history-item").count() == 1


def test_a_patient_deletes_a_result_after_confirming(new_page, artifacts):
    patient = cast(User, UserFactory.create(username="amina"))
    doomed = PredictionFactory.create(owner=patient)
    page = new_page(**PHONE)
    page.goto("/accounts/login/")
    page.fill("#id_username", "amina")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/history")

    page.goto(f"/results/{doomed.message_id}")
    page.click("text=Delete this result")
    page.wait_for_url("**/delete")
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "delete-confirm-360.png"), full_page=True)
    page.click("#confirm-delete")

    page.wait_for_url("**/history")
    assert page.locator(".messages").inner_text() == "The result was deleted."
    assert page.locator(".history-item").count() == 0
    assert not Prediction.objects.filter(pk=doomed.pk).exists()


def test_forget_this_device_ends_the_anonymous_session(new_page, tmp_path, artifacts):
    page = new_page(**PHONE)
    message_id = check_a_photo(page, tmp_path)
    cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    assert cookie["expires"] == -1  # a session cookie: gone when the browser closes

    page.click("nav >> text=My results")
    assert page.locator(".history-item").count() == 1
    page.screenshot(path=str(artifacts / "history-anonymous-360.png"), full_page=True)
    page.click("#forget-device")

    page.wait_for_url("**/history")
    assert "no longer shows your results" in page.locator(".messages").inner_text()
    assert page.locator(".history-item").count() == 0
    page.goto(f"/results/{message_id}")
    assert page.locator("h1").inner_text() == "Page not found"


def test_the_history_chart_reads_without_colour_in_local_time(new_page, artifacts):
    patient = cast(User, UserFactory.create(username="amina"))
    start = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
    for i, (score, level) in enumerate([(0.2, "low"), (0.55, "medium"), (0.9, "high"),
                                        (0.62, "medium")]):
        row = PredictionFactory.create(owner=patient, risk_score=score, risk_level=level,
                                label="Amina" if i % 2 else None)
        Prediction.objects.filter(pk=row.pk).update(created_at=start + dt.timedelta(days=9 * i))
    page = new_page(timezone_id="Asia/Tokyo", **PHONE)
    page.goto("/accounts/login/")
    page.fill("#id_username", "amina")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/history")

    chart = page.locator("svg.chart-svg")
    assert chart.is_visible()
    assert chart.locator(".chart-marker").count() == 4
    assert chart.locator(".chart-value").all_text_contents() == ["0.20", "0.55", "0.90", "0.62"]
    assert page.locator(".chart-legend").inner_text().split("\n") == [
        "Low risk", "Medium risk", "High risk"
    ]
    # The browser's zone came back in its cookie: 1 March 23:30 UTC is 2 March in Tokyo.
    page.locator("#results-table summary").click()
    first_row = page.locator("#results-table tbody tr").first.inner_text()
    assert "March 2, 2026" in first_row
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "history-chart-360.png"), full_page=True)

    page.emulate_media(media="print")
    assert not page.locator(".site-nav").is_visible()
    assert page.locator("text=Dates and times in Asia/Tokyo").is_visible()
    page.screenshot(path=str(artifacts / "history-print-360.png"), full_page=True)


def test_the_privacy_and_reset_pages_fit_a_phone(new_page, artifacts):
    page = new_page(**PHONE)
    page.goto("/")
    page.click("footer >> text=Privacy")
    page.wait_for_url("**/privacy")
    assert "never stored" in page.locator("main").inner_text()
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "privacy-360.png"), full_page=True)

    page.goto("/accounts/login/")
    page.click("text=Forgot your password?")
    page.wait_for_url("**/password_reset/")
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "password-reset-360.png"), full_page=True)

    page = new_page(locale="fr-FR", **PHONE)
    page.goto("/privacy")
    assert "jamais enregistrée" in page.locator("main").inner_text()
    assert_fits_the_width(page)
    page.screenshot(path=str(artifacts / "privacy-360-fr.png"), full_page=True)
