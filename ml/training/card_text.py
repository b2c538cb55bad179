"""The human-readable parts of the model card."""

from __future__ import annotations

from typing import Any

INTENDED_USE = (
    "A screening aid that suggests whether a young child should get a blood test for anemia, "
    "from a photo of the inner lower eyelid (palpebral conjunctiva), with a rough haemoglobin "
    "estimate and a 90% range. It is NOT a diagnosis and does not measure haemoglobin: only a "
    "blood test can confirm or rule out anemia or give the true value. Trained on "
    "children aged 6-60 months photographed in 10 hospitals in Ghana (CP-AnemiC); anemia means "
    "Hb < 11.0 g/dL (WHO cut-off for children 6-59 months)."
)

LIMITATIONS = [
    "Trained and evaluated only on children 6-60 months from Ghana; not validated for adults, "
    "pregnant women, other ages, other populations or skin tones.",
    "Small dataset: about 380 distinct children after grouping copies; every figure comes from "
    "cross-validation on them (evaluation), whose folds hold about 60 children each: read "
    "the spread across folds (evaluation.auc.sd), not only the mean.",
    "No external validation: the model is trained on every open subject, so no open child is "
    "left to test it on. The figures are repeated cross-validation of the same recipe; the "
    "team's sealed children are the only independent check.",
    "The Hb estimate is rough (evaluation.hb.mae_g_dl) and the 90% range is wide (about "
    "hb.evaluation.interval_mean_width_g_dl); it regresses towards the middle, so very low Hb "
    "is usually estimated too high. Only a blood test measures Hb.",
    "The training crops were cut out by hand in the source dataset (the PNG alpha channel). "
    "Photos without a mask go through an automatic colour-based segmentation, which was only "
    "tested on those crops flattened onto a skin-coloured background, not on real whole-eye "
    "photos; expect lower accuracy on real photos (evaluation.auc_automatic).",
    "Colour depends on light and camera: photos in dim, coloured or flash light, or with "
    "filters, can shift the result. All training photos come from one study's setup.",
    "CP-AnemiC contains many copies of one picture with conflicting haemoglobin values, also "
    "rotated or mirrored and under other subject ids (training.grouping). Copies are grouped "
    "as one child and scored only on single-image children, but their Hb values are label "
    "noise: the training row takes the group's median Hb.",
    "A LOW result does not rule anemia out: at the 0.3 threshold some anemic children are "
    "still scored LOW (see evaluation.at_medium_threshold.sensitivity).",
    "Some images with consecutive IDs look like repeat photos of one child but are not "
    "identical even under rotation (e.g. Image_342/343), so a little train/test overlap may "
    "remain in cross-validation.",
]

PREPROCESSING = (
    "Decode with OpenCV from memory (JPEG: DCT-scaled so the short side stays >= 224, EXIF "
    "orientation applied; PNG: 16-bit reduced to 8-bit, greyscale/palette expanded to RGB). "
    "Mask: the PNG alpha channel (alpha >= 128 is conjunctiva) when present and not fully "
    "opaque ('provided'); otherwise ml.segmentation.segment_conjunctiva ('automatic'). Resize "
    "RGB and mask to 112x112 with cv2.INTER_AREA (aspect ratio not kept: only colour "
    "statistics are used), scale RGB by 1/255 to [0, 1], threshold the resized mask at 0.5 "
    "to {0, 1}, stack as [1, 112, 112, 4] float32. Inside the graph: 2x2 average pooling to "
    "56x56 (the pooled mask, 0/.25/.5/.75/1, weights the pixels at the mask's edge), "
    "then 13 colour transforms "
    "per pixel (RGB, chromaticity r/g, R-G, (R-G)/(R+G), CIE Lab, HSV saturation/value, "
    "log(R/G)); for each, the masked mean, standard deviation, skewness and a soft cumulative "
    "histogram at 7 fixed thresholds; standardised; averaged logit of 3 one-hidden-layer "
    "MLP classifiers, Platt-scaled sigmoid = calibrated P(anemic); averaged output of 3 "
    "one-hidden-layer MLP regressors = Hb estimate, moved to the cut-off side of the risk "
    "level; exp(linear) of the features = the interval's scale. See hb and output."
)

CONFIDENCE_DEFINITION = (
    "For each risk level, the share of cross-validation test subjects (out-of-fold, all "
    "repeats pooled) given that level whose blood test "
    "agreed with it: LOW = share non-anemic, HIGH = share anemic, MEDIUM = share of the "
    "majority class among MEDIUM subjects. Rounded to 2 decimals. It describes how often the "
    "level was right on children the fold's model had not seen, not the certainty for one "
    "photo."
)


def card_template(site: str, version: str) -> dict[str, Any]:
    return {
        "site": site,
        "version": version,
        "condition": "anemia",
        "intended_use": INTENDED_USE,
        "limitations": LIMITATIONS,
        "preprocessing": PREPROCESSING,
        "output": {
            "name": "p_anemic",
            "shape": [1, 1],
            "meaning": "calibrated probability that Hb < 11.0 g/dL",
        },
        "risk": {
            "thresholds": {"low": 0.3, "high": 0.7},
            "rule": "score < low: LOW; low <= score < high: MEDIUM; score >= high: HIGH",
            "confidence_definition": CONFIDENCE_DEFINITION,
            "confidence_by_level": {},
        },
        "evaluation": None,
        "history": HISTORY,
    }


# Earlier versions' own evaluation, kept for comparison (copied from their cards).
HISTORY: list[dict[str, Any]] = [
    {
        "version": "conjunctiva-1.0.0",
        "created_utc": "2026-11-26T12:23:26Z",
        "what": (
            "trained on 304 open subjects and evaluated once through ml.runtime on 93 held-out "
            "duplicate-free subjects (qc_flag ok); features over 112x112 pooled pixels; no Hb "
            "output; duplicates grouped by the dataset's upright check only"
        ),
        "heldout_masked_auc": 0.767,
        "heldout_masked_auc_95ci": [0.663, 0.867],
        "heldout_automatic_auc": 0.738,
        "heldout_automatic_auc_95ci": [0.633, 0.84],
        "heldout_sensitivity_specificity_at_0_3": [0.846, 0.426],
        "heldout_sensitivity_specificity_at_0_7": [0.462, 0.833],
        "heldout_confidence_by_level": {"low": 0.79, "medium": 0.59, "high": 0.67},
        "cv_5fold_auc_mean_sd": [0.846, 0.034],
    }
]
