"""The benchmark's uploads, built in memory from the real crops at run time.

Nothing is written to disk and no image is copied into the project:

- ``phone``: a 12-megapixel (4000x3000) JPEG of about 3 MB, as a phone camera sends it: a
  real crop composited onto a skin-coloured background, scaled up, with sensor-like noise
  so that the JPEG is as large as a real photo (a smooth synthetic picture would
  compress to a fraction of that and flatter the decoder).
- ``browser``: the ~600x400 JPEG the patient page sends after cropping in the browser.
- ``crops``: the real CP-AnemiC crops (RGBA PNG, the alpha channel is the mask), as is.

The photo gate (ml/gate.py) refuses a few of these with a 422, which the load generator
counts as "rejected", not "ok": 5 of the 630 crops, and the first ``phone`` upload
(its automatic segmentation is unsure: ``outline_needed``); the ``browser`` ones pass.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from devtools.multipart import image_upload

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATASET_DIR = Path(
    os.environ.get("HEALTHGUARD_DATASET_DIR", PROJECT_DIR.parent / "shared" / "data" / "anemia")
)
WORKLOADS = ("phone", "browser", "crops")

# Skin tones (BGR) for the background; the crop is composited through its alpha mask.
_SKIN_BGR = ((105, 140, 190), (80, 115, 165), (60, 90, 135), (125, 160, 210))
PHONE_SIZE = (4000, 3000)
PHONE_NOISE_SIGMA = 6.0
PHONE_QUALITY = 90
BROWSER_SIZE = (600, 400)
BROWSER_QUALITY = 92  # canvas.toBlob's default JPEG quality


@dataclass(frozen=True)
class Upload:
    """One ready-to-send multipart body."""

    name: str
    body: bytes
    content_type: str
    image_bytes: int


def crop_paths(limit: int | None = None) -> list[Path]:
    """The conjunctiva crops, in labels.csv order (all of them, not only qc_flag ok)."""
    labels = DATASET_DIR / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(
            f"{labels} not found: set HEALTHGUARD_DATASET_DIR to the anemia dataset folder"
        )
    with labels.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["image_kind"] == "palpebral_crop"]
    paths = [DATASET_DIR / r["file"] for r in rows]
    return paths[:limit] if limit else paths


def _upload(name: str, data: bytes, content_type: str) -> Upload:
    body, ctype = image_upload(data, name, content_type)
    return Upload(name=name, body=body, content_type=ctype, image_bytes=len(data))


def _composite(
    crop_bgra: np.ndarray, size: tuple[int, int], skin: Sequence[int], fill: float,
    rng: np.random.Generator, noise_sigma: float,
) -> np.ndarray:
    """The crop, scaled to ``fill`` of the width, on a shaded skin background, plus noise."""
    width, height = size
    # Shading: a smooth gradient, built small and scaled up (cheap, and lens-like).
    gy, gx = np.mgrid[0:16, 0:16].astype(np.float32) / 15.0 - 0.5
    base = np.asarray(skin, np.float32)
    shade = base + gx[..., None] * np.float32(30) - gy[..., None] * np.float32(20)
    canvas = cv2.resize(shade, (width, height), interpolation=cv2.INTER_LINEAR)
    ch, cw = crop_bgra.shape[:2]
    scale = min(fill * width / cw, 0.9 * height / ch)
    big = cv2.resize(
        crop_bgra, (max(1, round(cw * scale)), max(1, round(ch * scale))),
        interpolation=cv2.INTER_CUBIC,
    )
    bh, bw = big.shape[:2]
    y0, x0 = (height - bh) // 2, (width - bw) // 2
    alpha = big[..., 3:4].astype(np.float32) / np.float32(255)
    roi = canvas[y0 : y0 + bh, x0 : x0 + bw]
    canvas[y0 : y0 + bh, x0 : x0 + bw] = roi * (1 - alpha) + big[..., :3].astype(np.float32) * alpha
    if noise_sigma > 0:
        # Luminance noise as a phone sensor leaves it after its own denoising.
        canvas += rng.normal(0.0, noise_sigma, (height, width, 1)).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _jpeg(bgr: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return buf.tobytes()


def _read_crop(path: Path) -> np.ndarray:
    crop = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if crop is None or crop.ndim != 3 or crop.shape[2] != 4:
        raise ValueError(f"{path} is not an RGBA crop")
    return crop


def phone_uploads(count: int = 3, seed: int = 7) -> list[Upload]:
    rng = np.random.default_rng(seed)
    paths = crop_paths()
    out = []
    for i in range(count):
        crop = _read_crop(paths[(i * 97) % len(paths)])
        skin = _SKIN_BGR[i % len(_SKIN_BGR)]
        bgr = _composite(crop, PHONE_SIZE, skin, 0.45, rng, PHONE_NOISE_SIGMA)
        out.append(_upload(f"IMG_{1000 + i}.jpg", _jpeg(bgr, PHONE_QUALITY), "image/jpeg"))
    return out


def browser_uploads(count: int = 8, seed: int = 11) -> list[Upload]:
    rng = np.random.default_rng(seed)
    paths = crop_paths()
    out = []
    for i in range(count):
        crop = _read_crop(paths[(i * 53 + 5) % len(paths)])
        # The patient crops around the eyelid in the page: the crop fills most of the frame.
        bgr = _composite(crop, BROWSER_SIZE, _SKIN_BGR[i % len(_SKIN_BGR)], 0.8, rng, 2.0)
        out.append(_upload(f"crop-{i}.jpg", _jpeg(bgr, BROWSER_QUALITY), "image/jpeg"))
    return out


def crop_uploads(limit: int | None = None) -> list[Upload]:
    return [_upload(p.name, p.read_bytes(), "image/png") for p in crop_paths(limit)]


def uploads_for(workload: str) -> list[Upload]:
    if workload == "phone":
        return phone_uploads()
    if workload == "browser":
        return browser_uploads()
    if workload == "crops":
        return crop_uploads()
    raise ValueError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
