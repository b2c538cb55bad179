"""Risk rules: a model probability becomes a level, a confidence and a recommendation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ml.card import DEFAULT_HIGH_THRESHOLD, DEFAULT_LOW_THRESHOLD, ModelCard


class RiskLevel(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def gettext_noop(message: str) -> str:
    """Mark a string for translation without importing Django.

    Django's makemessages extracts the literal inside any call named gettext_noop, so
    the English below is the one source of these strings: the pages look each one up
    in the catalogue (predictions.patient_copy), the API returns it as it is.
    """
    return message


# Kept as constants so the pages can translate them (the key is the level's value).
RECOMMENDATIONS: dict[RiskLevel, str] = {
    RiskLevel.LOW: gettext_noop(
        "No sign of anemia was found in this photo. This is a screening aid, not a diagnosis: "
        "if the child is tired, pale, short of breath or unwell, see a clinician and ask for "
        "a blood test."
    ),
    RiskLevel.MEDIUM: gettext_noop(
        "The result is uncertain. Get a blood test (haemoglobin) at a clinic or health centre "
        "to know whether there is anemia."
    ),
    RiskLevel.HIGH: gettext_noop(
        "Signs of anemia were found. See a health professional soon for a blood test "
        "(haemoglobin); only a blood test can confirm anemia."
    ),
}

# The fingernail model is for adults: its low-risk advice speaks to the person themself.
ADULT_RECOMMENDATIONS: dict[RiskLevel, str] = {
    **RECOMMENDATIONS,
    RiskLevel.LOW: gettext_noop(
        "No sign of anemia was found in this photo. This is a screening aid, not a "
        "diagnosis: if you are tired, pale, short of breath or unwell, see a clinician "
        "and ask for a blood test."
    ),
}
ADULT_SITES = frozenset({"fingernail"})

# Used only when a card carries no evaluated confidence (no held-out evaluation yet).
_NO_CONFIDENCE = 0.0


@dataclass(frozen=True)
class RiskAssessment:
    level: RiskLevel
    confidence: float
    recommendation: str


def level_for(
    score: float, low: float = DEFAULT_LOW_THRESHOLD, high: float = DEFAULT_HIGH_THRESHOLD
) -> RiskLevel:
    """score < low -> LOW; low <= score < high -> MEDIUM; score >= high -> HIGH."""
    if score < low:
        return RiskLevel.LOW
    if score < high:
        return RiskLevel.MEDIUM
    return RiskLevel.HIGH


def assess_risk(score: float, *, card: ModelCard | None = None) -> RiskAssessment:
    """Map a probability to a risk level.

    ``confidence`` is not the score: it is the card's ``risk.confidence_by_level`` figure
    for that level, measured on held-out subjects (see the card for the definition).
    """
    if not 0.0 <= score <= 1.0 or score != score:
        raise ValueError(f"score must be a probability in [0, 1], got {score!r}")
    if card is None:
        low, high = DEFAULT_LOW_THRESHOLD, DEFAULT_HIGH_THRESHOLD
        confidences: dict[str, float] = {}
    else:
        low, high = card.thresholds
        confidences = card.confidence_by_level
    level = level_for(score, low, high)
    confidence = float(confidences.get(level.value, _NO_CONFIDENCE))
    adult = card is not None and card.site in ADULT_SITES
    table = ADULT_RECOMMENDATIONS if adult else RECOMMENDATIONS
    return RiskAssessment(level=level, confidence=confidence, recommendation=table[level])
