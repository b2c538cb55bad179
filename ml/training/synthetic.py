"""Flattened crops: a masked training crop with its alpha dropped, on a skin-like background.

Used to measure the automatic-segmentation path (a photo without a mask) on labelled data.
Only NumPy and OpenCV: the tests use it too.
"""

from __future__ import annotations

import cv2
import numpy as np

# Medium to dark brown skin tones (RGB), as around the eyes of the children in the data.
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (92, 60, 45),
    (118, 78, 58),
    (141, 98, 72),
    (165, 120, 90),
    (75, 50, 40),
)
MARGIN = 0.25  # background added on each side, as a share of the crop's size
NOISE_SD = 6.0


def flatten_on_skin(rgb: np.ndarray, mask: np.ndarray, *, index: int) -> np.ndarray:
    """Composite the crop over a textured skin tone chosen by ``index``; returns RGB uint8.

    The crop is placed in the middle of a larger skin-coloured canvas; pixels outside the
    mask (alpha < 128) take the skin colour, so the mask is no longer available.
    """
    h, w = mask.shape
    my, mx = round(h * MARGIN), round(w * MARGIN)
    rng = np.random.default_rng(index)
    tone = np.array(SKIN_TONES[index % len(SKIN_TONES)], dtype=np.float32)
    canvas_shape = (h + 2 * my, w + 2 * mx, 3)
    noise: np.ndarray = rng.normal(0.0, NOISE_SD, canvas_shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (5, 5), 0)
    canvas = np.clip(tone + noise, 0, 255)
    inside = (mask >= 128)[..., None]
    region = canvas[my : my + h, mx : mx + w]
    canvas[my : my + h, mx : mx + w] = np.where(inside, rgb.astype(np.float32), region)
    return canvas.astype(np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
