"""Throttle the account forms: every sign-in form (patients', the admin's and DRF's),
the sign-up form and the password-reset form.

A middleware rather than a decorator on each view, so that the three sign-in pages
(`login`, `admin:login`, `rest_framework:login`) are covered by one rule, whoever owns
their views. Attempts (POSTs) are counted per client address and per scope in Django's
default cache (Redis when REDIS_URL is set, so the count holds across gunicorn
workers), at the scope's rate in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]: `login`
(THROTTLE_LOGIN, default 10/minute), `signup` (THROTTLE_SIGNUP) and `password_reset`
(THROTTLE_PASSWORD_RESET). Past it, the form answers 429 with Retry-After and checks
nothing at all (no password, no new account, no e-mail sent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cache
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache as default_cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

SIGN_IN_ROUTES = ("login", "admin:login", "rest_framework:login")
# Route name -> throttle scope (a rate in DEFAULT_THROTTLE_RATES, a count of its own).
THROTTLED_ROUTES: dict[str, str] = {
    **{name: "login" for name in SIGN_IN_ROUTES},
    "signup": "signup",
    "password_reset": "password_reset",
}
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def login_rate(scope: str = "login") -> tuple[int, int]:
    """(attempts, seconds) from a scope's throttle rate, e.g. "10/minute"."""
    rates = cast(dict[str, Any], settings.REST_FRAMEWORK)["DEFAULT_THROTTLE_RATES"]
    count, _, period = str(rates[scope]).partition("/")
    return int(count), _PERIODS[period.strip()[:1]]


def client_ident(request: HttpRequest) -> str:
    # DRF's rule (REMOTE_ADDR, or X-Forwarded-For under NUM_PROXIES), as the API uses.
    return str(BaseThrottle().get_ident(cast(Any, request)))


def attempt_allowed(request: HttpRequest, scope: str = "login") -> tuple[bool, int]:
    """Count one attempt; (allowed, seconds until the count starts again).

    The window opens at a client's first attempt and lasts one period. cache.incr is
    atomic in Redis, so concurrent attempts on different workers are all counted (DRF's
    own throttles read, append and write back, and can undercount).
    """
    limit, period = login_rate(scope)
    now = time.time()
    key = f"throttle:{scope}:{client_ident(request)}"
    default_cache.add(f"{key}:start", now, timeout=period)
    default_cache.add(key, 0, timeout=period)
    try:
        count = default_cache.incr(key)
    except ValueError:  # expired between add and incr
        default_cache.set(key, 1, timeout=period)
        count = 1
    started = float(default_cache.get(f"{key}:start", now))
    return count <= limit, max(1, int(period - (now - started)))


@cache
def throttled_paths() -> dict[str, str]:
    """Path -> scope for the throttled forms that exist in this URLconf."""
    paths = {}
    for name, scope in THROTTLED_ROUTES.items():
        try:
            paths[reverse(name)] = scope
        except NoReverseMatch:
            continue
    return paths


def sign_in_paths() -> frozenset[str]:
    return frozenset(p for p, scope in throttled_paths().items() if scope == "login")


REFUSAL_MESSAGES = {
    "login": _("Too many sign-in attempts. Wait a minute, then try again."),
    "signup": _("Too many accounts were created from here. Wait a while, then try again."),
    "password_reset": _("Too many password reset requests. Wait a while, then try again."),
}


class LoginThrottleMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        scope = throttled_paths().get(request.path) if request.method == "POST" else None
        if scope is not None:
            allowed, wait = attempt_allowed(request, scope)
            if not allowed:
                return self.refused(request, wait, scope)
        return self.get_response(request)

    @staticmethod
    def refused(request: HttpRequest, wait: int, scope: str = "login") -> HttpResponse:
        logger.warning("account form throttled", extra={"path": request.path, "scope": scope})
        response = render(
            request,
            "403.html",
            {"message": str(REFUSAL_MESSAGES[scope])},
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response
