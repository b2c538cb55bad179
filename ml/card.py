"""The model card (card.json) that travels with each shipped model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_LOW_THRESHOLD = 0.3
DEFAULT_HIGH_THRESHOLD = 0.7


class CardError(ValueError):
    """card.json is missing, unreadable or lacks a required field."""


@dataclass(frozen=True)
class ModelCard:
    site: str
    version: str
    condition: str
    thresholds: tuple[float, float]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def input(self) -> dict[str, Any]:
        section = self.raw.get("input", {})
        return section if isinstance(section, dict) else {}

    @property
    def confidence_by_level(self) -> dict[str, float]:
        risk = self.raw.get("risk", {})
        levels = risk.get("confidence_by_level", {}) if isinstance(risk, dict) else {}
        return {str(k): float(v) for k, v in levels.items()} if isinstance(levels, dict) else {}


def card_from_dict(raw: dict[str, Any]) -> ModelCard:
    try:
        site = str(raw["site"])
        version = str(raw["version"])
    except KeyError as exc:
        raise CardError(f"card.json lacks the required field {exc.args[0]!r}") from exc
    risk = raw.get("risk", {}) or {}
    thr = risk.get("thresholds", {}) if isinstance(risk, dict) else {}
    low = float(thr.get("low", DEFAULT_LOW_THRESHOLD))
    high = float(thr.get("high", DEFAULT_HIGH_THRESHOLD))
    if not 0.0 < low < high < 1.0:
        raise CardError(
            f"card.json risk thresholds must satisfy 0 < low < high < 1, got {low}, {high}"
        )
    return ModelCard(
        site=site,
        version=version,
        condition=str(raw.get("condition", "anemia")),
        thresholds=(low, high),
        raw=raw,
    )


def load_card(path: Path) -> ModelCard:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CardError(f"{path} does not exist") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CardError(f"{path} must hold a JSON object")
    return card_from_dict(raw)
