"""/api/docs/ works offline: Swagger UI comes from our static files, under our CSP."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

LOCAL = {"localhost", "127.0.0.1", "[::1]", "::1"}


def test_the_api_docs_render_the_operations_with_the_network_cut_off(new_page, artifacts):
    page = new_page(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def cut_off(route):
        host = urlsplit(route.request.url).hostname or ""
        if host in LOCAL:
            route.fallback()  # on to the CSP route of new_page
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", cut_off)
    response = page.goto("/api/docs/")
    assert response is not None and response.status == 200
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "http" not in policy

    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/predict" in paths
    assert "/api/token" in paths
    assert any(p.startswith("/api/results") for p in paths)
    # Opening an operation shows its description (the schema was read and rendered).
    page.locator(".opblock-summary-path", has_text="/api/predict").first.click()
    page.get_by_text("keep it").first.wait_for()
    page.screenshot(path=str(artifacts / "api-docs-offline-1280.png"), full_page=False)
    assert outside == []
