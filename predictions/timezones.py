"""The patient's time zone, for the dates the pages show.

The pages' script (static/js/patient.js) stores the browser's IANA time zone
(`Intl.DateTimeFormat().resolvedOptions().timeZone`) in a small cookie; this
middleware activates it for the request when it names a zone zoneinfo knows, and
leaves Django's default (UTC) otherwise. Nothing is stored server-side.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

COOKIE_NAME = "hg_tz"
MAX_LENGTH = 64


@cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_from_cookie(value: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone a cookie names, or None for anything zoneinfo does not list."""
    if not value or len(value) > MAX_LENGTH or value not in known_zones():
        return None
    try:
        return zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class PatientTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = zone_from_cookie(request.COOKIES.get(COOKIE_NAME))
        if zone is None:
            timezone.deactivate()
            return self.get_response(request)
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
