"""What a REST client meets: /api/ root, POST /api/token, 401 with WWW-Authenticate,
Location on 201, French messages, and the schema's descriptions and error codes."""

from __future__ import annotations

import pytest
import yaml
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from predictions.errors import ERROR_CODES, STATUS_BY_CODE
from predictions.handlers import _DRF_CODES
from predictions.throttles import TokenThrottle
from tests.conftest import client_for
from tests.factories import PredictionFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def token_entries() -> list[LogEntry]:
    return list(LogEntry.objects.filter(object_repr="api token").order_by("pk"))


# --- /api/ -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "patient", "staff"])
def test_it_lists_the_endpoints_for_everyone(who, request):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    response = client_for(user).get("/api/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"predict", "results", "token", "audit_export", "schema", "docs"}
    assert body["predict"]["url"] == "http://testserver/api/predict"
    assert body["token"]["url"] == "http://testserver/api/token"


# --- POST /api/token ----------------------------------------------------------------


def test_it_gives_a_token_for_a_good_password_and_audits_it(api_client):
    UserFactory(username="nurse")
    user = User.objects.get(username="nurse")
    response = api_client.post("/api/token", {"username": "nurse", "password": PASSWORD})
    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(user=user).key == key
    [entry] = token_entries()
    assert entry.actor_id == user.pk
    assert entry.action == LogEntry.Action.ACCESS
    assert entry.additional_data == {"via": "api", "event": "token_issued", "token_created": True}
    assert entry.remote_addr == "127.0.0.1"
    # ... and the token works on an endpoint that needs an account.
    again = APIClient()
    again.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert again.get("/api/results").status_code == 200


def test_it_accepts_json_too(api_client):
    UserFactory(username="nurse")
    response = api_client.post(
        "/api/token", {"username": "nurse", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200


def test_it_refuses_a_wrong_password_in_the_error_shape_and_audits_it(api_client):
    UserFactory(username="nurse")
    response = api_client.post("/api/token", {"username": "nurse", "password": "nope"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not Token.objects.exists()
    [entry] = token_entries()
    assert entry.actor_id is None
    assert entry.additional_data == {"via": "api", "event": "token_refused"}
    assert "nurse" not in str(entry.additional_data)


def test_it_throttles_password_guessing(api_client, monkeypatch):
    monkeypatch.setattr(TokenThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    UserFactory(username="nurse")
    codes = [
        api_client.post("/api/token", {"username": "nurse", "password": "x"}).status_code
        for _ in range(4)
    ]
    assert codes == [400, 400, 400, 429]
    good = api_client.post("/api/token", {"username": "nurse", "password": PASSWORD})
    assert good.status_code == 429
    assert good.json()["error"]["code"] == "throttled"


def test_it_refuses_get_on_the_token_endpoint(api_client):
    assert api_client.get("/api/token").status_code == 405


# --- 401 with WWW-Authenticate ------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/results", "/api/audit/export"])
def test_an_anonymous_call_is_a_401_with_www_authenticate(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Token'
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_bad_token_is_a_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = api_client.get("/api/results")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_signed_in_user_without_the_permission_is_still_a_403(patient):
    response = client_for(patient).get("/api/audit/export")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_the_browsable_api_still_takes_a_session(patient):
    client = APIClient()
    client.force_login(patient)
    response = client.get("/api/results", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content.lower()


# --- Location and French ------------------------------------------------------------


def test_a_201_carries_the_result_location(api_client, real_crop_bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    image = SimpleUploadedFile("eye.png", real_crop_bytes, content_type="image/png")
    response = api_client.post("/api/predict", {"image": image}, format="multipart")
    assert response.status_code == 201, response.content
    message_id = response.json()["message_id"]
    assert response["Location"] == f"/api/results/{message_id}"


def test_errors_and_results_are_in_french_when_asked(api_client, patient):
    response = api_client.post("/api/predict", {}, format="multipart", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_image"
    assert response.json()["error"]["message"] == (
        "Envoyez exactement une image dans le champ multipart « image »."
    )
    assert api_client.get("/api/results", HTTP_ACCEPT_LANGUAGE="fr").json()["error"][
        "message"
    ] == "Informations d'authentification non fournies."
    row = PredictionFactory(
        owner=patient,
        risk_level="high",
        recommendation="Signs of anemia were found. See a health professional soon for a "
        "blood test (haemoglobin); only a blood test can confirm anemia.",
    )
    body = client_for(patient).get(
        f"/api/results/{row.message_id}", HTTP_ACCEPT_LANGUAGE="fr"
    ).json()
    assert body["recommendation"].startswith("Des signes d\u2019anémie ont été trouvés.")
    english = client_for(patient).get(f"/api/results/{row.message_id}").json()
    assert body["disclaimer"] != english["disclaimer"]
    assert english["recommendation"].startswith("Signs of anemia were found.")


# --- The schema ---------------------------------------------------------------------


@pytest.fixture
def schema(api_client) -> dict:
    response = api_client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_explains_confidence_and_the_fields_a_client_can_misread(schema):
    fields = schema["components"]["schemas"]["Prediction"]["properties"]
    assert "NOT the score" in fields["confidence"]["description"]
    for name in ("risk_score", "risk_level", "segmentation", "message_id", "recommendation"):
        assert fields[name].get("description"), name


def test_the_schema_lists_every_error_code_as_an_enum(schema):
    enums = [
        s["enum"]
        for s in schema["components"]["schemas"].values()
        if "enum" in s and "missing_image" in s["enum"]
    ]
    inline = str(schema)
    assert enums or "'missing_image'" in inline
    for code in {*STATUS_BY_CODE, *_DRF_CODES.values()}:
        assert code in ERROR_CODES
        assert f"'{code}'" in inline


def test_the_schema_documents_location_and_the_token_endpoint(schema):
    created = schema["paths"]["/api/predict"]["post"]["responses"]["201"]
    assert "Location" in created["headers"]
    assert "keep it" in schema["paths"]["/api/predict"]["post"]["description"]
    assert "post" in schema["paths"]["/api/token"]
    assert "/api/" in schema["paths"]


def test_the_schema_is_valid_openapi(schema):
    from openapi_spec_validator import validate

    validate(schema)
