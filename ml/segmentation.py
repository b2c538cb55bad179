"""Automatic conjunctiva mask for opaque images (JPEG, or PNG without alpha).

How it works (all on a copy at most WORK_SIDE pixels on its long side):
1. Convert to CIE Lab (OpenCV 8-bit scaling) and smooth it lightly.
2. Redness score per pixel: a* (green-red axis) minus a share of b* (blue-yellow axis),
   so the pink-red conjunctiva stands out from brown or yellowish skin, sclera and lashes
   (skin is about as yellow as it is red; the conjunctiva is clearly more red than yellow).
3. Otsu's threshold on that score splits red from not-red; pixels that are very dark
   (shadow, lashes, pupil) or blown out (specular glare) are removed. Weaker-red pixels
   connected to the clearly red ones are added back (hysteresis, as in Canny edges).
4. Morphological opening then closing removes speckle and fills small gaps; the largest
   connected component is kept and its holes filled.
5. If the red part is not clearly separated (low between-class contrast), the largest
   component found is still returned; an empty mask means nothing red was found.

This is a heuristic, not a trained segmenter: it is evaluated in the model card on the
training crops flattened onto skin-coloured backgrounds, which is easier than a real
phone photo of an eye. B_WEIGHT and HYSTERESIS were set by eye and by mask overlap (IoU)
on a fifth of those flattened crops; labels were not used.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

logger = logging.getLogger(__name__)

WORK_SIDE = 256
B_WEIGHT = 0.6
MIN_L = 25  # 8-bit L (0-255): darker pixels are shadow, lashes or pupil
MAX_L = 250  # brighter pixels are glare
HYSTERESIS = 0.25


def redness(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel redness (float32): a* - B_WEIGHT * b*, in OpenCV's 8-bit Lab units."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    a = lab[..., 1] - 128.0
    b = lab[..., 2] - 128.0
    return a - B_WEIGHT * b


def segment_conjunctiva(rgb: np.ndarray) -> np.ndarray:
    """Return a mask (H, W) uint8 with 255 on the likely conjunctiva, 0 elsewhere."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("segment_conjunctiva expects an (H, W, 3) uint8 RGB array")
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    small = (
        cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        if scale < 1.0
        else rgb
    )
    small = cv2.GaussianBlur(small, (5, 5), 0)
    score = redness(small)
    lum = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)[..., 0]
    valid = (lum >= MIN_L) & (lum <= MAX_L)
    if not valid.any():
        return np.zeros((h, w), np.uint8)
    lo, hi = float(score[valid].min()), float(score[valid].max())
    if hi - lo < 1e-3:
        return np.zeros((h, w), np.uint8)
    score8 = np.clip((score - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    thr, _ = cv2.threshold(
        score8[valid].reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU
    )
    core = (score8 > thr) & valid
    # Hysteresis: also keep weaker-red pixels (down to a quarter of the way from Otsu's
    # threshold to the not-red pixels' median) when they touch the clearly red core, so
    # paler parts of the conjunctiva stay in without admitting separate weak-red regions.
    rest = valid & ~core
    low = (
        float(thr) - HYSTERESIS * (float(thr) - float(np.median(score8[rest])))
        if rest.any()
        else float(thr)
    )
    weak = ((score8 > low) & valid).astype(np.uint8)
    n_labels, labels = cv2.connectedComponents(weak, connectivity=8)
    keep = np.zeros(n_labels, bool)
    keep[np.unique(labels[core])] = True
    keep[0] = False
    mask: np.ndarray = keep[labels].astype(np.uint8) * 255

    k = max(3, (min(small.shape[:2]) // 40) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    mask = _largest_component(mask)
    mask = _fill_holes(mask)
    if scale < 1.0:
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return mask


def _largest_component(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros_like(mask)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.where(labels == largest, 255, 0).astype(np.uint8)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, list(contours), -1, (255,), thickness=cv2.FILLED)
    return filled
