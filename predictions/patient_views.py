"""Patient pages about the account and the patient's own data: signing up and in
(the browser's anonymous results carried into the account), the privacy page, erasing
results, forgetting this device, labelling a result.

Writes go through `predictions.patients`; what is the caller's own is
`predictions.selectors.own_prediction_list`: a signed-in patient's rows, or what this
browser session checked anonymously. Anything else is a 404, staff included: erasure
here is the patient's right over their own data (staff erase through the admin, where
it is a superuser's permission and audited).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, redirect_to_login
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from predictions import patients, selectors
from predictions.forms import LabelForm, SignUpForm
from predictions.models import Prediction


def _own(request: HttpRequest) -> QuerySet[Prediction]:
    return selectors.own_prediction_list(
        user=request.user, session_message_ids=selectors.session_message_ids(request.session)
    )


class SignInView(LoginView):
    """Django's sign-in view; the results checked anonymously just before come along."""

    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        ids = selectors.session_message_ids(self.request.session)
        response = super().form_valid(form)  # login() keeps the session's data
        self.request.session[selectors.SESSION_KEY] = ids
        patients.session_results_claim(request=self.request, user=form.get_user(), how="sign-in")
        return response


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponseBase:
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        patients.session_results_claim(request=request, user=user, how="sign-up")
        messages.success(request, _("Your account is ready. Your results are kept here."))
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form})


@require_GET
def favicon(request: HttpRequest) -> HttpResponseBase:
    # Browsers ask for /favicon.ico whatever the pages link; the file is a static one.
    response = redirect(static("favicon.ico"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


@require_GET
def privacy(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "predictions/privacy.html",
        {"audit_retention_days": settings.AUDITLOG_RETENTION_DAYS},
    )


@never_cache
@require_http_methods(["GET", "POST"])
def result_delete(request: HttpRequest, message_id: str) -> HttpResponseBase:
    """GET asks to confirm; POST (with the CSRF token) erases the result."""
    prediction = get_object_or_404(_own(request), message_id=message_id)
    if request.method == "POST":
        patients.patient_results_delete(
            request=request, queryset=Prediction.objects.filter(pk=prediction.pk)
        )
        messages.success(request, _("The result was deleted."))
        return redirect("history")
    return render(request, "predictions/delete_confirm.html", {"prediction": prediction})


@never_cache
@require_http_methods(["GET", "POST"])
def history_delete(request: HttpRequest) -> HttpResponseBase:
    """Erase every result of the caller's (confirmation first)."""
    own = _own(request)
    if request.method == "POST":
        count = patients.patient_results_delete(request=request, queryset=own)
        messages.success(
            request,
            _("All your results were deleted (%(count)s).") % {"count": count},
        )
        return redirect("history")
    return render(request, "predictions/delete_confirm.html", {"count": own.count()})


@require_POST
def forget_device(request: HttpRequest) -> HttpResponseBase:
    """End this browser's anonymous session (a signed-in patient signs out instead)."""
    if not request.user.is_authenticated:
        patients.session_forget(session=request.session)
        messages.success(request, _("This device no longer shows your results."))
    return redirect("history")


@require_POST
def result_label(request: HttpRequest, message_id: str) -> HttpResponseBase:
    """Set the "who is this for" label of a signed-in patient's own result."""
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("result", kwargs={"message_id": message_id}))
    prediction = get_object_or_404(
        selectors.own_prediction_list(user=request.user), message_id=message_id
    )
    form = LabelForm(request.POST)
    if form.is_valid():
        patients.prediction_label_set(
            prediction=prediction, user=request.user, label=form.cleaned_data["label"]
        )
        messages.success(request, _("The label was saved."))
    else:
        messages.error(request, " ".join(str(e) for e in form.errors.get("label", [])))
    return redirect("result", message_id=prediction.message_id)
