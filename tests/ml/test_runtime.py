from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ml.images import DecodedImage, ImageHeader, decode_image
from ml.runtime import (
    RUNTIME_NAME,
    HbSpec,
    ModelLoadError,
    ModelRegistry,
    NoConjunctivaFound,
    UnknownSite,
    get_registry,
)
from tests.ml.imaging import encode


def conjunctiva_like(seed: int = 0, *, with_mask: bool = True) -> DecodedImage:
    """A pink crescent-ish blob on brown skin (not a real eyelid; real ones are below)."""
    rng = np.random.default_rng(seed)
    rgb = np.zeros((120, 200, 3), np.uint8)
    rgb[...] = (110, 75, 55)
    yy, xx = np.mgrid[0:120, 0:200]
    inside = ((xx - 100) / 80.0) ** 2 + ((yy - 60) / 30.0) ** 2 <= 1.0
    rgb[inside] = (200, 110, 110)
    rgb = np.clip(rgb.astype(int) + rng.integers(-8, 9, rgb.shape), 0, 255).astype(np.uint8)
    mask = np.where(inside, 255, 0).astype(np.uint8) if with_mask else None
    return DecodedImage(rgb=rgb, mask=mask, header=ImageHeader("png", 200, 120, with_mask, 8))


def test_it_loads_the_shipped_conjunctiva_model(registry: ModelRegistry) -> None:
    assert "conjunctiva" in registry.sites
    model = registry.get("conjunctiva")
    assert model.card.site == "conjunctiva"
    assert model.card.condition == "anemia"
    assert model.card.version.startswith("conjunctiva-")
    assert RUNTIME_NAME in {"tflite_runtime", "ai_edge_litert"}


def test_it_caches_the_registry_per_process(model_dir: Path) -> None:
    assert get_registry(model_dir) is get_registry(model_dir)


def test_it_raises_unknown_site_with_the_known_sites(registry: ModelRegistry) -> None:
    with pytest.raises(UnknownSite) as info:
        registry.get("elbow")
    assert isinstance(info.value, KeyError)
    assert "conjunctiva" in str(info.value)


def test_it_uses_the_provided_mask(registry: ModelRegistry) -> None:
    out = registry.get("conjunctiva").predict(conjunctiva_like())
    assert out.segmentation == "provided"
    assert 0.0 <= out.probability <= 1.0
    assert out.site == "conjunctiva"
    assert out.model_version == registry.get("conjunctiva").card.version
    assert set(out.timings_ms) == {"preprocess", "inference"}
    low, high = out.hb_interval_g_dl
    assert 3.0 <= low <= out.hb_estimate_g_dl <= high <= 16.0
    assert low < high
    assert out.hb_estimate_g_dl == round(out.hb_estimate_g_dl, 1)


@pytest.mark.parametrize(
    ("mean", "scale", "expected"),
    [
        (10.04, 2.0, (10.0, (6.7, 13.3))),  # 10.04 -+ 3.29
        (2.0, 1.0, (3.0, (3.0, 3.6))),  # below the plausible range: clipped, still ordered
        (15.9, 2.0, (15.9, (12.6, 16.0))),
        (11.0, 0.0, (11.0, (11.0, 11.0))),
    ],
)
def test_it_turns_the_hb_columns_into_an_ordered_interval(
    mean: float, scale: float, expected: tuple[float, tuple[float, float]]
) -> None:
    spec = HbSpec(quantile=1.645, clip_low=3.0, clip_high=16.0)
    assert spec.estimate(mean, scale) == expected


def test_it_refuses_a_card_without_the_output_columns(model_dir: Path, tmp_path: Path) -> None:
    site = _copy_site(model_dir, tmp_path)
    card = json.loads((site / "card.json").read_text())
    card["output"]["columns"] = ["p_anemic"]
    (site / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="output columns"):
        ModelRegistry.from_dir(tmp_path)


def test_it_refuses_a_card_without_the_hb_interval(model_dir: Path, tmp_path: Path) -> None:
    site = _copy_site(model_dir, tmp_path)
    card = json.loads((site / "card.json").read_text())
    del card["hb"]["interval"]
    (site / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="hb.interval"):
        ModelRegistry.from_dir(tmp_path)


