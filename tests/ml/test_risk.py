from __future__ import annotations

import pytest

from ml.card import card_from_dict
from ml.risk import RECOMMENDATIONS, RiskLevel, assess_risk
from ml.runtime import ModelRegistry


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0.0, RiskLevel.LOW),
        (0.2999999, RiskLevel.LOW),
        (0.3, RiskLevel.MEDIUM),
        (0.5, RiskLevel.MEDIUM),
        (0.6999999, RiskLevel.MEDIUM),
        (0.7, RiskLevel.HIGH),
        (1.0, RiskLevel.HIGH),
    ],
)
def test_it_applies_the_default_thresholds(score: float, level: RiskLevel) -> None:
    assert assess_risk(score).level is level


def test_it_reads_thresholds_and_confidence_from_the_card() -> None:
    card = card_from_dict(
        {
            "site": "conjunctiva",
            "version": "x",
            "risk": {
                "thresholds": {"low": 0.2, "high": 0.6},
                "confidence_by_level": {"low": 0.8, "medium": 0.55, "high": 0.75},
            },
        }
    )
    assert assess_risk(0.2, card=card).level is RiskLevel.MEDIUM
    assert assess_risk(0.6, card=card).level is RiskLevel.HIGH
    result = assess_risk(0.1, card=card)
    assert result.level is RiskLevel.LOW
    assert result.confidence == 0.8
    assert assess_risk(0.65, card=card).confidence == 0.75


def test_confidence_is_not_the_score(registry: ModelRegistry) -> None:
    card = registry.get("conjunctiva").card
    low = assess_risk(0.01, card=card)
    also_low = assess_risk(0.29, card=card)
    assert low.confidence == also_low.confidence
    assert 0.0 < low.confidence <= 1.0


def test_each_level_has_its_recommendation() -> None:
    for level in RiskLevel:
        assert RECOMMENDATIONS[level]
    assert "blood test" in assess_risk(0.5).recommendation
    assert "blood test" in assess_risk(0.9).recommendation
    assert "not a diagnosis" in assess_risk(0.1).recommendation
    assert RiskLevel.HIGH.value == "high"


@pytest.mark.parametrize("score", [-0.1, 1.1, float("nan")])
def test_it_rejects_scores_that_are_not_probabilities(score: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        assess_risk(score)


def test_it_rejects_a_card_with_inverted_thresholds() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        card_from_dict(
            {"site": "s", "version": "v", "risk": {"thresholds": {"low": 0.7, "high": 0.3}}}
        )


@pytest.mark.parametrize("score", [0.05, 0.5, 0.95])
def test_the_fingernail_advice_speaks_to_the_adult_not_about_a_child(registry, score):
    fingernail = assess_risk(score, card=registry.get("fingernail").card)
    eyelid = assess_risk(score, card=registry.get("conjunctiva").card)
    assert "child" not in fingernail.recommendation
    assert fingernail.level == eyelid.level
    if fingernail.level is RiskLevel.LOW:
        assert "if you are tired" in fingernail.recommendation
        assert "the child" in eyelid.recommendation
