"""The human-readable parts of the model card."""

from __future__ import annotations

from typing import Any

INTENDED_USE = (
    "A screening aid that suggests whether a young child should get a blood test for anemia, "
    "from a photo of the inner lower eyelid (palpebral conjunctiva). It is NOT a diagnosis and "
    "does not measure haemoglobin: only a blood test can confirm or rule out anemia. Trained on "
    "children aged 6-60 months photographed in 10 hospitals in Ghana (CP-AnemiC); anemia means "
    "Hb < 11.0 g/dL (WHO cut-off for children 6-59 months)."
)

LIMITATIONS = [
    "Trained and evaluated only on children 6-60 months from Ghana; not validated for adults, "
    "pregnant women, other ages, other populations or skin tones.",
    "Small dataset: about 400 distinct children, of which a few hundred train the model; the "
    "held-out figures have wide confidence intervals (see evaluation.auc_95ci).",
    "The training crops were cut out by hand in the source dataset (the PNG alpha channel). "
    "Photos without a mask go through an automatic colour-based segmentation, which was only "
    "tested on those crops flattened onto a skin-coloured background, not on real whole-eye "
    "photos; expect lower accuracy on real photos (evaluation.automatic_segmentation).",
    "Colour depends on light and camera: photos in dim, coloured or flash light, or with "
    "filters, can shift the result. All training photos come from one study's setup.",
    "CP-AnemiC contains many duplicated images with conflicting haemoglobin values; the "
    "held-out set uses only duplicate-free subjects, and each duplicate group counts once in "
    "training, but label noise in the training data remains.",
    "A LOW result does not rule anemia out: at the 0.3 threshold some anemic children are "
    "still scored LOW (see evaluation.at_medium_threshold.sensitivity).",
    "No external validation: all figures come from held-out children of the same dataset. "
    "Cross-validation (about 0.85) is higher than the single held-out split (about 0.77); "
    "the truth for new children is probably nearer the lower figure, and lower still for "
    "photos taken differently from the training crops.",
    "Some images with consecutive IDs look like repeat photos of one child but are not "
    "grouped as duplicates by the dataset (e.g. Image_342/343 in training, Image_344/346 "
    "held out), so a little train/test overlap may remain.",
]

PREPROCESSING = (
    "Decode with OpenCV from memory (JPEG: DCT-scaled so the short side stays >= 224, EXIF "
    "orientation applied; PNG: 16-bit reduced to 8-bit, greyscale/palette expanded to RGB). "
    "Mask: the PNG alpha channel (alpha >= 128 is conjunctiva) when present and not fully "
    "opaque ('provided'); otherwise ml.segmentation.segment_conjunctiva ('automatic'). Resize "
    "RGB and mask to 224x224 with cv2.INTER_AREA (aspect ratio not kept: only colour "
    "statistics are used), scale RGB by 1/255 to [0, 1], threshold the resized mask at 0.5 "
    "to {0, 1}, stack as [1, 224, 224, 4] float32. Inside the graph: 2x2 average pooling to "
    "112x112 (the pooled mask, 0/.25/.5/.75/1, weights the pixels at the mask's edge), "
    "then 13 colour transforms "
    "per pixel (RGB, chromaticity r/g, R-G, (R-G)/(R+G), CIE Lab, HSV saturation/value, "
    "log(R/G)); for each, the masked mean, standard deviation, skewness and a soft cumulative "
    "histogram at 7 fixed thresholds; standardised; averaged logit of 5 one-hidden-layer "
    "MLPs; Platt-scaled sigmoid = calibrated P(anemic)."
)

CONFIDENCE_DEFINITION = (
    "For each risk level, the share of held-out subjects given that level whose blood test "
    "agreed with it: LOW = share non-anemic, HIGH = share anemic, MEDIUM = share of the "
    "majority class among MEDIUM subjects. Rounded to 2 decimals. It describes how often the "
    "level was right on held-out children, not the certainty for one photo."
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
    }
