"""The project's metrics, one test per metric and its labels, read from a real scrape
of /metrics parsed as Prometheus parses it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from predictions.models import Prediction
from tests.factories import PredictionFactory
from tests.observability.conftest import parse_metrics, sample_value, samples_of, scrape
from tests.security.hostile import png_bomb

pytestmark = pytest.mark.django_db

PREDICT = "/api/predict"


def upload(data: bytes, name: str = "eyelid.png", content_type: str = "image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def test_it_counts_a_prediction_by_condition_risk_level_and_model_version(
    client, api_client, real_crop_bytes
):
    before = scrape(client)
    body = api_client.post(PREDICT, {"image": upload(real_crop_bytes)}, format="multipart").json()
    after = scrape(client)

    labels = {
        "condition": body["condition"],
        "site": body["site"],
        "risk_level": body["risk_level"],
        "model_version": body["model_version"],
    }
    name = "healthguard_predictions_total"
    assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 1
    family = parse_metrics(after)["healthguard_predictions"]
    assert family.type == "counter"
    for sample in family.samples:
        assert set(sample.labels) == {"condition", "site", "risk_level", "model_version"}


def test_it_observes_each_prediction_in_the_duration_histogram(client, api_client, real_crop_bytes):
    before = scrape(client)
    api_client.post(PREDICT, {"image": upload(real_crop_bytes)}, format="multipart")
    after = scrape(client)

    family = parse_metrics(after)["healthguard_prediction_duration_seconds"]
    assert family.type == "histogram"
    count = "healthguard_prediction_duration_seconds_count"
    assert sample_value(after, count) == sample_value(before, count) + 1
    total = "healthguard_prediction_duration_seconds_sum"
    row = Prediction.objects.latest("created_at")
    observed = sample_value(after, total) - sample_value(before, total)
    # The observation is the stored processing time plus the INSERT: same order of size.
    assert row.processing_time_ms / 1000 <= observed < row.processing_time_ms / 1000 + 1.0
    bounds = [float(s.labels["le"]) for s in samples_of(after, count.replace("_count", "_bucket"))]
    assert bounds[0] == 0.001 and 2.0 in bounds and bounds[-1] == float("inf")


def test_it_counts_requests_by_route_name_method_and_status_never_the_path(client, staff):
    prediction = PredictionFactory()
    client.force_login(staff)
    before = scrape(client)
    client.get(f"/api/results/{prediction.message_id}")
    client.get("/api/results/pred_doesnotexist000")
    after = scrape(client)

    name = "healthguard_api_requests_total"
    ok = {"endpoint": "result-detail", "method": "GET", "status": "200"}
    missing = {"endpoint": "result-detail", "method": "GET", "status": "404"}
    assert sample_value(after, name, **ok) == sample_value(before, name, **ok) + 1
    assert sample_value(after, name, **missing) == sample_value(before, name, **missing) + 1
    for sample in samples_of(after, name):
        assert set(sample.labels) == {"endpoint", "method", "status"}
        assert "/" not in sample.labels["endpoint"] and "pred_" not in sample.labels["endpoint"]


def test_paths_that_match_no_route_share_one_label(client):
    before = scrape(client)
    for path in ("/wp-login.php", "/api/nothing-here", "/.env"):
        client.get(path)
    after = scrape(client)

    name = "healthguard_api_requests_total"
    labels = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 3
    endpoints = {s.labels["endpoint"] for s in samples_of(after, name)}
    assert not any("wp-login" in e or ".env" in e for e in endpoints)


def test_unusual_methods_are_labelled_other(client):
    before = scrape(client)
    client.generic("BREW", "/health/live")
    after = scrape(client)
    name = "healthguard_api_requests_total"
    labels = {"endpoint": "health-live", "method": "other", "status": "405"}
    assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 1


def test_it_counts_api_errors_by_route_and_code(client, api_client):
    before = scrape(client)
    api_client.post(PREDICT, {"image": upload(b"GIF89a" + b"\x00" * 64)}, format="multipart")
    api_client.get("/api/results")  # anonymous listing
    client.get("/api/nothing-here")
    after = scrape(client)

    name = "healthguard_api_errors_total"
    for labels in (
        {"endpoint": "predict", "code": "unsupported_media_type"},
        {"endpoint": "result-list", "code": "not_authenticated"},
        {"endpoint": "unmatched", "code": "not_found"},
    ):
        assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 1
    for sample in samples_of(after, name):
        assert set(sample.labels) == {"endpoint", "code"}


@pytest.mark.parametrize(
    ("reason", "data"),
    [
        ("unsupported_media_type", b"%PDF-1.7\n" + b"\x00" * 64),
        ("invalid_image", b""),
        ("invalid_image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
        ("invalid_dimensions", png_bomb(60000, 60000)),
        ("invalid_dimensions", png_bomb(8, 8)),
        ("missing_image", None),
        ("file_too_large", b"\xff\xd8\xff" + b"\x00" * 6000),
    ],
    ids=["pdf", "empty", "truncated-png", "pixel-bomb", "tiny", "no-file", "too-large"],
)
def test_it_counts_upload_rejections_by_reason(client, api_client, settings, reason, data):
    settings.MAX_UPLOAD_BYTES = 4096
    before = scrape(client)
    payload = {"image": upload(data)} if data is not None else {"site": "conjunctiva"}
    response = api_client.post(PREDICT, payload, format="multipart")
    after = scrape(client)

    assert response.json()["error"]["code"] == reason
    name = "healthguard_upload_rejections_total"
    assert sample_value(after, name, reason=reason) == sample_value(before, name, reason=reason) + 1
    errors = "healthguard_api_errors_total"
    labels = {"endpoint": "predict", "code": reason}
    assert sample_value(after, errors, **labels) == sample_value(before, errors, **labels) + 1
    assert not Prediction.objects.exists()


def test_a_refused_request_that_is_not_an_upload_problem_is_not_a_rejection(client, api_client):
    before = scrape(client)
    api_client.get("/api/results")
    after = scrape(client)
    name = "healthguard_upload_rejections_total"
    assert sum(s.value for s in samples_of(after, name)) == sum(
        s.value for s in samples_of(before, name)
    )


def test_database_metrics_come_from_the_wrapped_backend(client, settings):
    vendor = "postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "sqlite"
    assert settings.DATABASES["default"]["ENGINE"].startswith("django_prometheus.db.backends.")
    before = scrape(client)
    list(Prediction.objects.all())
    after = scrape(client)
    name = "django_db_execute_total"
    labels = {"alias": "default", "vendor": vendor}
    assert sample_value(after, name, **labels) >= sample_value(before, name, **labels) + 1


def test_django_prometheus_request_metrics_are_exported_too(client):
    client.get("/health/live")
    families = parse_metrics(scrape(client))
    assert "django_http_requests_before_middlewares" in families
    assert "django_http_responses_total_by_status_view_method" in families
