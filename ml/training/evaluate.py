"""Evaluate the EXPORTED model through ml.runtime on the held-out subjects.

``python -m ml.training.evaluate`` reads model/<site>/card.json for the held-out subject
list, runs each held-out image through the same code the service uses (decode_image ->
Model.predict on the .tflite), and writes the metrics back into the card.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.images import decode_image
from ml.runtime import RUNTIME_NAME, Model, ModelRegistry
from ml.segmentation import segment_conjunctiva
from ml.training.data import REPO_ROOT, Sample, labels_sha256, load_samples, resolve_dataset_dir
from ml.training.metrics import (
    at_threshold,
    auc,
    bootstrap_auc_ci,
    calibration_table,
    confidence_by_level,
    group_breakdown,
)
from ml.training.synthetic import MARGIN, SKIN_TONES, encode_png, flatten_on_skin

logger = logging.getLogger(__name__)

TARGET_AUC = 0.80  # the bar set in the issue for masked crops
CALIBRATION_EDGES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


@dataclass(frozen=True)
class HeldOutScores:
    samples: list[Sample]
    y: np.ndarray
    masked: np.ndarray
    automatic: np.ndarray
    automatic_iou: np.ndarray
    segmentation_paths: set[str]


def heldout_samples(dataset_dir: Path, card: dict[str, Any], site: str) -> list[Sample]:
    ids = set(card["split"]["heldout_subject_ids"])
    samples = [s for s in load_samples(dataset_dir, site) if s.subject_id in ids]
    found = {s.subject_id for s in samples}
    if found != ids:
        raise SystemExit(f"{len(ids - found)} held-out subjects are missing from the dataset")
    return sorted(samples, key=lambda s: s.file)


def score_masked(model: Model, dataset_dir: Path, samples: list[Sample]) -> np.ndarray:
    out = []
    for s in samples:
        result = model.predict(decode_image((dataset_dir / s.file).read_bytes()))
        if result.segmentation != "provided":
            raise SystemExit(f"{s.file}: expected the alpha mask to be used")
        out.append(result.probability)
    return np.array(out)


def score_flattened(
    model: Model, dataset_dir: Path, samples: list[Sample]
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha dropped, background filled with skin: the automatic-segmentation path."""
    scores, ious = [], []
    for i, s in enumerate(samples):
        crop = decode_image((dataset_dir / s.file).read_bytes())
        assert crop.mask is not None
        flat = flatten_on_skin(crop.rgb, crop.mask, index=i)
        result = model.predict(decode_image(encode_png(flat)))
        if result.segmentation != "automatic":
            raise SystemExit(f"{s.file}: expected automatic segmentation")
        scores.append(result.probability)
        h, w = crop.mask.shape
        my, mx = round(h * MARGIN), round(w * MARGIN)
        truth = np.zeros(flat.shape[:2], bool)
        truth[my : my + h, mx : mx + w] = crop.mask > 0
        pred = segment_conjunctiva(flat) > 0
        ious.append((pred & truth).sum() / max((pred | truth).sum(), 1))
    return np.array(scores), np.array(ious)


def score_heldout(model: Model, dataset_dir: Path, samples: list[Sample]) -> HeldOutScores:
    y = np.array([s.label for s in samples])
    masked = score_masked(model, dataset_dir, samples)
    automatic, ious = score_flattened(model, dataset_dir, samples)
    return HeldOutScores(samples, y, masked, automatic, ious, {"provided", "automatic"})


