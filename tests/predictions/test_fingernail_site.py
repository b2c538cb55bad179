"""A fingernail prediction carries its site everywhere staff and operators look: the
metrics' labels, the "prediction stored" log line, the audit entry, the admin list and
its filter, and the patient's result page (in words, English and French)."""

from __future__ import annotations

import csv
import json
import logging

import cv2
import numpy as np
import pytest
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile

from predictions.models import Prediction
from tests.conftest import DATASET_DIR, dataset_available
from tests.factories import UserFactory
from tests.observability.conftest import sample_value, scrape

pytestmark = pytest.mark.django_db

PREDICT = "/api/predict"


def nail_png(*, masked: bool = True) -> bytes:
    """yakimov_P001 as the page sends it: alpha 255 on the nail boxes, 0 elsewhere."""
    if not dataset_available():
        raise AssertionError("the anemia dataset is needed (HEALTHGUARD_DATASET_DIR)")
    with (DATASET_DIR / "labels.csv").open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["file"].endswith("yakimov_P001.png"))
    bgr = cv2.imread(str(DATASET_DIR / row["file"]), cv2.IMREAD_COLOR)
    alpha = np.zeros(bgr.shape[:2], np.uint8)
    for y0, x0, y1, x1 in json.loads(row["nail_bboxes"]):
        alpha[y0:y1, x0:x1] = 255
    image = np.dstack([bgr, alpha]) if masked else bgr
    ok, buffer = cv2.imencode(".png", image)
    assert ok
    return buffer.tobytes()


def post(api_client, data: bytes):
    upload = SimpleUploadedFile("nails.png", data, content_type="image/png")
    return api_client.post(PREDICT, {"image": upload, "site": "fingernail"}, format="multipart")


def test_it_carries_the_site_in_metrics_logs_audit_and_admin(client, api_client, caplog):
    before = scrape(client)
    with caplog.at_level(logging.INFO, logger="predictions.services"):
        response = post(api_client, nail_png())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["site"] == "fingernail"
    assert body["model_version"] == "fingernail-1.0.0"

    after = scrape(client)
    labels = {
        "condition": body["condition"],
        "site": "fingernail",
        "risk_level": body["risk_level"],
        "model_version": "fingernail-1.0.0",
    }
    name = "healthguard_predictions_total"
    assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 1

    stored = [r for r in caplog.records if r.getMessage() == "prediction stored"]
    assert [r.site for r in stored] == ["fingernail"]

    prediction = Prediction.objects.get(message_id=body["message_id"])
    entry = LogEntry.objects.get_for_object(prediction).get(action=LogEntry.Action.CREATE)
    changes = entry.changes if isinstance(entry.changes, dict) else json.loads(entry.changes)
    assert changes["site"][1] == "fingernail"

    root = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    listed = client.get("/admin/predictions/prediction/", {"site": "fingernail"})
    assert listed.status_code == 200
    html = listed.content.decode()
    assert body["message_id"] in html
    assert "Fingernails" in html
    eyelid_only = client.get("/admin/predictions/prediction/", {"site": "conjunctiva"})
    assert body["message_id"] not in eyelid_only.content.decode()


def test_an_opaque_nail_photo_is_refused_with_advice(api_client):
    response = post(api_client, nail_png(masked=False))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_fingernail_found"
    assert not Prediction.objects.exists()


def test_the_result_page_names_the_site_and_speaks_to_an_adult(client):
    response = client.post(
        "/analyse",
        {
            "image": SimpleUploadedFile("nails.png", nail_png(), content_type="image/png"),
            "site": "fingernail",
        },
    )
    assert response.status_code == 302, response.content[:500]
    prediction = Prediction.objects.get()
    assert prediction.site == "fingernail"
    page = client.get(response["Location"]).content.decode()
    assert "Fingernails" in page
    assert "the child" not in page
    # The card's confidence is shown per adult, not per child.
    assert "adults out of 100" in page
    client.cookies["django_language"] = "fr"
    french = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Ongles" in french
    history = client.get("/history").content.decode()
    assert '<span class="history-site">Ongles</span>' in history
