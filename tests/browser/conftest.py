"""Playwright for Python driving Debian's Chromium against pytest-django's live server.

No browser is downloaded: `apt-get install chromium` puts chromium on PATH (or set
HEALTHGUARD_CHROMIUM to its executable). Without it these tests are skipped with the
reason (tests/optional.py), unless HEALTHGUARD_REQUIRE_ALL_TOOLS=1 (CI): then a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.optional import require_tool, unavailable

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "artifacts"

# The pages run under the service's Content-Security-Policy (django-csp, settings.py);
# should a response come without one, this stand-in is added so that an inline script or
# style still breaks these tests. The photo is shown from a blob: URL: img-src blob:.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -r requirements-dev.txt)")
    chromium = require_tool("chromium")
    # Playwright's sync API runs an event loop on this thread; Django's ORM refuses to
    # run while a loop is running unless told it is safe. It is here: the loop only
    # drives the browser, and the live server answers on its own thread.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def server(live_server, settings, transactional_db) -> str:
    # The live server speaks plain HTTP: cookies marked Secure would not come back.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return str(live_server.url)


class PageProblems:
    """JavaScript errors and console errors (CSP violations land there) seen by a page."""

    def __init__(self) -> None:
        self.items: list[str] = []
        # Failed uploads legitimately log their HTTP status; tests add what they provoke.
        self.expected: list[str] = ["status of 4", "status of 5"]

    def unexpected(self) -> list[str]:
        return [p for p in self.items if not any(e in p for e in self.expected)]

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.items.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: self.items.append(f"console: {msg.text}") if msg.type == "error" else None,
        )


def _with_csp(route: Any) -> None:
    # Only GET pages are re-fetched to add the header: re-sending a POST from here would
    # lose its file parts (Chromium does not hand file bytes to the interceptor).
    if route.request.resource_type != "document" or route.request.method != "GET":
        route.continue_()
        return
    response = route.fetch()
    if "content-security-policy" in response.headers:
        route.fulfill(response=response)  # the service's own policy is what is tested
        return
    route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})


@pytest.fixture
def new_page(browser, server) -> Iterator[Any]:
    """new_page(**context_options) -> a page on the live server, under the CSP."""
    contexts: list[Any] = []
    problems = PageProblems()

    def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 800, "height": 900})
        options.setdefault("locale", "en-GB")
        context = browser.new_context(base_url=server, **options)
        context.route("**/*", _with_csp)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems.watch(page)
        return page

    make.problems = problems  # type: ignore[attr-defined]
    yield make
    for context in contexts:
        context.close()
    assert not problems.unexpected(), problems.unexpected()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