def summarise(y: np.ndarray, p: np.ndarray, low: float, high: float, seed: int) -> dict[str, Any]:
    a = auc(y, p)
    assert a is not None
    lo, hi = bootstrap_auc_ci(y, p, seed=seed)
    return {
        "auc": round(a, 3),
        "auc_95ci": [round(lo, 3), round(hi, 3)],
        "at_medium_threshold": at_threshold(y, p, low),
        "at_high_threshold": at_threshold(y, p, high),
        "accuracy_at_0_5": at_threshold(y, p, 0.5)["accuracy"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset-dir", help="labelled dataset (else $HEALTHGUARD_DATASET_DIR)")
    parser.add_argument("--model-dir", default=str(REPO_ROOT / "model"))
    parser.add_argument("--site", default="conjunctiva")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    dataset_dir = resolve_dataset_dir(args.dataset_dir)
    if dataset_dir is None or not (dataset_dir / "labels.csv").is_file():
        print("no dataset: pass --dataset-dir or set HEALTHGUARD_DATASET_DIR", file=sys.stderr)
        return 2
    if args.site == "fingernail":
        from ml.training.nails_train import evaluate_fingernail

        print(json.dumps(evaluate_fingernail(dataset_dir, Path(args.model_dir)), indent=2))
        return 0
    site_dir = Path(args.model_dir) / args.site
    card_path = site_dir / "card.json"
    card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    blob_sha = hashlib.sha256((site_dir / "model.tflite").read_bytes()).hexdigest()
    if blob_sha != card["model"]["sha256"]:
        raise SystemExit("model.tflite does not match the card's sha256: retrain first")
    model = ModelRegistry.from_dir(Path(args.model_dir)).get(args.site)
    low, high = model.card.thresholds
    seed = int(card["training"]["config"]["seed"])

    samples = heldout_samples(dataset_dir, card, args.site)
    scores = score_heldout(model, dataset_dir, samples)
    y = scores.y
    masked = summarise(y, scores.masked, low, high, seed)
    conf, conf_detail = confidence_by_level(y, scores.masked, low, high)
    automatic = summarise(y, scores.automatic, low, high, seed)
    automatic["segmentation_iou_mean"] = round(float(scores.automatic_iou.mean()), 3)
    automatic["segmentation_iou_median"] = round(float(np.median(scores.automatic_iou)), 3)
    automatic["how"] = (
        "each held-out crop with its alpha dropped, placed on a canvas 50% larger filled with "
        f"one of {len(SKIN_TONES)} brown skin tones (RGB {list(SKIN_TONES)}) plus blurred noise, "
        "PNG-encoded without alpha, then decode_image -> Model.predict (automatic path). "
        "Real whole-eye photos are harder than this."
    )

    evaluation: dict[str, Any] = {
        "command": "python -m ml.training.evaluate --dataset-dir DIR",
        "runtime": RUNTIME_NAME,
        "labels_sha256": labels_sha256(dataset_dir),
        "n_subjects": len(y),
        "n_anemic": int(y.sum()),
        "n_non_anemic": int(len(y) - y.sum()),
        "heldout_rule": card["split"]["rule"],
        "masked_crops": masked,
        "automatic_segmentation": automatic,
        "calibration_table": calibration_table(y, scores.masked, CALIBRATION_EDGES),
        "by_sex": group_breakdown(y, scores.masked, [s.sex for s in samples], low, high),
        "by_region": group_breakdown(y, scores.masked, [s.region for s in samples], low, high),
        "risk_levels": conf_detail,
        "target": {
            "heldout_auc_masked_at_least": TARGET_AUC,
            "met": bool(masked["auc"] >= TARGET_AUC),
        },
        "notes": (
            "AUC CI: 2000 bootstrap resamples of held-out subjects (percentile). Sensitivity "
            "and specificity count anemic as predicted when score >= threshold. Breakdowns "
            "are on a few dozen subjects each: read them as rough. confidence_by_level is 0.0 "
            "for a level no held-out subject reached."
        ),
    }
    card["evaluation"] = evaluation
    card["risk"]["confidence_by_level"] = conf
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote evaluation into %s", card_path)
    summary = {
        "auc_masked": masked["auc"],
        "auc_masked_95ci": masked["auc_95ci"],
        "auc_automatic": automatic["auc"],
        "auc_automatic_95ci": automatic["auc_95ci"],
        "confidence_by_level": conf,
        "sens_spec_0.3": [masked["at_medium_threshold"][k] for k in ("sensitivity", "specificity")],
        "sens_spec_0.7": [masked["at_high_threshold"][k] for k in ("sensitivity", "specificity")],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
