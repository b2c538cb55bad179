"""The fingernail model: loaded by the registry, refusing photos without nail outlines, and
giving on open photos exactly what its card recorded. No mocked model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.fingernail import NoFingernailFound
from ml.images import ImageError, decode_image
from ml.preprocess import InputSpec
from ml.runtime import Interpreter, ModelRegistry
from ml.training.features import POOL, feature_names
from ml.training.nails import (
    erode_mask,
    label_for,
    load_nail_samples,
    load_nail_tensor,
    nail_features,
    page_png,
    params_from_dict,
    predict_nail_features,
)

SITE = "fingernail"


def _png(pixels: np.ndarray) -> bytes:
    code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, buf = cv2.imencode(".png", cv2.cvtColor(pixels, code))
    assert ok
    return bytes(buf.tobytes())


def _reference(registry: ModelRegistry, dataset_dir: Path) -> list[tuple[dict, object]]:
    card = registry.get(SITE).card.raw
    by_file = {s.file: s for s in load_nail_samples(dataset_dir)}
    photos = card["reference_outputs"]["photos"]
    assert len(photos) >= 5
    return [(row, by_file[row["file"]]) for row in photos]


def test_it_loads_the_fingernail_model_beside_the_conjunctiva_one(
    registry: ModelRegistry,
) -> None:
    assert {"conjunctiva", SITE} <= set(registry.sites)
    model = registry.get(SITE)
    assert model.card.site == SITE
    assert model.card.version == "fingernail-1.0.0"
    assert model.card.raw["hb"]["cutoff_g_dl"] == 12.0


def test_it_refuses_an_opaque_fingernail_photo(registry: ModelRegistry) -> None:
    # Reddish-pink everywhere: the conjunctiva colour rules would find "tissue" here, so
    # a refusal shows that nails are not segmented automatically.
    rgb = np.full((300, 400, 3), (200, 110, 110), dtype=np.uint8)
    image = decode_image(_png(rgb))
    assert image.mask is None
    with pytest.raises(NoFingernailFound) as caught:
        registry.get(SITE).predict(image)
    assert isinstance(caught.value, ImageError)
    assert caught.value.code == "no_fingernail_found"
    assert "nail" in caught.value.advice.lower()


def test_it_refuses_nail_outlines_too_small_to_measure(registry: ModelRegistry) -> None:
    rgba = np.zeros((600, 800, 4), dtype=np.uint8)
    rgba[..., :3] = (210, 150, 150)
    rgba[300:304, 400:404, 3] = 255
    with pytest.raises(NoFingernailFound):
        registry.get(SITE).predict(decode_image(_png(rgba)))


def test_it_gives_the_card_outputs_on_open_photos(
    registry: ModelRegistry, dataset_dir: Path
) -> None:
    model = registry.get(SITE)
    for row, sample in _reference(registry, dataset_dir):
        out = model.predict(decode_image(page_png(dataset_dir, sample)))  # type: ignore[arg-type]
        assert out.site == SITE and out.segmentation == "provided"
        assert out.model_version == "fingernail-1.0.0"
        assert out.probability == pytest.approx(row["p_anemic"], abs=1e-4)
        assert out.hb_estimate_g_dl == pytest.approx(row["hb_estimate_g_dl"], abs=0.05)
        assert list(out.hb_interval_g_dl) == pytest.approx(row["hb_interval_g_dl"], abs=0.05)
        low, high = out.hb_interval_g_dl
        assert low <= out.hb_estimate_g_dl <= high
        assert high - low > 3.0  # the interval is honest about a weak estimate


def test_the_exported_graph_features_and_columns_match_the_numpy_recipe(
    registry: ModelRegistry, dataset_dir: Path, model_dir: Path
) -> None:
    card = registry.get(SITE).card.raw
    params = params_from_dict(card["model"]["head"])
    spec = InputSpec(size=int(card["input"]["size"]))
    interpreter = Interpreter(model_path=str(model_dir / SITE / "model.tflite"), num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    columns = card["output"]["columns"]
    assert columns[:3] == ["p_anemic", "hb_mean_g_dl", "hb_scale_g_dl"]
    assert list(interpreter.get_output_details()[0]["shape"]) == [1, len(columns)]
    for _, sample in _reference(registry, dataset_dir):
        tensor = load_nail_tensor(dataset_dir, sample, spec)  # type: ignore[arg-type]
        ref = predict_nail_features(
            params, nail_features(tensor, params.thresholds, params.widths)[None]
        )[0]
        interpreter.set_tensor(inp, tensor[None].astype(np.float32))
        interpreter.invoke()
        got = np.asarray(interpreter.get_tensor(out)).reshape(-1)
        feats = nail_features(tensor, params.thresholds, params.widths)
        assert got[3:].shape == feats.shape
        assert np.max(np.abs(got[3:] - feats) / (np.abs(feats) + 1e-2)) < 5e-3  # float32
        assert got[0] == pytest.approx(ref[0], abs=1e-3)
        assert got[1] == pytest.approx(ref[1], abs=1e-2)
        assert got[2] == pytest.approx(params.hb_scale, rel=1e-4)


def test_rgb_outside_the_outline_does_not_change_the_answer(
    registry: ModelRegistry, dataset_dir: Path
) -> None:
    model = registry.get(SITE)
    _, sample = _reference(registry, dataset_dir)[0]
    blanked = decode_image(page_png(dataset_dir, sample))  # type: ignore[arg-type]
    assert blanked.mask is not None
    photo = decode_image((dataset_dir / sample.file).read_bytes())  # type: ignore[attr-defined]
    kept = decode_image(_png(np.dstack([photo.rgb, blanked.mask])))
    a, b = model.predict(blanked), model.predict(kept)
    assert a.probability == pytest.approx(b.probability, abs=1e-6)
    assert a.hb_estimate_g_dl == b.hb_estimate_g_dl


def test_the_erosion_twin_shrinks_the_mask_by_one_pixel() -> None:
    t = np.zeros((8, 8, 4), dtype=np.float32)
    t[2:6, 2:6, 3] = 1.0
    eroded = erode_mask(t)[..., 3]
    assert eroded.sum() == 4 and eroded[3:5, 3:5].all()
    full = np.ones((4, 4, 4), dtype=np.float32)
    assert erode_mask(full)[..., 3].all()  # pixels outside the image do not erode


@pytest.mark.parametrize(
    ("hb", "label"), [(4.4, 1), (11.99, 1), (12.0, None), (12.99, None), (13.0, 0), (16.9, 0)]
)
def test_labels_follow_the_adult_cutoffs(hb: float, label: int | None) -> None:
    assert label_for(hb) == label


def test_the_card_says_who_the_model_is_for_and_how_it_did(registry: ModelRegistry) -> None:
    card = registry.get(SITE).card.raw
    assert "adults" in card["population"]["who"] and "sex" in card["population"]["who"]
    assert card["population"]["n_sessions"] == 16
    assert "NOT a diagnosis" in card["intended_use"]
    assert any("unknown sex" in line for line in card["limitations"])
    cv = card["evaluation"]["cross_validation"]
    assert cv["grouping"].startswith("session")
    assert 0.5 < cv["auc_fold_mean"] <= 1.0 and cv["auc_fold_sd"] > 0
    hb = card["hb"]["evaluation"]
    for key in ("mae_g_dl", "bias_g_dl", "limits_of_agreement_g_dl", "interval_coverage"):
        assert key in hb
    assert set(card["risk"]["confidence_by_level"]) == {"low", "medium", "high"}
    assert card["output"]["columns"][:3] == ["p_anemic", "hb_mean_g_dl", "hb_scale_g_dl"]


def test_the_model_was_exported_with_the_current_shared_features(registry: ModelRegistry) -> None:
    card = registry.get(SITE).card.raw
    assert card["training"]["features_pool"] == POOL, (
        "ml.training.features changed since the fingernail model was exported: retrain with "
        "python -m ml.training.train --site fingernail"
    )
    assert card["model"]["features"] == feature_names()
