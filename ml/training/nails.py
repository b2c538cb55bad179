"""The fingernail site: nail boxes -> masks, recipe, session-grouped CV, graph and export.

``python -m ml.training.train --site fingernail`` and ``python -m ml.training.evaluate
--site fingernail`` land here. The features are the shared colour-distribution features
(ml.training.features / ml.training.graph.features_tf) computed inside the nail mask after
a one-pixel erosion; on top of them sit a logistic regression with Platt scaling
(P(Hb < 12.0)), a ridge regression for Hb, and a constant spread with a split-conformal
quantile for the 90% interval. All of it is in the exported graph: input [1, S, S, 4],
output [1, 3] = (p_anemic, hb_mean_g_dl, hb_scale_g_dl).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml.fingernail import fingernail_input
from ml.images import decode_image
from ml.preprocess import InputSpec
from ml.training.features import masked_features

logger = logging.getLogger(__name__)

VERSION = "fingernail-1.0.0"
IMAGE_KIND = "fingers_photo"
ANEMIC_BELOW_G_DL = 12.0  # non-pregnant adult women; men's cut-off (13.0) unusable: sex unknown
NON_ANEMIC_FROM_G_DL = 13.0
COLUMNS = ["p_anemic", "hb_mean_g_dl", "hb_scale_g_dl"]  # then "feature:<name>" columns
INTERVAL_LEVEL = 0.9
CLIP_G_DL = (4.0, 18.0)
RISK_LOW, RISK_HIGH = 0.3, 0.7
# As for the conjunctiva model (ml.training.graph.agree): a HIGH result's estimate sits at
# least this far below the cut-off, a LOW result's at or above it.
AGREE_MARGIN_G_DL = 0.1
CALIBRATION_EDGES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
# Photos whose runtime outputs the card records and tests/ml/test_fingernail.py re-checks:
# one per session for six sessions, both labels and one blank-label (12-13 g/dL) photo.
REFERENCE_FILES = (
    "images/yakimov_nails/yakimov_P001.png",
    "images/yakimov_nails/yakimov_P016.png",
    "images/yakimov_nails/yakimov_P105.png",
    "images/yakimov_nails/yakimov_P170.png",
    "images/yakimov_nails/yakimov_P222.png",
    "images/yakimov_nails/yakimov_P334.png",
)


@dataclass(frozen=True)
class NailSample:
    file: str
    session: str
    hb_g_dl: float
    label: int | None  # 1 anemic (Hb < 12.0), 0 non-anemic (Hb >= 13.0), None in between
    nail_boxes: tuple[tuple[int, int, int, int], ...]  # (y_min, x_min, y_max, x_max)


@dataclass(frozen=True)
class NailConfig:
    input_size: int = 224
    logistic_c: float = 0.1
    ridge_alpha: float = 30.0
    inner_folds: int = 4
    cv_folds: int = 4
    cv_repeats: int = 5
    seed: int = 20261201

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class NailParams:
    thresholds: np.ndarray
    widths: np.ndarray
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    w_cls: np.ndarray  # (n_features,) logistic weights on standardised features
    b_cls: float
    platt_a: float
    platt_b: float
    w_hb: np.ndarray  # (n_features,) ridge weights on standardised features
    b_hb: float
    hb_scale: float  # g/dL: RMS of out-of-fold Hb residuals (constant spread)
    conformal_q: float  # interval = mean -+ conformal_q * hb_scale


def label_for(hb: float) -> int | None:
    if hb < ANEMIC_BELOW_G_DL:
        return 1
    if hb >= NON_ANEMIC_FROM_G_DL:
        return 0
    return None


def load_nail_samples(dataset_dir: Path) -> list[NailSample]:
    """Every fingernail photo (labels derived from Hb with the adult cut-offs)."""
    samples = []
    with (dataset_dir / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["image_kind"] != IMAGE_KIND:
                continue
            hb = float(row["hb_g_dl"])
            boxes = tuple(tuple(int(v) for v in b) for b in json.loads(row["nail_bboxes"]))
            samples.append(
                NailSample(
                    file=row["file"],
                    session=row["session"],
                    hb_g_dl=hb,
                    label=label_for(hb),
                    nail_boxes=boxes,  # type: ignore[arg-type]
                )
            )
    samples.sort(key=lambda s: s.file)
    logger.info("loaded %d fingernail photos from %s", len(samples), dataset_dir)
    return samples


def box_mask(boxes: tuple[tuple[int, int, int, int], ...], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    for y0, x0, y1, x1 in boxes:
        mask[max(y0, 0) : y1, max(x0, 0) : x1] = 255
    return mask


def page_png(dataset_dir: Path, sample: NailSample) -> bytes:
    """The photo as the patient page sends it: RGBA PNG, alpha 255 on the nail boxes only.

    RGB under alpha 0 is blanked, as a browser canvas with premultiplied alpha may do.
    """
    image = decode_image((dataset_dir / sample.file).read_bytes())
    height, width = image.rgb.shape[:2]
    mask = box_mask(sample.nail_boxes, (height, width))
    rgba = np.dstack([np.where(mask[..., None] > 0, image.rgb, 0), mask]).astype(np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ValueError(f"cannot encode {sample.file}")
    return bytes(buf.tobytes())


def load_nail_tensor(dataset_dir: Path, sample: NailSample, spec: InputSpec) -> np.ndarray:
    """Model input (S, S, 4) through the service's decode and fingernail preparation."""
    image = decode_image(page_png(dataset_dir, sample))
    assert image.mask is not None
    return fingernail_input(image.rgb, image.mask, spec)[0]


