"""The page sends a fresh Idempotency-Key per photo and resends with the same one.

The server side of a replay (the answer lost after the result was stored) is tested in
tests/predictions/test_api_idempotency.py: Chromium does not hand an intercepted
request's FormData blob to the test, so the test cannot pass the first request on and
then drop its answer. Here the first attempt is cut before it reaches the server.
"""

from __future__ import annotations

import pytest

from predictions.models import IdempotencyKey, Prediction
from tests.browser.tracing import eyelid_photo

pytestmark = pytest.mark.browser


def test_a_resend_after_a_lost_connection_reuses_the_photos_key(new_page, tmp_path):
    photo = eyelid_photo(tmp_path)
    page = new_page()
    keys: list[str] = []

    def lost_once(route):
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/api/predict", lost_once)
    new_page.problems.expected.append("ERR_INTERNET_DISCONNECTED")
    page.goto("/")
    page.set_input_files("#id_image", str(photo.path))
    page.locator("#outline-step").wait_for(state="visible")
    page.click("#send-whole")
    page.locator("#outline-status").filter(has_text="Check your internet connection").wait_for()

    with page.expect_response("**/api/predict") as resent:
        page.click("#send-whole")

    assert resent.value.status == 201
    page.wait_for_url("**/results/pred_*")
    (stored,) = Prediction.objects.all()
    assert page.url.endswith(f"/results/{stored.message_id}")
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) == 36  # a UUID
    assert IdempotencyKey.objects.get(key=keys[0]).prediction == stored

    # The next photo gets a key of its own.
    page.goto("/")
    page.set_input_files("#id_image", str(photo.path))
    page.locator("#outline-step").wait_for(state="visible")
    with page.expect_response("**/api/predict") as next_photo:
        page.click("#send-whole")
    assert next_photo.value.status == 201
    assert len(keys) == 3 and keys[2] != keys[0]
    assert Prediction.objects.count() == 2
