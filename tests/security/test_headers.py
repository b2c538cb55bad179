"""Security headers, cookies, CORS, sign-in throttling and the production settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db

PAGES = ["home", "login", "history"]


class InlineFinder(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block, and outside resources."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline handler {name} on <{tag}>")
        if "style" in named:
            self.problems.append(f"inline style on <{tag}>")
        for attr in ("src", "href", "action"):
            value = named.get(attr) or ""
            if attr == "href" and tag == "a":
                continue  # links are navigation, not resources
            if value.startswith("javascript:"):
                self.problems.append(f"javascript: URL in <{tag} {attr}>")
            if re.match(r"^(https?:)?//", value):
                self.problems.append(f"outside resource {value} in <{tag}>")
        if tag == "script":
            executable = named.get("type") in (None, "", "text/javascript", "module")
            self._in_script = executable and not named.get("src")
        if tag == "style":
            self.problems.append("inline <style> element")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append(f"inline script: {data.strip()[:60]}")


def csp_of(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: " ".join(part.split()[1:])
        for part in (p.strip() for p in header.split(";"))
        if part
    }


@pytest.mark.parametrize("page", PAGES)
def test_the_patient_pages_pass_the_csp(client: Client, patient, page):
    if page == "history":
        client.force_login(patient)
    response = client.get(reverse(page))
    assert response.status_code == 200

    policy = csp_of(response)
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    finder = InlineFinder()
    finder.feed(response.content.decode())
    assert finder.problems == []


def test_the_result_page_passes_the_csp(client: Client, real_crop_bytes):
    from devtools.multipart import image_part, multipart

    client.get("/")  # a patient's browser: it holds our CSRF cookie, so a session is kept
    body, ctype = multipart([image_part(real_crop_bytes, b"a.png", b"image/png")])
    created = client.generic("POST", "/api/predict", body, content_type=ctype)
    assert created.status_code == 201
    response = client.get(reverse("result", args=[created.json()["message_id"]]))
    assert response.status_code == 200
    assert csp_of(response)["script-src"] == "'self'"
    finder = InlineFinder()
    finder.feed(response.content.decode())
    assert finder.problems == []


def test_the_inline_finder_catches_what_the_csp_blocks():
    finder = InlineFinder()
    finder.feed(
        '<script>alert(1)</script><img src=x onerror="alert(1)"><p style="color:red">'
        '<script src="https://cdn.example.org/x.js"></script><script type="application/json">'
        "{}</script>"
    )
    assert len(finder.problems) == 4


def test_the_api_sends_the_security_headers(client: Client):
    response = client.get("/api/results")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_hsts_is_sent_over_https_in_production(client: Client, settings):
    assert settings.SECURE_HSTS_SECONDS >= 31536000  # production default (DEBUG off)
    response = client.get("/health/live", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in response["Strict-Transport-Security"]


def test_cookies_are_secure_and_http_only_in_production(client: Client, patient, settings):
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
    page = client.get(reverse("login"), secure=True)
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["httponly"] and csrf["secure"]

    signed_in = client.post(
        reverse("login"),
        {"username": "patient", "password": "correct horse battery staple"},
        secure=True,
    )
    assert signed_in.status_code == 302, signed_in.content[:300]
    session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["httponly"] and session["secure"]
    assert session["samesite"] == "Lax"


def test_cors_allows_only_the_configured_origin(client: Client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://clinic.example.org"]
    allowed = client.options(
        "/api/predict",
        HTTP_ORIGIN="https://clinic.example.org",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert allowed["Access-Control-Allow-Origin"] == "https://clinic.example.org"
    assert "Access-Control-Allow-Credentials" not in allowed

    refused = client.options(
        "/api/predict",
        HTTP_ORIGIN="https://evil.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in refused
    page = client.get(reverse("home"), HTTP_ORIGIN="https://clinic.example.org")
    assert "Access-Control-Allow-Origin" not in page


def test_no_origin_is_allowed_by_default(client: Client, settings):
    if "CORS_ALLOWED_ORIGINS" not in os.environ:
        assert settings.CORS_ALLOWED_ORIGINS == []
    assert not getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False)
    response = client.get("/api/results", HTTP_ORIGIN="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in response


@pytest.fixture
def login_rate(settings):
    def set_rate(rate: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                "login": rate,
            },
        }

    return set_rate


@pytest.mark.parametrize("route", ["login", "admin:login", "rest_framework:login"])
def test_sign_in_attempts_are_throttled(client: Client, login_rate, route):
    login_rate("3/minute")
    attempts = [{"username": "patient", "password": f"guess{i}"} for i in range(5)]
    codes = [client.post(reverse(route), data).status_code for data in attempts]

    assert codes == [200, 200, 200, 429, 429]  # wrong password: the form again, then 429
    refused = client.post(reverse(route), {"username": "patient", "password": "x"})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert b"Too many sign-in attempts" in refused.content


def test_the_throttle_stops_a_correct_password_too(client: Client, patient, login_rate):
    login_rate("1/minute")
    client.post(reverse("login"), {"username": "patient", "password": "wrong"})
    response = client.post(
        reverse("login"), {"username": "patient", "password": "correct horse battery staple"}
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_other_clients_may_still_sign_in(client: Client, patient, login_rate):
    login_rate("1/minute")
    client.post(reverse("login"), {"username": "patient", "password": "wrong"})
    other = Client(REMOTE_ADDR="127.0.0.2")
    response = other.post(
        reverse("login"), {"username": "patient", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302


def test_sign_in_pages_still_open_when_throttled(client: Client, login_rate):
    login_rate("1/minute")
    client.post(reverse("login"), {"username": "a", "password": "b"})
    assert client.post(reverse("login"), {"username": "a", "password": "b"}).status_code == 429
    assert client.get(reverse("login")).status_code == 200


def _settings_import(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "ALLOWED_HOSTS"}}
    return subprocess.run(
        [sys.executable, "-c", "import healthguard.settings as s; print(s.DEBUG)"],
        cwd=REPO_ROOT,
        env={**clean, "SECRET_KEY": "x" * 50, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_is_off_unless_asked_for():
    result = _settings_import({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_debug_refuses_to_start_for_a_public_host():
    result = _settings_import({"DEBUG": "1", "ALLOWED_HOSTS": "healthguard.example.org"})
    assert result.returncode != 0
    assert "DEBUG must be off on a server" in result.stderr
    assert "healthguard.example.org" in result.stderr


def test_debug_still_works_on_a_developer_machine():
    result = _settings_import({"DEBUG": "1", "ALLOWED_HOSTS": "localhost,127.0.0.1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
