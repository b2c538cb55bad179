"""A signed-in patient: the script's upload passes the API's CSRF check for sessions,
the result is theirs, and their history lists it; signing out is a POST form."""

from __future__ import annotations

from typing import cast

import pytest
from django.contrib.auth.models import User

from predictions.models import Prediction
from tests.browser.tracing import eyelid_photo
from tests.factories import UserFactory

pytestmark = pytest.mark.browser


def test_a_signed_in_patient_checks_a_photo_and_finds_it_in_their_history(
    new_page, tmp_path, artifacts
):
    patient = cast(User, UserFactory(username="amina"))
    page = new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", "amina")
    page.fill("#id_password", "correct horse battery staple")
    page.click("main button[type=submit]")
    page.wait_for_url("**/history")  # signing in lands on "My results" (issue 17)
    assert page.locator("text=Sign out").is_visible()
    page.goto("/")

    photo = eyelid_photo(tmp_path, index=3)
    page.set_input_files("#id_image", str(photo.path))
    page.locator("#outline-step").wait_for(state="visible")
    with page.expect_response("**/api/predict") as response_info:
        page.click("#send-whole")
    assert response_info.value.status == 201, response_info.value.text()
    page.wait_for_url("**/results/pred_*")

    prediction = Prediction.objects.get()
    assert prediction.owner_id == patient.pk
    page.click("nav >> text=My results")
    items = page.locator(".history-item")
    assert items.count() == 1
    assert items.locator("a").get_attribute("href") == f"/results/{prediction.message_id}"
    page.screenshot(path=str(artifacts / "history-800.png"), full_page=True)

    page.click("text=Sign out")
    page.wait_for_url("**/")
    assert page.locator("nav >> text=Sign in").is_visible()
    page.goto(f"/results/{prediction.message_id}")
    assert page.locator("h1").inner_text() == "Page not found"


def test_a_wrong_password_is_said_in_words(new_page):
    UserFactory(username="amina")
    page = new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", "amina")
    page.fill("#id_password", "not the password")
    page.click("main button[type=submit]")

    status = page.locator("#login-error")
    assert status.get_attribute("role") == "status"
    assert "correct username and password" in status.inner_text()
