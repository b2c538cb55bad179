"""Model v2's haemoglobin estimate, stored and shown: the API, the result page, the admin.

The real model and a real crop (no mocks): what is stored and shown must equal a direct
call of the model on the same image.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from ml.images import decode_image
from ml.runtime import ModelOutput
from predictions.inference import model_get
from predictions.models import Prediction
from tests.factories import PredictionFactory
from tests.pages.conftest import remember_in_session

URL = "/api/predict"
pytestmark = pytest.mark.django_db


def upload(data: bytes):
    return SimpleUploadedFile("eyelid.png", data, content_type="image/png")


def direct(data: bytes):
    return model_get(site="conjunctiva").predict(decode_image(data))


def test_the_api_returns_and_stores_the_models_hb_estimate(api_client, staff, real_crop_bytes):
    expected = direct(real_crop_bytes)

    response = api_client.post(URL, {"image": upload(real_crop_bytes)}, format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    low, high = expected.hb_interval_g_dl
    assert body["hb_estimate_g_dl"] == round(expected.hb_estimate_g_dl, 1)
    assert body["hb_interval_g_dl"] == [round(low, 1), round(high, 1)]
    assert body["hb_interval_g_dl"][0] <= body["hb_estimate_g_dl"] <= body["hb_interval_g_dl"][1]
    assert body["model_version"] == expected.model_version == "conjunctiva-2.0.0"
    row = Prediction.objects.get(message_id=body["message_id"])
    assert row.hb_estimate_g_dl == expected.hb_estimate_g_dl
    assert (row.hb_interval_low_g_dl, row.hb_interval_high_g_dl) == (low, high)
    # Read back by staff through the detail endpoint: the same values.
    api_client.force_authenticate(user=staff)
    detail = api_client.get(f"/api/results/{body['message_id']}").json()
    assert detail["hb_estimate_g_dl"] == body["hb_estimate_g_dl"]
    assert detail["hb_interval_g_dl"] == body["hb_interval_g_dl"]


def test_a_row_made_by_model_v1_has_no_hb_estimate(staff, api_client):
    old = PredictionFactory(model_version="conjunctiva-1.0.0")
    api_client.force_authenticate(user=staff)

    body = api_client.get(f"/api/results/{old.message_id}").json()

    assert body["model_version"] == "conjunctiva-1.0.0"
    assert body["hb_estimate_g_dl"] is None
    assert body["hb_interval_g_dl"] is None


def test_the_schema_describes_the_hb_fields(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    props = schema["components"]["schemas"]["Prediction"]["properties"]
    assert "g/dL" in props["hb_estimate_g_dl"]["description"]
    assert props["hb_interval_g_dl"]["type"] == "array"
    assert "90%" in props["hb_interval_g_dl"]["description"]


def _result_page(real_crop_bytes: bytes, language: str) -> tuple[str, ModelOutput]:
    client = Client()
    client.get("/")  # a browser: the session remembers the anonymous result
    body = client.post(URL, {"image": upload(real_crop_bytes)}).json()
    client.cookies["django_language"] = language
    page = client.get(f"/results/{body['message_id']}", HTTP_ACCEPT_LANGUAGE=language)
    assert page.status_code == 200
    return page.content.decode(), direct(real_crop_bytes)


def test_the_result_page_says_the_hb_range_in_words(real_crop_bytes):
    html, expected = _result_page(real_crop_bytes, "en")
    low, high = expected.hb_interval_g_dl
    assert (
        f"likely between {low:.1f} and {high:.1f} g/dL; a blood test gives the true value"
        in " ".join(html.split())
    )
    assert f"About {expected.hb_estimate_g_dl:.1f} g/dL" in html


def test_the_result_page_says_it_in_french(real_crop_bytes):
    html, expected = _result_page(real_crop_bytes, "fr")
    low, high = expected.hb_interval_g_dl
    fr = lambda v: f"{v:.1f}".replace(".", ",")  # noqa: E731
    assert (
        f"probablement entre {fr(low)} et {fr(high)} g/dL ; une prise de sang donne la vraie valeur"
        in " ".join(html.split())
    )


def test_the_result_page_of_a_v1_row_says_nothing_about_hb(client):
    old = PredictionFactory(model_version="conjunctiva-1.0.0")
    remember_in_session(client, str(old.message_id))
    page = client.get(f"/results/{old.message_id}")
    assert page.status_code == 200
    assert "g/dL" not in page.content.decode()


def test_the_admin_lists_and_shows_the_hb_estimate(admin_client, real_crop_bytes):
    expected = direct(real_crop_bytes)
    Client().post(URL, {"image": upload(real_crop_bytes)})
    row = Prediction.objects.get()
    low, high = expected.hb_interval_g_dl

    listing = admin_client.get("/admin/predictions/prediction/").content.decode()
    # One column for estimate and interval, so that the list fits 1280 px.
    assert "Hb g/dL (90%)" in listing
    assert f">{expected.hb_estimate_g_dl:.1f} ({low:.1f}-{high:.1f})<" in listing

    detail = admin_client.get(f"/admin/predictions/prediction/{row.pk}/change/").content.decode()
    for name in ("hb_estimate_g_dl", "hb_interval_low_g_dl", "hb_interval_high_g_dl"):
        assert f"field-{name}" in detail
    assert str(row.hb_estimate_g_dl) in detail
