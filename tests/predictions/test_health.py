from __future__ import annotations

import pytest


def test_live_answers_without_touching_the_database(db, client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_is_200_when_the_database_and_model_are_up(client):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": True, "model": True}


@pytest.mark.django_db
def test_health_reports_version_model_and_database(client, settings):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["version"] == settings.VERSION
    assert body["model_loaded"] is True
    assert "conjunctiva" in body["model_sites"]
    assert body["database_reachable"] is True


@pytest.mark.django_db
def test_ready_is_503_when_the_model_cannot_be_loaded(client, settings, tmp_path):
    (tmp_path / "conjunctiva").mkdir()
    (tmp_path / "conjunctiva" / "card.json").write_text("{}")
    (tmp_path / "conjunctiva" / "model.tflite").write_bytes(b"not a flatbuffer")
    settings.HEALTHGUARD_MODEL_DIR = tmp_path
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["model"] is False
    assert response.json()["model_error"]


def test_health_endpoints_refuse_post(client):
    response = client.post("/health/live")
    assert response.status_code == 405


def test_an_unknown_api_path_is_404_in_the_error_shape(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
