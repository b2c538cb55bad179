"""Patient pages (templates).

The analysis itself is `predictions.services.prediction_create`, the same service the
API calls; who may see a result is `predictions.selectors.prediction_list`. These views
only translate between the two and the patient: every error is shown in words, in the
patient's language, never as JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from ml.gate import PhotoRejected
from ml.images import ImageError
from predictions import charts, idempotency, selectors
from predictions.audit.access import predictions_accessed
from predictions.errors import database_outage, status_for
from predictions.exceptions import ApplicationError, UploadTooLarge
from predictions.forms import LabelForm, PhotoForm
from predictions.patient_copy import (
    DISCLAIMER,
    ERROR_MESSAGES,
    REJECTION_ADVICE,
    RISK_LABELS,
    SCRIPT_TEXT,
    SITE_HINTS,
    SITE_LABELS,
    recommendation,
    site_label,
)
from predictions.throttles import PredictAnonThrottle, PredictUserThrottle

logger = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 20
# The chart shows at most this many of the latest results (the list pages through all).
CHART_MAX_POINTS = 100
# How long the form waits for a request in flight with the same Idempotency-Key.
PAGE_WAIT_SECONDS = 20.0


def max_upload_mb() -> str:
    return f"{settings.MAX_UPLOAD_BYTES / (1024 * 1024):.3g}"


def error_message(code: str) -> str:
    text = str(ERROR_MESSAGES.get(code, ERROR_MESSAGES["default"]))
    return text % {"max_mb": max_upload_mb()} if "%(max_mb)s" in text else text


def _script_config(request: HttpRequest) -> dict[str, Any]:
    return {
        "predictUrl": reverse("predict"),
        "resultUrl": reverse("result", kwargs={"message_id": "__id__"}),
        "maxBytes": settings.MAX_UPLOAD_BYTES,
        "messages": {code: error_message(code) for code in ERROR_MESSAGES},
        "text": {key: str(text) for key, text in SCRIPT_TEXT.items()},
    }


def _upload_page(
    request: HttpRequest,
    *,
    form: PhotoForm | None = None,
    error_code: str | None = None,
    reasons: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form or PhotoForm(),
        "error": error_message(error_code) if error_code else None,
        "error_code": error_code,
        "error_reasons": reasons or [],
        "error_advice": [REJECTION_ADVICE[r] for r in reasons or [] if r in REJECTION_ADVICE],
        "max_upload_mb": max_upload_mb(),
        "script_config": _script_config(request),
        "site_choices": [(site, SITE_LABELS[site], SITE_HINTS[site]) for site in SITE_LABELS],
        "chosen_site": (form.data.get("site") if form is not None else None) or "conjunctiva",
    }
    return render(request, "predictions/home.html", context, status=status)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return _upload_page(request)


@csrf_exempt  # CSRF is checked by _analyse, once the upload has been read within its limit
@require_http_methods(["GET", "POST"])
def analyse(request: HttpRequest) -> HttpResponseBase:
    """The form without JavaScript: the whole photo, segmented by the server.

    Reading the body here, before the CSRF check, lets an oversized upload get a page
    that says so rather than a server error: the CSRF middleware would otherwise parse
    the body first and the size limit would surface as an unhandled exception. Nothing
    is changed before the CSRF check passes.
    """
    if request.method == "GET":
        return redirect("home")
    try:
        request.FILES  # noqa: B018 - parses the multipart body within the size limit
    except UploadTooLarge:
        return _upload_page(request, error_code="file_too_large", status=413)
    except RequestDataTooBig:
        return _upload_page(request, error_code="request_too_large", status=413)
    except (MultiPartParserError, SuspiciousOperation):
        return _upload_page(request, error_code="malformed_request", status=400)
    return _analyse(request)


@csrf_protect
def _analyse(request: HttpRequest) -> HttpResponseBase:
    form = PhotoForm(request.POST, request.FILES)
    if not form.is_valid():
        return _upload_page(request, form=form, error_code="missing_image", status=400)
    for throttle in (PredictAnonThrottle(), PredictUserThrottle()):
        # The API's throttles, so the page is not a way around them.
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            return _upload_page(request, error_code="throttled", status=429)
    try:
        key = idempotency.key_parse(form.cleaned_data["idempotency_key"] or None)
        prediction = idempotency.prediction_create_once(
            key=key,
            scope=idempotency.caller_scope(request) if key is not None else "",
            image_bytes=form.cleaned_data["image"].read(),
            site=form.cleaned_data["site"] or "conjunctiva",
            owner=request.user,
            request_id=getattr(request, "request_id", ""),
            # A double submit: the browser shows the second answer, so it waits for
            # the first one's result rather than showing an error.
            wait_seconds=PAGE_WAIT_SECONDS,
        ).prediction
    except idempotency.IdempotencyKeyInFlight:
        return _upload_page(request, error_code="service_unavailable", status=409)
    except (idempotency.IdempotencyKeyInvalid, idempotency.IdempotencyKeyReused):
        # Only a stale or altered page sends these; the page shown has a fresh key.
        return _upload_page(request, error_code="malformed_request", status=400)
    except PhotoRejected as exc:
        # The gate's reasons, in the patient's language; nothing was stored.
        return _upload_page(
            request, error_code=exc.code, reasons=exc.reasons, status=status_for(exc.code)
        )
    except (ImageError, ApplicationError) as exc:
        return _upload_page(request, error_code=exc.code, status=status_for(exc.code))
    except DatabaseError as exc:
        outage = database_outage(exc, where="during a page upload")
        if outage is None:
            raise
        return _upload_page(request, error_code=outage.code, status=status_for(outage.code))
    if not request.user.is_authenticated:
        selectors.session_remember(request.session, prediction.message_id)
    return redirect("result", message_id=prediction.message_id)


def _visible_predictions(request: HttpRequest) -> Any:
    return selectors.prediction_list(
        user=request.user,
        session_message_ids=selectors.session_message_ids(request.session),
    )


@never_cache  # health data: not kept by the browser or a proxy (shared phones)
@require_GET
def result(request: HttpRequest, message_id: str) -> HttpResponse:
    # A result the caller may not see is a 404, not a 403: the id reveals nothing.
    prediction = get_object_or_404(_visible_predictions(request), message_id=message_id)
    # Staff reading someone's result here is audited like a read through the API.
    predictions_accessed(request=request, predictions=[prediction], via="page")
    own = selectors.own_prediction_list(
        user=request.user, session_message_ids=selectors.session_message_ids(request.session)
    )
    is_own = own.filter(pk=prediction.pk).exists()
    return render(
        request,
        "predictions/result.html",
        {
            "prediction": prediction,
            # The owner's controls (label, delete): staff reading others' see neither.
            "is_own": is_own,
            "label_form": LabelForm(initial={"label": prediction.label or ""})
            if is_own and request.user.is_authenticated
            else None,
            "risk_label": RISK_LABELS[prediction.risk_level],
            "recommendation": recommendation(
                site=prediction.site, risk_level=prediction.risk_level
            ),
            "site_label": site_label(prediction.site),
            "confidence_percent": round(prediction.confidence * 100),
            "disclaimer": DISCLAIMER,
        },
    )


@never_cache
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """The caller's own results (staff included: this is not the audit view), as a
    chart and a list: a signed-in patient's, or an anonymous browser session's."""
    predictions = selectors.own_prediction_list(
        user=request.user, session_message_ids=selectors.session_message_ids(request.session)
    )
    page = Paginator(predictions, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(p, RISK_LABELS[p.risk_level], site_label(p.site)) for p in page.object_list]
    series = selectors.history_series(queryset=predictions, limit=CHART_MAX_POINTS)
    score_samples = [
        charts.Sample(s.created_at, s.risk_score, s.risk_level, str(RISK_LABELS[s.risk_level]))
        for s in series
    ]
    hb_samples = [
        charts.Sample(s.created_at, s.hb_estimate_g_dl)
        for s in series
        if s.hb_estimate_g_dl is not None
    ]
    return render(
        request,
        "predictions/history.html",
        {
            "page": page,
            "rows": rows,
            "series": [(s, RISK_LABELS[s.risk_level]) for s in series],
            "score_chart": charts.score_chart(score_samples),
            "hb_chart": charts.hb_chart(hb_samples),
            "risk_labels": RISK_LABELS,
            "chart_limit": CHART_MAX_POINTS,
        },
    )