def erode_mask(tensor: np.ndarray) -> np.ndarray:
    """3x3 erosion of the mask channel (pixels outside the image do not count), as in-graph."""
    out = np.array(tensor, dtype=np.float32, copy=True)
    m = out[..., 3]
    padded = np.pad(m, 1, mode="edge")
    h, w = m.shape
    eroded = np.min(
        np.stack([padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]),
        axis=0,
    )
    out[..., 3] = eroded
    return out


def nail_features(tensor: np.ndarray, thresholds: np.ndarray, widths: np.ndarray) -> np.ndarray:
    return masked_features(erode_mask(tensor), thresholds, widths)


def feature_matrix(tensors: list[np.ndarray], thr: np.ndarray, wd: np.ndarray) -> np.ndarray:
    return np.stack([nail_features(t, thr, wd) for t in tensors])


def predict_nail_features(params: NailParams, feats: np.ndarray) -> np.ndarray:
    """NumPy twin of the graph head: raw features (N, F) -> (N, 3) output columns."""
    xs = (feats - params.feature_mean) / params.feature_scale
    logit = xs @ params.w_cls + params.b_cls
    p = 1.0 / (1.0 + np.exp(-(params.platt_a * logit + params.platt_b)))
    hb = agree_np(p, xs @ params.w_hb + params.b_hb)
    return np.stack([p, hb, np.full(len(xs), params.hb_scale)], axis=1)


def agree_np(p: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The Hb estimate moved to the side of the 12.0 cut-off the risk level says.

    Same rule as the conjunctiva model (ml.training.graph.agree / recipe.agree_np): HIGH
    (p >= 0.7) caps it at cut-off - margin, LOW (p < 0.3) floors it at the cut-off.
    """
    capped = np.minimum(mean, ANEMIC_BELOW_G_DL - AGREE_MARGIN_G_DL)
    floored = np.maximum(mean, ANEMIC_BELOW_G_DL)
    return np.where(p >= RISK_HIGH, capped, np.where(p < RISK_LOW, floored, mean))


def interval(mean: np.ndarray, params: NailParams) -> tuple[np.ndarray, np.ndarray]:
    half = params.conformal_q * params.hb_scale
    return np.clip(mean - half, *CLIP_G_DL), np.clip(mean + half, *CLIP_G_DL)


def params_to_dict(params: NailParams) -> dict[str, Any]:
    """Everything the NumPy twin needs, as JSON (recorded in the card for the tests)."""
    out: dict[str, Any] = {}
    for key, value in asdict(params).items():
        out[key] = np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
    return out


def params_from_dict(raw: dict[str, Any]) -> NailParams:
    arrays = {"thresholds", "widths", "feature_mean", "feature_scale", "w_cls", "w_hb"}
    values: dict[str, Any] = {
        k: (np.asarray(v, dtype=np.float32) if k in arrays else float(v)) for k, v in raw.items()
    }
    return NailParams(**values)
