"""The model card names the photo gate the service runs (model/<site>/card.json "gate")."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ml.card import load_card
from ml.gate import GATE_FILE
from ml.training.gate_card import gate_section

SITE_DIR = Path(__file__).resolve().parents[2] / "model" / "conjunctiva"


def test_the_card_names_the_shipped_gate_by_its_sha256():
    card = load_card(SITE_DIR / "card.json")
    gate = card.raw["gate"]
    assert gate["file"] == GATE_FILE
    assert gate["sha256"] == hashlib.sha256((SITE_DIR / GATE_FILE).read_bytes()).hexdigest()


def test_the_cards_gate_figures_are_those_of_gate_json():
    card = json.loads((SITE_DIR / "card.json").read_text())
    assert card["gate"] == gate_section(SITE_DIR / GATE_FILE)
    evaluation = json.loads((SITE_DIR / GATE_FILE).read_text())["evaluation"]
    refused = card["gate"]["real_crops_refused_in_cv"]
    for how in ("provided", "automatic"):
        assert refused[how]["refusal_rate"] == evaluation["real_crops_refused_in_cv"][how][
            "refusal_rate"
        ]
    # The targets: at most 3% of real outlined crops, 8% automatic.
    assert refused["provided"]["refusal_rate"] <= 0.03
    assert refused["automatic"]["refusal_rate"] <= 0.08
