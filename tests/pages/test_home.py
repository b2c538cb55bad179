"""GET / : the explanation and the upload form."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders

from predictions.patient_copy import ERROR_MESSAGES
from tests.pages.conftest import csrf_token_from, html_part, text_of

pytestmark = pytest.mark.django_db


def test_it_shows_the_upload_form(client):
    response = client.get("/")

    assert response.status_code == 200
    assert "predictions/home.html" in [t.name for t in response.templates]
    html = response.content.decode()
    form = html_part(r'<form id="upload-form".*?</form>', html)
    assert 'method="post"' in form
    assert 'action="/analyse"' in form
    assert 'enctype="multipart/form-data"' in form
    assert 'name="csrfmiddlewaretoken"' in form
    assert 'accept="image/png,image/jpeg"' in form
    assert 'capture="environment"' in form
    assert '<label for="id_image">' in form
    assert response.context["error"] is None


def test_it_explains_what_the_check_does_and_does_not_do(client):
    text = text_of(client.get("/"))

    assert "It is a screening aid, not a diagnosis." in text
    assert "Only a blood test (haemoglobin) can confirm anemia." in text
    assert "see a clinician" in text
    assert "pull the lower eyelid down" in text
    assert "Do not use the flash" in text
    assert "analysed in memory and never stored" in text
    assert "fingerprint" in text


def test_it_gives_the_script_its_settings_without_inline_code(client):
    response = client.get("/")
    html = response.content.decode()

    tag = html_part(r'<script id="hg-config" type="application/json">.*?</script>', html)
    config = json.loads(tag.split(">", 1)[1].rsplit("<", 1)[0])
    assert config["predictUrl"] == "/api/predict"
    assert config["resultUrl"] == "/results/__id__"
    assert set(config["messages"]) == set(ERROR_MESSAGES)
    # Every other script is an external file: a CSP of script-src 'self' allows them all.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    for attrs, body in scripts:
        assert 'type="application/json"' in attrs or ("src=" in attrs and not body.strip())
    assert "style=" not in html


def test_the_status_region_is_announced(client):
    html = client.get("/").content.decode()

    assert re.search(r'id="form-error"[^>]*role="status"[^>]*aria-live="polite"', html)
    assert re.search(r'id="outline-status"[^>]*role="status"[^>]*aria-live="polite"', html)


def test_the_page_links_static_files_that_exist(client):
    html = client.get("/").content.decode()

    for name in ("js/outline.js", "css/site.css"):
        assert f"/static/{name}" in html
        assert finders.find(name), name


def test_it_refuses_a_post(client):
    token = csrf_token_from(client)

    assert client.post("/", {"csrfmiddlewaretoken": token}).status_code == 405
