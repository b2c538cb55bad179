"""Write the photo gate's summary into the model card: ``card.json["gate"]``.

The card describes what the service does with a photo, and the service never scores
without its gate, so the card says which gate (``gate.json`` by its sha256) and how often
it refuses real crops in cross-validation and the negatives it was tried on. The full
figures stay in ``gate.json["evaluation"]``. Run after ``gate_fit`` or a retraining that
rewrites card.json:

    python -m ml.training.gate_card --site conjunctiva
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from ml.gate import GATE_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]


def _rate(refused: int, n: int) -> float:
    return round(refused / n, 3) if n else 0.0


def gate_section(gate_path: Path) -> dict[str, Any]:
    """The card's `gate` section for one gate.json."""
    blob = gate_path.read_bytes()
    evaluation = json.loads(blob)["evaluation"]
    cv = {
        how: {"n_images": r["n_images"], "refused": r["refused"], "refusal_rate": r["refusal_rate"]}
        for how, r in evaluation["real_crops_refused_in_cv"].items()
    }
    # Negatives by family ("scene_whole:landscape" -> "scene_whole"), so the card stays short.
    families: dict[str, dict[str, int]] = {}
    for name, r in evaluation["negatives"].items():
        f = families.setdefault(name.split(":", 1)[0], {"n": 0, "refused": 0})
        f["n"] += int(r["n"])
        f["refused"] += int(r["refused"])
    negatives = {
        name: {**f, "refusal_rate": _rate(f["refused"], f["n"])}
        for name, f in sorted(families.items())
    }
    return {
        "file": GATE_FILE,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "summary": "Before scoring, the photo gate (ml/gate.py) refuses photos unlike the "
        "training crops or too badly lit or outlined to judge (422 not_a_conjunctiva / "
        "not_fingernails / photo_quality); nothing is stored. Full figures: "
        "gate.json['evaluation'].",
        "cv": evaluation["cv"],
        "real_crops_refused_in_cv": cv,
        "negatives_refused": negatives,
        "negatives_note": evaluation.get("negatives_note", ""),
    }


def card_with_gate(card: dict[str, Any], gate_path: Path) -> dict[str, Any]:
    return {**card, "gate": gate_section(gate_path)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default="conjunctiva")
    args = parser.parse_args(argv)
    site_dir = REPO_ROOT / "model" / args.site
    card_path = site_dir / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card_path.write_text(
        json.dumps(card_with_gate(card, site_dir / GATE_FILE), indent=2) + "\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
