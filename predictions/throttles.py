"""Rate limits on analysis, shared by the API and the page form (so neither is a way
around the other)."""

from __future__ import annotations

from rest_framework import throttling


class PredictAnonThrottle(throttling.AnonRateThrottle):
    scope = "predict_anon"


class PredictUserThrottle(throttling.UserRateThrottle):
    scope = "predict_user"


class TokenThrottle(throttling.AnonRateThrottle):
    """POST /api/token: password attempts per client address (a guessing brake)."""

    scope = "token"
