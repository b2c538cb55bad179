"""Patient copy: every word the pages and their script show, translated.

The pages (`predictions.views`) and the error templates read these tables. Each English
text is written once: the recommendations in ml.risk (Django-free, marked there for
makemessages), the disclaimer here, and the API (predictions.serializers) sends the
English of both.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from ml import risk
from predictions.models import RiskLevel

# Friendly, translated words for every error code the API and the service can produce
# (and a few only the page's script meets). The script gets the same table, so both
# paths say the same thing.
ERROR_MESSAGES: dict[str, Promise] = {
    "missing_image": _("Choose a photo first."),
    "unsupported_media_type": _(
        "This file is not a photo we can read. Choose a PNG or JPEG photo."
    ),
    "invalid_image": _(
        "The photo could not be read: it may be damaged or incomplete. "
        "Take or choose the photo again."
    ),
    "invalid_dimensions": _(
        "The photo is too small or too large (in pixels) to analyse. "
        "Take a new close-up photo with the phone's camera."
    ),
    "no_conjunctiva_found": _(
        "The inner eyelid could not be found in this photo. Pull the lower eyelid down, "
        "take the photo close up in daylight, or outline the inner eyelid yourself."
    ),
    "not_a_conjunctiva": _(
        "This does not look like a photo of the inside of the lower eyelid, so it was not "
        "analysed and nothing was kept. Take another photo."
    ),
    "not_fingernails": _(
        "This does not look like a photo of fingernails, so it was not analysed and "
        "nothing was kept. Take another photo."
    ),
    "photo_quality": _(
        "The colour in this photo cannot be read reliably, so it was not analysed and "
        "nothing was kept. Take another photo."
    ),
    "no_fingernail_found": _(
        "Fingernails cannot be found in the whole photo. Outline each nail yourself "
        "on the photo."
    ),
    "file_too_large": _("The photo is larger than %(max_mb)s MB. Choose a smaller photo."),
    "request_too_large": _("The photo is larger than %(max_mb)s MB. Choose a smaller photo."),
    "unknown_site": _("This kind of photo cannot be analysed here."),
    "malformed_request": _("The photo did not arrive correctly. Please try again."),
    "throttled": _(
        "Too many photos were sent in a short time. Wait a minute, then try again."
    ),
    "service_unavailable": _(
        "The service is busy or under maintenance. Please try again in a few minutes."
    ),
    "database_unavailable": _(
        "The service is busy or under maintenance. Please try again in a few minutes."
    ),
    "model_unavailable": _(
        "The service is busy or under maintenance. Please try again in a few minutes."
    ),
    "malware_detected": _(
        "This file was stopped by our safety check and was not analysed. "
        "Take a new photo with the phone's camera and try again."
    ),
    "scanner_unavailable": _(
        "The service is busy or under maintenance. Please try again in a few minutes."
    ),
    "csrf_failed": _("This page has expired. Reload the page and try again."),
    "internal_error": _("Something went wrong on our side. Please try again later."),
    "network": _(
        "The photo could not be sent. Check your internet connection and try again."
    ),
    "outline_too_small": _(
        "Place at least 3 points around the edge of the inner eyelid, then try again."
    ),
    "nail_outline_too_small": _(
        "Place at least 3 points around the edge of a nail, then try again."
    ),
    "default": _("Something went wrong. Please try again."),
}

# Why the photo gate refused a photo (ml.gate.REASONS), in the patient's language: the
# English of ml.gate.ADVICE for the inner eyelid (the pages' site), except
# unlike_training_photos, whose page message already says "does not look like" and which
# gets ml.gate.HOW_TO instead.
REJECTION_ADVICE: dict[str, Promise] = {
    "mask_too_small": _(
        "The marked area is too small. Move closer or zoom in so that the inner lower "
        "eyelid fills more of the photo, then mark it again."
    ),
    "mask_too_thin": _(
        "The marked area is too thin to read its colour. Mark the whole pink-red area, "
        "not just a line along it."
    ),
    "too_dark": _(
        "The photo is too dark. Take it again in bright daylight or a well-lit room, "
        "without covering the light."
    ),
    "too_bright": _(
        "The photo is too bright or washed out by the flash. Take it again without flash, "
        "out of direct sunlight."
    ),
    "clipped": _(
        "Parts of the photo are pure white or pure black, so their colour is lost. Take it "
        "again without flash and without strong light shining on it."
    ),
    "colour_cast": _(
        "The light gives the photo a strong colour tint (too blue or too orange). Take it "
        "again in daylight, not under coloured or yellow lamps, and without photo filters."
    ),
    "washed_out": _(
        "The colours in the photo look grey. Take it again in daylight without filters or "
        "black-and-white mode."
    ),
    "no_texture": _(
        "The marked area is one flat colour, not a real photo of the inner lower eyelid. "
        "Take a photo of the inner lower eyelid itself."
    ),
    "outline_needed": _(
        "We could not find the inner lower eyelid in the photo with confidence. Please "
        "outline it yourself: draw around the pink-red area."
    ),
    "unlike_training_photos": _(
        "Gently pull the lower eyelid down and photograph the pink-red inside of it, close "
        "up and in good light, then outline that area."
    ),
}

# The body sites in words (result, history, the page's choice). The model keys are the
# API's `site` values.
SITE_LABELS: dict[str, Promise] = {
    "conjunctiva": _("Inner eyelid"),
    "fingernail": _("Fingernails"),
}
SITE_HINTS: dict[str, Promise] = {
    "conjunctiva": _("For young children (6 months to 5 years)."),
    "fingernail": _("For adults."),
}


def site_label(site: str) -> str:
    """The site in the patient's words; an unknown site is shown as stored."""
    label = SITE_LABELS.get(site)
    return str(label) if label is not None else site