def test_it_segments_an_opaque_image_itself(registry: ModelRegistry) -> None:
    image = decode_image(encode(".jpg", conjunctiva_like(with_mask=False).rgb[..., ::-1]))
    out = registry.get("conjunctiva").predict(image)
    assert out.segmentation == "automatic"
    assert 0.0 <= out.probability <= 1.0


def test_it_refuses_an_image_with_no_conjunctiva(registry: ModelRegistry) -> None:
    grey = DecodedImage(
        rgb=np.full((100, 100, 3), 128, np.uint8),
        mask=None,
        header=ImageHeader("png", 100, 100, False, 8),
    )
    with pytest.raises(NoConjunctivaFound) as info:
        registry.get("conjunctiva").predict(grey)
    assert info.value.code == "no_conjunctiva_found"


def test_it_gives_the_same_score_twice(registry: ModelRegistry) -> None:
    model = registry.get("conjunctiva")
    image = conjunctiva_like()
    assert model.predict(image).probability == model.predict(image).probability


def test_it_gives_the_same_scores_under_8_threads(registry: ModelRegistry) -> None:
    model = registry.get("conjunctiva")
    images = [conjunctiva_like(seed) for seed in range(16)]
    expected = [model.predict(im).probability for im in images]
    assert len(set(expected)) > 1  # different inputs, different scores
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            got = list(pool.map(lambda im: model.predict(im).probability, images))
            assert got == expected


def _copy_site(model_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(model_dir / "conjunctiva", tmp_path / "conjunctiva")
    return tmp_path / "conjunctiva"


def test_it_refuses_a_missing_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        ModelRegistry.from_dir(tmp_path / "nope")


def test_it_refuses_a_directory_without_models(tmp_path: Path) -> None:
    (tmp_path / "empty-site").mkdir()
    with pytest.raises(ModelLoadError, match="no model found"):
        ModelRegistry.from_dir(tmp_path)


def test_it_refuses_a_site_without_its_tflite(model_dir: Path, tmp_path: Path) -> None:
    (_copy_site(model_dir, tmp_path) / "model.tflite").unlink()
    with pytest.raises(ModelLoadError, match=r"no model\.tflite"):
        ModelRegistry.from_dir(tmp_path)


def test_it_refuses_a_site_without_its_card(model_dir: Path, tmp_path: Path) -> None:
    (_copy_site(model_dir, tmp_path) / "card.json").unlink()
    with pytest.raises(ModelLoadError, match=r"no card\.json"):
        ModelRegistry.from_dir(tmp_path)


def test_it_refuses_a_corrupt_tflite(model_dir: Path, tmp_path: Path) -> None:
    (_copy_site(model_dir, tmp_path) / "model.tflite").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match="TFL3"):
        ModelRegistry.from_dir(tmp_path)


def test_it_refuses_a_truncated_tflite(model_dir: Path, tmp_path: Path) -> None:
    path = _copy_site(model_dir, tmp_path) / "model.tflite"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="sha256"):
        ModelRegistry.from_dir(tmp_path)


def test_it_refuses_a_card_without_the_model_hash(model_dir: Path, tmp_path: Path) -> None:
    site = _copy_site(model_dir, tmp_path)
    card = json.loads((site / "card.json").read_text())
    del card["model"]["sha256"]
    (site / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="sha256"):
        ModelRegistry.from_dir(tmp_path)


def test_it_refuses_a_corrupt_card(model_dir: Path, tmp_path: Path) -> None:
    (_copy_site(model_dir, tmp_path) / "card.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="card.json"):
        ModelRegistry.from_dir(tmp_path)


def test_it_refuses_a_card_for_another_site(model_dir: Path, tmp_path: Path) -> None:
    card_path = _copy_site(model_dir, tmp_path) / "card.json"
    card = json.loads(card_path.read_text())
    card["site"] = "fingernail"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="folder"):
        ModelRegistry.from_dir(tmp_path)


def test_a_new_site_is_just_a_new_folder(model_dir: Path, tmp_path: Path) -> None:
    _copy_site(model_dir, tmp_path)
    other = tmp_path / "fingernail"
    shutil.copytree(tmp_path / "conjunctiva", other)
    card = json.loads((other / "card.json").read_text())
    card["site"] = "fingernail"
    (other / "card.json").write_text(json.dumps(card))
    registry = ModelRegistry.from_dir(tmp_path)
    assert registry.sites == ("conjunctiva", "fingernail")
    assert registry.get("fingernail").card.site == "fingernail"
