"""The shipped model, re-evaluated on its held-out subjects through the service's runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.runtime import ModelRegistry
from ml.training.evaluate import heldout_samples, score_masked
from ml.training.metrics import roc_auc

TOLERANCE = 0.02


def test_the_shipped_model_reaches_its_card_auc_on_held_out_subjects(
    registry: ModelRegistry, dataset_dir: Path
) -> None:
    model = registry.get("conjunctiva")
    card = model.card.raw
    claimed = card["evaluation"]["masked_crops"]["auc"]
    samples = heldout_samples(dataset_dir, card, "conjunctiva")
    assert len(samples) == card["evaluation"]["n_subjects"]
    y = [s.label for s in samples]
    assert 0 < sum(y) < len(y)
    auc = roc_auc(np.array(y), score_masked(model, dataset_dir, samples))
    assert auc >= claimed - TOLERANCE, f"held-out AUC {auc:.3f} < card {claimed} - {TOLERANCE}"


def test_no_held_out_subject_was_used_for_training(
    registry: ModelRegistry, dataset_dir: Path
) -> None:
    card = registry.get("conjunctiva").card.raw
    held = set(card["split"]["heldout_subject_ids"])
    samples = heldout_samples(dataset_dir, card, "conjunctiva")
    assert {s.subject_id for s in samples} == held
    assert all(s.qc_flag == "ok" for s in samples)  # duplicate-free subjects only


def test_the_card_documents_what_a_user_must_know(registry: ModelRegistry) -> None:
    card = registry.get("conjunctiva").card.raw
    assert "not a diagnosis" in card["intended_use"].lower()
    assert "ghana" in card["intended_use"].lower()
    assert card["limitations"]
    assert card["input"]["shape"] == [1, 224, 224, 4]
    assert set(card["risk"]["confidence_by_level"]) == {"low", "medium", "high"}
    assert card["evaluation"]["automatic_segmentation"]["auc"] is not None
    assert card["cross_validation"] is None or card["cross_validation"]["folds"] == 5
