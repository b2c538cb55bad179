"""The shipped model is the one the training run evaluated, and its card's evidence holds.

The model is trained on every open subject, so there is no held-out split to re-score.
These tests fail instead if the artefact were wrong or swapped: the outputs on a fixed
set of open images must equal what the training run recorded, the graph's features must
equal the NumPy recipe's, P(anemic) and the Hb estimate must never contradict, and the
cross-validated interval coverage in the card must reach 85%.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from ml.images import DecodedImage, ImageHeader, decode_image
from ml.risk import RiskLevel, assess_risk
from ml.runtime import Interpreter, Model, ModelRegistry
from ml.training.features import features_from_table, pixel_table

P_TOLERANCE = 1e-4
# The Hb figures are rounded to 0.1 g/dL; another interpreter build may round the other way.
HB_TOLERANCE = 0.1 + 1e-9


@pytest.fixture(scope="module")
def model(registry: ModelRegistry) -> Model:
    return registry.get("conjunctiva")


def test_it_is_version_2(model: Model) -> None:
    assert model.card.version == "conjunctiva-2.0.0"
    assert model.card.raw["history"][0]["version"] == "conjunctiva-1.0.0"


def test_it_reproduces_the_outputs_the_training_run_recorded(
    model: Model, dataset_dir: Path
) -> None:
    reference = model.card.raw["reference_outputs"]["images"]
    assert len(reference) >= 10
    probabilities = []
    for ref in reference:
        data = (dataset_dir / ref["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == ref["sha256"], ref["file"]
        out = model.predict(decode_image(data))
        assert out.segmentation == "provided"
        assert out.probability == pytest.approx(ref["probability"], abs=P_TOLERANCE), ref["file"]
        assert out.hb_estimate_g_dl == pytest.approx(ref["hb_estimate_g_dl"], abs=HB_TOLERANCE)
        for got, want in zip(out.hb_interval_g_dl, ref["hb_interval_g_dl"], strict=True):
            assert got == pytest.approx(want, abs=HB_TOLERANCE), ref["file"]
        probabilities.append(out.probability)
    assert len({round(p, 3) for p in probabilities}) > 3  # a constant model would pass above


def _columns(model_dir: Path, tensor: np.ndarray, columns: list[str]) -> dict[str, float]:
    """All output columns of the shipped .tflite, by name (the runtime reads only three)."""
    blob = (model_dir / "conjunctiva" / "model.tflite").read_bytes()
    interpreter = Interpreter(model_content=blob, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
    interpreter.invoke()
    out = np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    return dict(zip(columns, out.reshape(-1).tolist(), strict=True))


def test_the_graphs_features_match_the_numpy_recipe(
    model: Model, model_dir: Path, dataset_dir: Path
) -> None:
    card = model.card.raw
    thresholds = np.array(card["model"]["feature_thresholds"], dtype=np.float32)
    widths = np.array(card["model"]["feature_widths"], dtype=np.float32)
    names = card["model"]["features"]
    for ref in card["reference_outputs"]["images"][:5]:
        tensor, _ = model.prepare(decode_image((dataset_dir / ref["file"]).read_bytes()))
        cols = _columns(model_dir, tensor, card["output"]["columns"])
        got = np.array([cols[f"feature:{n}"] for n in names])
        want = features_from_table(*pixel_table(tensor[0]), thresholds, widths)
        rel = np.abs(got - want) / (np.abs(want) + 1e-2)
        assert rel.max() < 1e-3, (ref["file"], names[int(rel.argmax())])


def _random_images(n: int) -> list[DecodedImage]:
    rng = np.random.default_rng(13)
    images = []
    for _ in range(n):
        base = rng.integers(60, 230, 3)
        rgb = np.clip(base + rng.normal(0, 25, (96, 128, 3)), 0, 255).astype(np.uint8)
        mask = np.zeros((96, 128), np.uint8)
        mask[10:86, 8:120] = 255
        images.append(DecodedImage(rgb=rgb, mask=mask, header=ImageHeader("png", 128, 96, True, 8)))
    return images


def test_the_risk_level_and_the_hb_estimate_never_contradict(
    model: Model, dataset_dir: Path
) -> None:
    cutoff = float(model.card.raw["hb"]["cutoff_g_dl"])
    images = _random_images(60) + [
        decode_image((dataset_dir / ref["file"]).read_bytes())
        for ref in model.card.raw["reference_outputs"]["images"]
    ]
    levels = set()
    for image in images:
        out = model.predict(image)
        low, high = out.hb_interval_g_dl
        assert low <= out.hb_estimate_g_dl <= high
        level = assess_risk(out.probability, card=model.card).level
        levels.add(level)
        if level is RiskLevel.HIGH:
            assert out.hb_estimate_g_dl < cutoff, (out.probability, out.hb_estimate_g_dl)
        if level is RiskLevel.LOW:
            assert out.hb_estimate_g_dl >= cutoff, (out.probability, out.hb_estimate_g_dl)
    assert len(levels) >= 2  # the check saw more than one side of the cut-off


def test_the_cards_cv_interval_coverage_is_at_least_85_percent(model: Model) -> None:
    card = model.card.raw
    hb = card["hb"]["evaluation"]
    assert hb["interval_coverage"] >= 0.85
    assert card["hb"]["interval"]["level"] == 0.9
    folds = card["evaluation"]["per_fold"]
    assert len(folds) >= 10
    coverages = [f["interval_coverage"] for f in folds]
    assert np.mean(coverages) >= 0.85
    assert card["evaluation"]["p_vs_hb_contradictions"] == 0


def test_the_card_documents_what_a_user_must_know(model: Model) -> None:
    card = model.card.raw
    assert "not a diagnosis" in card["intended_use"].lower()
    assert "ghana" in card["intended_use"].lower()
    assert card["limitations"]
    assert card["input"]["shape"] == [1, 112, 112, 4]
    assert set(card["risk"]["confidence_by_level"]) == {"low", "medium", "high"}
    evaluation = card["evaluation"]
    assert evaluation["auc"]["mean"] > 0.5
    assert evaluation["auc_automatic"]["mean"] > 0.5
    assert card["training"]["grouping"]["groups_spanning_several_subject_ids"] >= 14
    for key in ("mae_g_dl", "bias_g_dl", "limits_of_agreement_g_dl", "interval_mean_width_g_dl"):
        assert key in card["hb"]["evaluation"]
