"""Forms for the patient pages.

The form only checks that a photo was sent: what makes an image acceptable (type by
its bytes, size, dimensions, an inner eyelid in it) is decided by the same service the
API calls, `predictions.services.prediction_create`, so there is one validation path.
"""

from __future__ import annotations

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
