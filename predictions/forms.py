"""Forms for the patient pages.

The form only checks that a photo was sent: what makes an image acceptable (type by
its bytes, size, dimensions, an inner eyelid in it) is decided by the same service the
API calls, `predictions.services.prediction_create`, so there is one validation path.
"""

from __future__ import annotations

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _


class PhotoForm(forms.Form):
    image = forms.FileField(
        label=_("Photo of the inner eyelid"),
        error_messages={"required": _("Choose a photo first.")},
        widget=forms.FileInput(
            attrs={"accept": "image/png,image/jpeg", "capture": "environment"}
        ),
    )
    # A fresh key in each rendered form: submitting the same page twice (a double click,
    # a resend after a lost connection) stores one result (predictions/idempotency.py).
    idempotency_key = forms.CharField(
        required=False, widget=forms.HiddenInput, initial=lambda: str(uuid.uuid4())
    )