# What the page's script needs to say while it works (errors come from ERROR_MESSAGES).
SCRIPT_TEXT: dict[str, Promise] = {
    "loading": _("Opening the photo…"),
    "ready": _("Photo ready. Tap or click the edge of the inner eyelid to place points."),
    "points": _("Points placed: %(count)s."),
    "preparing": _("Preparing the outlined area…"),
    "sending": _("Sending and analysing the photo. This can take a moment…"),
    "done": _("Done. Opening your result…"),
    "canvas_label": _(
        "The chosen photo. Tap or click to place points around the inner eyelid; "
        "drag a point to move it; drag elsewhere to move the photo."
    ),
}

# ml/ stays free of Django and returns English (its strings are marked for makemessages
# there); the page shows the translation of the level's text.
RECOMMENDATIONS: dict[str, Promise] = {
    level.value: _(text) for level, text in risk.RECOMMENDATIONS.items()
}

# The fingernail model is for adults: its low-risk advice speaks to the person themself,
# not about "the child" (ml.risk's texts, stored with every result, are the eyelid's).
FINGERNAIL_RECOMMENDATIONS: dict[str, Promise] = {
    level.value: _(text) for level, text in risk.ADULT_RECOMMENDATIONS.items()
}


def recommendation(*, site: str, risk_level: str) -> Promise:
    """The result page's advice for this site and level, translated."""
    table = FINGERNAIL_RECOMMENDATIONS if site == "fingernail" else RECOMMENDATIONS
    return table[risk_level]


RISK_LABELS: dict[str, Promise] = {
    RiskLevel.LOW: _("Low risk"),
    RiskLevel.MEDIUM: _("Medium risk"),
    RiskLevel.HIGH: _("High risk"),
}

# The API sends the English (predictions.serializers.DISCLAIMER); the pages translate it.
DISCLAIMER_ENGLISH: str = gettext_noop(
    "This is a screening aid, not a diagnosis. Only a blood test (haemoglobin) can "
    "confirm or rule out anemia: talk to a health professional."
)
DISCLAIMER: Promise = _(DISCLAIMER_ENGLISH)

# The English messages predictions/handlers.py gives the error templates, which show them
# through {% translate message %}; listed here so makemessages keeps them in the catalog.
ERROR_PAGE_MESSAGES = (
    gettext_noop("The request could not be understood."),
    gettext_noop("You do not have access to this."),
    gettext_noop("Nothing was found at this address."),
    gettext_noop("An unexpected error occurred."),
    gettext_noop("Your session expired or the form was stale. Reload the page and try again."),
)
