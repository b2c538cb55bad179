"""Throttle sign-in attempts on every sign-in form: patients', the admin's and DRF's.

A middleware rather than a decorator on each view, so that the three sign-in pages
(`login`, `admin:login`, `rest_framework:login`) are covered by one rule, whoever owns
their views. Attempts (POSTs) are counted per client address in Django's default cache
(Redis when REDIS_URL is set, so the count holds across gunicorn workers), at the
`login` rate of REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (THROTTLE_LOGIN, default
10/minute). Past it, the sign-in page answers 429 with Retry-After and checks no
password at all.
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
from django.utils.translation import gettext as _
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

SIGN_IN_ROUTES = ("login", "admin:login", "rest_framework:login")
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def login_rate() -> tuple[int, int]:
    """(attempts, seconds) from the `login` throttle rate, e.g. "10/minute"."""
    rates = cast(dict[str, Any], settings.REST_FRAMEWORK)["DEFAULT_THROTTLE_RATES"]
    count, _, period = str(rates["login"]).partition("/")
    return int(count), _PERIODS[period.strip()[:1]]


def client_ident(request: HttpRequest) -> str:
    # DRF's rule (REMOTE_ADDR, or X-Forwarded-For under NUM_PROXIES), as the API uses.
    return str(BaseThrottle().get_ident(cast(Any, request)))


def attempt_allowed(request: HttpRequest) -> tuple[bool, int]:
    """Count one attempt; (allowed, seconds until the count starts again).

    The window opens at a client's first attempt and lasts one period. cache.incr is
    atomic in Redis, so concurrent attempts on different workers are all counted (DRF's
    own throttles read, append and write back, and can undercount).
    """
    limit, period = login_rate()
    now = time.time()
    key = f"throttle:login:{client_ident(request)}"
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
def sign_in_paths() -> frozenset[str]:
    paths = set()
    for name in SIGN_IN_ROUTES:
        try:
            paths.add(reverse(name))
        except NoReverseMatch:
            continue
    return frozenset(paths)


class LoginThrottleMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path in sign_in_paths():
            allowed, wait = attempt_allowed(request)
            if not allowed:
                return self.refused(request, wait)
        return self.get_response(request)

    @staticmethod
    def refused(request: HttpRequest, wait: int) -> HttpResponse:
        logger.warning("sign-in throttled", extra={"path": request.path})
        response = render(
            request,
            "403.html",
            {"message": _("Too many sign-in attempts. Wait a minute, then try again.")},
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response
