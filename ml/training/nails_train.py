"""Train, cross-validate, export and card the fingernail model; record reference outputs.

Reached through ``python -m ml.training.train --site fingernail`` (one command: the
session-grouped CV is the evaluation; the last step checks the runtime path).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np

from ml.preprocess import InputSpec
from ml.training.data import labels_sha256
from ml.training.features import POOL, feature_names
from ml.training.nails import (
    ANEMIC_BELOW_G_DL,
    CLIP_G_DL,
    COLUMNS,
    INTERVAL_LEVEL,
    NON_ANEMIC_FROM_G_DL,
    REFERENCE_FILES,
    VERSION,
    NailConfig,
    NailParams,
    feature_matrix,
    load_nail_samples,
    load_nail_tensor,
    nail_features,
    page_png,
    params_from_dict,
    params_to_dict,
    predict_nail_features,
)

logger = logging.getLogger(__name__)

SITE = "fingernail"
FEATURE_TOLERANCE = 5e-3
THRESHOLDS = {"low": 0.3, "high": 0.7}

INTENDED_USE = (
    "A screening aid that suggests whether an adult should get a blood test for anemia, from "
    "a phone photo of the fingernails with each nail bed outlined (the page sends the nail "
    "outlines as the PNG alpha channel). It is NOT a diagnosis: only a blood test can confirm "
    "or rule out anemia. The haemoglobin estimate is rough (typical error about 1.7 g/dL, "
    "hardly better than guessing the average) and comes with a wide 90% interval; do not use "
    "it to decide anything without a blood test. Trained on adults of unknown sex (Yakimov "
    "et al. 2024 fingernail photos, one source, 16 measurement sessions); anemia means Hb < "
    "12.0 g/dL (the WHO cut-off for non-pregnant women, used because sex is unknown)."
)

LIMITATIONS = [
    "Population: adults of unknown sex, age and origin from a single source (one research "
    "group, one camera set-up: three fingertips on a white board with colour markers, 16 "
    "measurement sessions here). Not validated for children, pregnant women, other cameras, "
    "lighting, skin tones or populations.",
    "Cut-off: sex is unknown, so 'anemic' is Hb < 12.0 g/dL (non-pregnant women). For men "
    "the WHO cut-off is 13.0: a man with Hb 12.0-12.9 is anemic but is counted as neither "
    "class here (those photos train the Hb estimate only), so the model will tend to score "
    "such men below the anemic range.",
    "Small dataset: 211 photos (57 anemic, 112 non-anemic, 42 between 12 and 13 g/dL); all "
    "figures come from session-grouped cross-validation on the same source and their spread "
    "across folds is large (see evaluation.cross_validation.per_fold). There is no external "
    "validation; 4 further sessions are kept sealed by the team for that.",
    "The Hb estimate is weak: its cross-validated mean absolute error (about 1.7 g/dL) is only "
    "a little below that of always answering the training average (about 2.0 g/dL), it is "
    "pulled towards the average (severe anemia is under-estimated, high values "
    "over-estimated: see hb.evaluation.by_hb_band), and the 90% interval is about 7 g/dL "
    "wide. Treat it as a hint, never as a measurement.",
    "The nail regions in training are the source's rectangular boxes around each nail, which "
    "are loose: they often include the cuticle, the free edge or a little skin. Outlines "
    "traced tightly on the page may shift the colour statistics somewhat.",
    "No automatic nail finding: a photo without nail outlines is refused "
    "(no_fingernail_found). Nail polish, artificial nails, bruises or nail disease were not "
    "in the training data and will give meaningless results.",
    "Colour depends on light and camera: all training photos share one white-board set-up "
    "under similar light; daylight and a white background are needed to come close to it.",
    "A LOW result does not rule anemia out (see evaluation.at_medium_threshold.sensitivity).",
]

DATA_NOTES = [
    "211 fingernail photos (800x600, three fingertips on a white board), 16 sessions, Hb for "
    "every photo. Labels: Hb < 12.0 anemic (57), >= 13.0 non-anemic (112), 12.0-12.9 blank "
    "(42; used for the Hb estimate only).",
    "Box check (all 211 photos): every nail and skin box lies inside the image, has positive "
    "size, pairs with the skin box of the same finger (same row order, skin to the right of "
    "its nail), and holds at most 10% white-board pixels (board colour measured per photo); "
    "drawn on all 211 photos and looked at, the boxes sit on the nails but loosely (cuticle, "
    "free edge or skin included; e.g. yakimov_P016, P105, P281, P334; P334 and a few others "
    "have overlapping nail boxes). No photo's boxes were offset enough to fix or exclude, so "
    "all 211 photos are used with their boxes as given.",
    "yakimov_P222 shows another finger with blue nail polish outside the boxes (not used).",
    "Only the nail boxes are used: the skin boxes (nail minus skin colour) added about 0.01 "
    "AUC in session-grouped CV and would need the RGB outside the nail outlines, which the "
    "page's PNG may not carry.",
]

MODEL_SELECTION = (
    "Compared by session-grouped CV (4 folds x 5 repeats, logistic regression + ridge on "
    "the features): nail features on the eroded mask 0.856 +- 0.053 fold AUC, Hb MAE 1.66; "
    "without erosion 0.854, MAE 1.62 (erosion kept: it makes the features ignore the "
    "blurred edge, so blanked or kept RGB outside the outline gives the same answer); "
    "masked means only 0.859, MAE 1.70; nail plus skin-box features 0.862, MAE 1.69 (not "
    "used, see data_notes); 4x4 instead of 2x2 pooling 0.849 +- 0.077. Logistic C in "
    "{0.01, 0.1, 1}: 0.860 / 0.856 / 0.850 (0.1 kept); ridge alpha in {10, 100, 1000}: MAE "
    "1.66 / 1.67 / 1.71 (30 kept); Huber, PLS (2-8 components) and a random forest for Hb "
    "1.67-1.73. Predicting the training mean: MAE about 2.0. These comparisons used 2x2 "
    "pooling; the shipped model uses the shared features' pooling (ml.training.features.POOL "
    "at export time: training.features_pool)."
)

CONFIDENCE_DEFINITION = (
    "For each risk level, the share of labelled photos given that level in session-grouped "
    "cross-validation whose blood test agreed with it: LOW = share non-anemic (Hb >= 13.0), "
    "HIGH = share anemic (Hb < 12.0), MEDIUM = share of the majority class among MEDIUM "
    "photos. Photos with Hb 12.0-12.9 are not counted. It describes how often the level was "
    "right on photos from unseen sessions, not the certainty for one photo."
)

PREPROCESSING = (
    "Decode with OpenCV from memory (ml.images.decode_image). Mask: the PNG alpha channel "
    "(alpha >= 128 is nail bed); a photo without alpha is refused (no_fingernail_found). RGB "
    "outside the mask is set to 0 (a browser canvas may drop it anyway), then RGB and mask are "
    "resized to 224x224 with cv2.INTER_AREA (aspect ratio not kept: only colour statistics "
    "are used), RGB scaled by 1/255, the mask thresholded at 0.5, stacked as [1, 224, 224, 4] "
    "float32. Inside the graph: the mask is eroded by one pixel (3x3 min-pool) so the blurred "
    "outline edge is not measured; then the shared colour-distribution features of the "
    "conjunctiva model (average pooling, 13 colour transforms, masked mean/std/skewness and "
    "a soft cumulative histogram at thresholds fitted on the nail pixels); standardised; a "
    "logistic regression with Platt scaling = calibrated P(Hb < 12.0); a ridge regression = "
    "Hb estimate; a constant spread (hb_scale_g_dl)."
)

HISTORY = [
    {
        "version": VERSION,
        "date": "2026-12-01",
        "change": "first fingernail model (issue 16): adults, Hb < 12.0 g/dL, nail outlines "
        "as the PNG alpha channel; P(anemic), Hb estimate and a 90% split-conformal interval.",
    }
]


def _tensors(dataset_dir: Path, samples: list[Any], spec: InputSpec) -> list[np.ndarray]:
    return [load_nail_tensor(dataset_dir, s, spec) for s in samples]


def check_tflite_columns(blob: bytes, tensors: list[np.ndarray], ref: np.ndarray) -> list[float]:
    """Largest |difference| per output column between the exported .tflite and NumPy."""
    from ml.runtime import Interpreter

    interpreter = Interpreter(model_content=blob, num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    worst = np.zeros(ref.shape[1])
    for t, r in zip(tensors, ref, strict=True):
        interpreter.set_tensor(inp, t[None].astype(np.float32))
        interpreter.invoke()
        got = np.asarray(interpreter.get_tensor(out)).reshape(-1)[: ref.shape[1]]
        worst = np.maximum(worst, np.abs(got - r))
    return [float(w) for w in worst]


def train_fingernail(
    dataset_dir: Path,
    model_dir: Path,
    *,
    version: str = VERSION,
    skip_cv: bool = False,
    cv_repeats: int = 5,
) -> dict[str, Any]:
    """Fit on all 211 photos, cross-validate by session, export, write card.json, then run
    every photo through ml.runtime and record the reference outputs."""
    import tensorflow as tf

    from ml.training.nails_fit import cross_validate_nails, fit_nail_recipe, pooled_figures
    from ml.training.nails_graph import export_nail_tflite, nail_features_for_check

    cfg = NailConfig(cv_repeats=cv_repeats)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    tf.random.set_seed(cfg.seed)
    spec = InputSpec(size=cfg.input_size)
    samples = load_nail_samples(dataset_dir)
    tensors = _tensors(dataset_dir, samples, spec)
    hb = np.array([s.hb_g_dl for s in samples])
    sessions = np.array([s.session for s in samples])

    cv = pooled = None
    if not skip_cv:
        cv, first = cross_validate_nails(samples, tensors, cfg)
        pooled = pooled_figures(samples, first, THRESHOLDS["low"], THRESHOLDS["high"])
    params = fit_nail_recipe(tensors, hb, sessions, cfg)

    worst = 0.0
    for t in tensors[:20]:
        ref = nail_features(t, params.thresholds, params.widths)
        got = nail_features_for_check(t, params)
        worst = max(worst, float(np.max(np.abs(ref - got) / (np.abs(ref) + 1e-2))))
    logger.info("NumPy vs TF features: worst relative difference %.2e", worst)
    # float32 in the graph vs float64 in NumPy: a nail is a few dozen pooled pixels, so the
    # skewness of a near-constant channel moves by up to ~2e-3 (relative); the check on the
    # exported outputs below is the one that matters (P within 1e-3).
    if worst > FEATURE_TOLERANCE:
        raise SystemExit(f"in-graph features disagree with NumPy ones ({worst:.2e})")

    site_dir = model_dir / SITE
    blob = export_nail_tflite(params, site_dir / "model.tflite", spec.size)
    check = tensors[:40]
    ref_out = predict_nail_features(params, feature_matrix(check, params.thresholds, params.widths))
    col_diff = check_tflite_columns(blob, check, ref_out)
    logger.info("NumPy recipe vs exported TFLite: worst column differences %s", col_diff)
    if col_diff[0] > 1e-3 or max(col_diff[1:]) > 1e-2:
        raise SystemExit(f"the exported model disagrees with the NumPy recipe ({col_diff})")

    card = build_card(version, cfg, spec, params, blob, tf.__version__, worst, col_diff)
    card["training"]["labels_sha256"] = labels_sha256(dataset_dir)
    if cv is not None and pooled is not None:
        card["evaluation"] = evaluation_section(cv, pooled)
        card["risk"]["confidence_by_level"] = pooled["confidence_by_level"]
        card["hb"]["evaluation"] = {
            **{k: v for k, v in pooled["hb"].items()},
            "scope": "first CV repeat, each photo scored once by a model that never saw its "
            "session; the conformal quantile of each fold came from inner CV on its training "
            "sessions only",
            "mae_mean_sd_over_repeats_g_dl": cv["hb_mae_mean_sd_over_repeats_g_dl"],
            "interval_coverage_mean_sd_over_repeats": cv["interval_coverage_mean_sd_over_repeats"],
            "per_fold": [
                {
                    k: r[k]
                    for k in (
                        "repeat",
                        "fold",
                        "hb_mae_g_dl",
                        "interval_coverage",
                        "interval_mean_width_g_dl",
                    )
                }
                for r in cv["per_fold"]
            ],
        }
    write_card(site_dir, card)
    logger.info("wrote %s (%d bytes) and card.json", site_dir / "model.tflite", len(blob))
    reference = evaluate_fingernail(dataset_dir, model_dir)
    return {
        "reference_outputs": reference["runtime_vs_numpy_max_abs_diff"],
        "cross_validation": None
        if cv is None
        else {k: v for k, v in cv.items() if k != "per_fold"},
        "pooled": None
        if pooled is None
        else {k: v for k, v in pooled.items() if k != "calibration_table"},
        "conformal_q": params.conformal_q,
        "hb_scale": params.hb_scale,
        "model_bytes": len(blob),
    }


def build_card(
    version: str,
    cfg: NailConfig,
    spec: InputSpec,
    params: NailParams,
    blob: bytes,
    tf_version: str,
    feature_diff: float,
    col_diff: list[float],
) -> dict[str, Any]:
    return {
        "site": SITE,
        "version": version,
        "condition": "anemia",
        "population": {
            "who": "adults; sex, age, pregnancy status and country unknown",
            "source": "Yakimov et al. 2024 fingernail photos (one source, one set-up)",
            "n_photos": 211,
            "n_sessions": 16,
        },
        "intended_use": INTENDED_USE,
        "limitations": LIMITATIONS,
        "preprocessing": PREPROCESSING,
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input": {
            "name": "image_and_mask",
            "dtype": "float32",
            "shape": [1, spec.size, spec.size, 4],
            "size": spec.size,
            "scale": spec.scale,
            "interpolation": spec.interpolation,
            "mask_threshold": spec.mask_threshold,
            "channels": "0-2: RGB scaled to [0, 1] (pixel / 255), 0 outside the nail mask; "
            "3: nail-bed mask in {0, 1}",
        },
        "output": {
            "name": "columns",
            "shape": [1, len(COLUMNS) + len(feature_names())],
            "columns": [*COLUMNS, *(f"feature:{n}" for n in feature_names())],
            "meaning": {
                "p_anemic": f"calibrated probability that Hb < {ANEMIC_BELOW_G_DL} g/dL",
                "hb_mean_g_dl": "haemoglobin estimate, g/dL (ridge regression)",
                "hb_scale_g_dl": "spread of the estimate, g/dL (constant: the out-of-fold RMS "
                "error; a locally adaptive spread was not tried)",
                "feature:<name>": "the raw in-graph features (ignored by the runtime; tests "
                "compare them with the NumPy recipe)",
            },
        },
        "risk": {
            "thresholds": dict(THRESHOLDS),
            "rule": "score < low: LOW; low <= score < high: MEDIUM; score >= high: HIGH",
            "confidence_definition": CONFIDENCE_DEFINITION,
            "confidence_by_level": {},
        },
        "hb": {
            "cutoff_g_dl": ANEMIC_BELOW_G_DL,
            "non_anemic_from_g_dl": NON_ANEMIC_FROM_G_DL,
            "interval": {
                "level": INTERVAL_LEVEL,
                "method": "split-conformal on session-grouped out-of-fold residuals of the "
                "training photos: |hb - mean| / scale, scale constant",
                "conformal_quantile": round(params.conformal_q, 4),
                "clip_g_dl": list(CLIP_G_DL),
            },
            "consistency": "p_anemic and hb_mean_g_dl come from two heads on the same "
            "features (logistic and ridge); they usually agree in direction but p_anemic is "
            "not derived from the Hb estimate, and it is the one the risk level uses because "
            "it ranks anemic photos better (CV AUC of -hb_mean is lower).",
            "evaluation": None,
        },
        "evaluation": None,
        "model": {
            "file": "model.tflite",
            "sha256": hashlib.sha256(blob).hexdigest(),
            "size_bytes": len(blob),
            "tensorflow_version": tf_version,
            "features": feature_names(),
            "numpy_vs_graph_feature_max_rel_diff": float(f"{feature_diff:.2e}"),
            "numpy_vs_tflite_column_max_abs_diff": [float(f"{d:.2e}") for d in col_diff],
            "head": params_to_dict(params),
        },
        "training": {
            "command": "python -m ml.training.train --site fingernail --dataset-dir DIR",
            "config": cfg.as_dict(),
            "hb_agreement_rule": "the Hb estimate is moved to the side of the 12.0 cut-off "
            "that the risk level says (HIGH: at most 11.9; LOW: at least 12.0), as for the "
            "conjunctiva model; all Hb figures are after this rule",
            "dataset": "Yakimov2024-fingernails fingers_photo rows of labels.csv",
            "rows": "all 211 photos (none held out here: the sealed sessions are the test)",
            "mask": "union of the three nail_bboxes ([y_min, x_min, y_max, x_max]) as given",
            "model_selection": MODEL_SELECTION,
            "features_pool": POOL,
        },
        "data_notes": DATA_NOTES,
        "history": HISTORY,
    }


def evaluation_section(cv: dict[str, Any], pooled: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "session-grouped cross-validation (no held-out split in this folder)",
        "command": "python -m ml.training.train --site fingernail --dataset-dir DIR",
        "cross_validation": cv,
        "pooled_first_repeat": {k: pooled[k] for k in ("auc", "calibration_table", "risk_levels")},
        "auc": pooled["auc"],
        "auc_fold_mean": cv["auc_fold_mean"],
        "auc_fold_sd": cv["auc_fold_sd"],
        "at_medium_threshold": pooled["at_medium_threshold"],
        "at_high_threshold": pooled["at_high_threshold"],
        "target": {
            "auc_at_least": 0.82,
            "hb_mae_at_most_g_dl": 1.6,
            "interval_coverage_at_least": 0.8,
            "met_in_cv": {
                "auc": bool(cv["auc_fold_mean"] >= 0.82),
                "hb_mae": bool(pooled["hb"]["mae_g_dl"] <= 1.6),
                "coverage": bool(pooled["hb"]["interval_coverage"] >= 0.8),
            },
            "note": "the bar is judged by the team on sealed sessions; these are CV figures",
        },
    }


def write_card(site_dir: Path, card: dict[str, Any]) -> None:
    (site_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def evaluate_fingernail(dataset_dir: Path, model_dir: Path) -> dict[str, Any]:
    """Run every photo through ml.runtime as the page sends it; record reference outputs.

    The figures in the card stay the cross-validated ones (the model was fitted on every
    photo here, so scoring them again would be in-sample); this checks that the service's
    code path gives what the NumPy recipe gives, and records outputs for the tests.
    """
    from ml.card import load_card
    from ml.images import decode_image
    from ml.runtime import RUNTIME_NAME, Model

    site_dir = model_dir / SITE
    card_path = site_dir / "card.json"
    card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    # This site's folder only: the evaluation must not depend on another site's model.
    model = Model(site_dir / "model.tflite", load_card(card_path))
    params = params_from_dict(card["model"]["head"])
    spec = InputSpec(size=int(card["input"]["size"]))
    samples = load_nail_samples(dataset_dir)
    worst = [0.0, 0.0]
    reference = []
    for s in samples:
        image = decode_image(page_png(dataset_dir, s))
        out = model.predict(image)
        if out.segmentation != "provided" or out.site != SITE:
            raise SystemExit(f"{s.file}: unexpected {out.segmentation} / {out.site}")
        tensor = load_nail_tensor(dataset_dir, s, spec)
        ref = predict_nail_features(
            params, nail_features(tensor, params.thresholds, params.widths)[None]
        )[0]
        worst[0] = max(worst[0], abs(out.probability - float(ref[0])))
        worst[1] = max(worst[1], abs(out.hb_estimate_g_dl - float(ref[1])))
        if s.file in REFERENCE_FILES:
            reference.append(
                {
                    "file": s.file,
                    "hb_true_g_dl": s.hb_g_dl,
                    "p_anemic": round(out.probability, 5),
                    "hb_estimate_g_dl": out.hb_estimate_g_dl,
                    "hb_interval_g_dl": list(out.hb_interval_g_dl),
                }
            )
    card["reference_outputs"] = {
        "command": "python -m ml.training.train --site fingernail --dataset-dir DIR (last step)",
        "runtime": RUNTIME_NAME,
        "how": "each photo PNG-encoded as the page sends it (alpha 255 on the nail boxes, RGB "
        "0 elsewhere), decode_image -> Model.predict. In-sample: a code-path check, not a "
        "performance figure.",
        "runtime_vs_numpy_max_abs_diff": {
            "p_anemic": float(f"{worst[0]:.2e}"),
            "hb_estimate_g_dl (rounded to 0.1)": round(worst[1], 3),
        },
        "photos": reference,
    }
    write_card(site_dir, card)
    return card["reference_outputs"]
