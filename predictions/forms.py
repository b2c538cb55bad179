"""Forms for the patient pages: the photo, signing up, a result's label.

The form only checks that a photo was sent: what makes an image acceptable (type by
its bytes, size, dimensions, an inner eyelid in it) is decided by the same service the
API calls, `predictions.services.prediction_create`, so there is one validation path.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from predictions.patients import LABEL_MAX_LENGTH


class PhotoForm(forms.Form):
    image = forms.FileField(
        label=_("Photo"),
        error_messages={"required": _("Choose a photo first.")},
        widget=forms.FileInput(
            attrs={"accept": "image/png,image/jpeg", "capture": "environment"}
        ),
    )
    # The radios are drawn by the template (home.html); the choices are the sites the
    # page offers. An unknown value falls back to the eyelid, as the API's default does.
    site = forms.ChoiceField(
        required=False,
        choices=[("conjunctiva", _("Inner eyelid")), ("fingernail", _("Fingernails"))],
    )
    # A fresh key in each rendered form: submitting the same page twice (a double click,
    # a resend after a lost connection) stores one result (predictions/idempotency.py).
    idempotency_key = forms.CharField(
        required=False, widget=forms.HiddenInput, initial=lambda: str(uuid.uuid4())
    )


class SignUpForm(UserCreationForm):
    """Django's sign-up form (username, password twice, its validators) plus an
    optional e-mail address, needed only to reset a forgotten password."""

    email = forms.EmailField(
        label=_("E-mail address (optional)"),
        required=False,
        help_text=_("Only used to send you a link if you forget your password."),
    )

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]
        fields = ("username", "email")


class LabelForm(forms.Form):
    """The optional "who is this for" label of one result (same rule as the service)."""

    label = forms.CharField(
        label=_("Who is this check for? (optional)"),
        help_text=_("For example a child's first name. Only you see it."),
        required=False,
        max_length=LABEL_MAX_LENGTH,
    )
