"""The negatives battery for the photo gate: deterministic, built in memory, never saved.

Families (each item is what the service would receive, as a DecodedImage):
- from the open data: the fingernail photos (whole, automatic path), and outlines of their
  skin boxes, nail boxes and white-board areas (an ellipse cut to its bounding box, with
  alpha outside, as the patient page sends an outline);
- real conjunctiva crops spoiled by light (darkened, blown out, strong blue or orange
  cast, desaturated), both outlined (their own alpha) and flattened onto skin (automatic);
- skin beside a real eyelid: a square or an ellipse outlined on the skin next to a crop;
- procedural scenes, since nothing is downloaded: landscape, plain skin in several tones,
  red cloth, pink cloth, brick wall, wood grain, water, a printed page, noise, each whole
  (automatic), outlined with an ellipse (provided mask) and as an opaque square crop (what
  the page sends for a square outline: no transparency, so the automatic path).

The scenes are deliberately simple; the gate is not tuned on them (its thresholds come
from the real crops only), they only report what it refuses.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ml.images import DecodedImage, ImageHeader, decode_image
from ml.training.synthetic import flatten_on_skin


@dataclass(frozen=True)
class Negative:
    family: str
    image: DecodedImage


def _image(rgb: np.ndarray, mask: np.ndarray | None) -> DecodedImage:
    h, w = rgb.shape[:2]
    rgb = np.ascontiguousarray(rgb.astype(np.uint8))
    return DecodedImage(rgb=rgb, mask=mask, header=ImageHeader("png", w, h, mask is not None, 8))


def ellipse_outline(rgb: np.ndarray, box: tuple[int, int, int, int]) -> DecodedImage:
    """An ellipse inscribed in box (x0, y0, x1, y1), cut to the box, alpha outside."""
    x0, y0, x1, y1 = box
    crop = rgb[y0:y1, x0:x1]
    h, w = crop.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    axes = (max(1, w // 2 - 1), max(1, h // 2 - 1))
    cv2.ellipse(mask, (w // 2, h // 2), axes, 0, 0, 360, (255,), -1)
    return _image(crop, mask)


def square_outline(rgb: np.ndarray, box: tuple[int, int, int, int]) -> DecodedImage:
    """A square/rectangle outline: the page sends the box fully opaque (automatic path)."""
    x0, y0, x1, y1 = box
    return _image(rgb[y0:y1, x0:x1], None)


# --- procedural scenes -------------------------------------------------------------------

H, W = 480, 640


def _noise(rng: np.random.Generator, sd: float, blur: int = 0) -> np.ndarray:
    n: np.ndarray = rng.normal(0.0, sd, (H, W, 1)).astype(np.float32)
    if blur:
        return np.asarray(cv2.GaussianBlur(n, (0, 0), blur))[..., None]
    return n


def _shade(rng: np.random.Generator, amount: float) -> np.ndarray:
    """Low-frequency lighting variation, multiplicative, around 1."""
    coarse = rng.normal(0.0, 1.0, (6, 8)).astype(np.float32)
    n = np.asarray(cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC))
    return (1.0 + amount * n / (np.abs(n).max() + 1e-6))[..., None]


def landscape(rng: np.random.Generator) -> np.ndarray:
    yy = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    sky = np.array([90, 150, 230], np.float32) * (1 - 0.3 * yy) + 40 * yy
    grass = np.array([70, 140, 50], np.float32) + _noise(rng, 18, 1) + _noise(rng, 10)
    horizon = int(H * rng.uniform(0.35, 0.55))
    img = np.broadcast_to(sky, (H, W, 3)).copy()
    img[horizon:] = grass[horizon:]
    return np.clip(img * _shade(rng, 0.15), 0, 255)


SKIN = (
    (236, 200, 178),
    (224, 172, 140),
    (198, 140, 105),
    (160, 105, 75),
    (110, 72, 52),
    (80, 52, 40),
)


def skin(rng: np.random.Generator, tone: tuple[int, int, int]) -> np.ndarray:
    img = np.array(tone, np.float32) + _noise(rng, 6, 2) + _noise(rng, 3)
    return np.clip(img * _shade(rng, 0.2), 0, 255)


def cloth(rng: np.random.Generator, colour: tuple[int, int, int]) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    weave = 12 * np.sin(xx * 1.3) * np.sin(yy * 1.3)
    folds = 0.25 * np.sin(xx / 35.0 + 2 * np.sin(yy / 60.0))
    img = np.array(colour, np.float32) * (1 + folds[..., None]) + weave[..., None]
    return np.clip(img + _noise(rng, 5), 0, 255)


def brick(rng: np.random.Generator) -> np.ndarray:
    img = np.empty((H, W, 3), np.float32)
    img[...] = (185, 185, 175)  # mortar
    bh, bw = 40, 90
    for row in range(0, H, bh):
        off = (row // bh % 2) * bw // 2
        for col in range(-bw, W, bw):
            tone = np.array([165, 70, 50], np.float32) * rng.uniform(0.8, 1.15)
            img[row + 4 : row + bh - 4, max(0, col + off + 4) : max(0, col + off + bw - 4)] = tone
    return np.clip(img + _noise(rng, 10), 0, 255)


def wood(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rings = np.sin((yy + 15 * np.sin(xx / 80.0)) / 6.0) * 0.5 + 0.5
    base = np.array([160, 110, 65], np.float32)
    img = base * (0.75 + 0.3 * rings[..., None])
    return np.clip(img + _noise(rng, 6, 1), 0, 255)


def water(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    waves = np.sin(xx / 17.0 + np.sin(yy / 23.0) * 3) * np.sin(yy / 11.0)
    img = np.array([40, 110, 150], np.float32) + 30 * waves[..., None]
    return np.clip(img + _noise(rng, 8, 1), 0, 255)


def printed_page(rng: np.random.Generator) -> np.ndarray:
    img = np.full((H, W, 3), 238, np.float32)
    for y in range(30, H - 30, 22):
        x = 30
        while x < W - 60:
            word = int(rng.integers(15, 70))
            img[y : y + 10, x : x + word] = 30
            x += word + 10
    blurred = np.asarray(cv2.GaussianBlur(img, (3, 3), 0))
    return np.clip(blurred * _shade(rng, 0.1) + _noise(rng, 3), 0, 255)


def noise(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (H, W, 3)).astype(np.float32)


def scenes() -> dict[str, Callable[[np.random.Generator], np.ndarray]]:
    out: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
        "landscape": landscape,
        "red_cloth": lambda r: cloth(r, (175, 25, 35)),
        "pink_cloth": lambda r: cloth(r, (215, 120, 130)),
        "brick_wall": brick,
        "wood": wood,
        "water": water,
        "printed_page": printed_page,
        "noise": noise,
    }
    for i, tone in enumerate(SKIN):
        out[f"skin_tone{i + 1}"] = _skin_maker(tone)
    return out


def _skin_maker(tone: tuple[int, int, int]) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: skin(rng, tone)


def scene_negatives(per_scene: int = 4, seed: int = 0) -> Iterator[Negative]:
    for k, (name, make) in enumerate(scenes().items()):
        for i in range(per_scene):
            rng = np.random.default_rng(seed * 1000 + k * 100 + i)
            rgb = make(rng).astype(np.uint8)
            yield Negative(f"scene_whole:{name}", _image(rgb, None))
            x0, y0 = int(rng.integers(40, 200)), int(rng.integers(40, 150))
            box = (x0, y0, x0 + int(rng.integers(160, 360)), y0 + int(rng.integers(60, 200)))
            yield Negative(f"scene_ellipse:{name}", ellipse_outline(rgb, box))
            side = int(rng.integers(60, 200))
            yield Negative(
                f"scene_square:{name}", square_outline(rgb, (x0, y0, x0 + side, y0 + side))
            )


# --- from the open data ------------------------------------------------------------------


def _rows(dataset_dir: Path, kind: str) -> list[dict[str, str]]:
    with (dataset_dir / "labels.csv").open(newline="") as fh:
        return sorted(
            (r for r in csv.DictReader(fh) if r["image_kind"] == kind), key=lambda r: r["file"]
        )


def _boxes(text: str) -> list[tuple[int, int, int, int]]:
    """Source boxes [y0, x0, y1, x1] -> (x0, y0, x1, y1), clipped to the 800x600 photo."""
    out = []
    for y0, x0, y1, x1 in json.loads(text or "[]"):
        x0, x1 = max(0, min(x0, x1)), min(800, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(600, max(y0, y1))
        if x1 - x0 >= 8 and y1 - y0 >= 8:
            out.append((int(x0), int(y0), int(x1), int(y1)))
    return out


def fingernail_negatives(
    dataset_dir: Path, every: int = 5, *, with_nails: bool = True
) -> Iterator[Negative]:
    """The fingernail photos and parts of them; without the nails for the nail gate."""
    for row in _rows(dataset_dir, "fingers_photo")[::every]:
        rgb = decode_image((dataset_dir / row["file"]).read_bytes()).rgb
        if with_nails:
            yield Negative("nails_whole", _image(rgb, None))
        for box in _boxes(row["skin_bboxes"])[:1]:
            yield Negative("nails_skin_box_ellipse", ellipse_outline(rgb, box))
            yield Negative("nails_skin_box_square", square_outline(rgb, box))
        for box in _boxes(row["nail_bboxes"])[:1] if with_nails else []:
            yield Negative("nails_nail_box_ellipse", ellipse_outline(rgb, box))
        yield Negative("nails_board_ellipse", ellipse_outline(rgb, (80, 60, 330, 400)))


def conjunctiva_crops(dataset_dir: Path, every: int = 10) -> Iterator[tuple[int, DecodedImage]]:
    for i, row in enumerate(_rows(dataset_dir, "palpebral_crop")[::every]):
        yield i, decode_image((dataset_dir / row["file"]).read_bytes())


def conjunctiva_negatives(dataset_dir: Path, every: int = 10) -> Iterator[Negative]:
    """For the fingernail gate (and the skin-beside-an-eyelid family of both)."""
    for _, crop in conjunctiva_crops(dataset_dir, every):
        yield Negative("conjunctiva_crop", crop)


def light_transforms() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    def grey(x: np.ndarray) -> np.ndarray:
        g = x.mean(axis=2, keepdims=True)
        return 0.85 * g + 0.15 * x

    return {
        "darkened": lambda x: x * 0.3,
        "blown_out": lambda x: 60 + x * 2.2,
        "blue_cast": lambda x: x * np.array([0.55, 0.8, 1.6], np.float32),
        "orange_cast": lambda x: x * np.array([1.35, 0.95, 0.45], np.float32),
        "desaturated": grey,
    }


def spoiled_crops(dataset_dir: Path, every: int = 10) -> Iterator[Negative]:
    """Real crops spoiled by light: outlined (own alpha) and flattened on skin (automatic)."""
    for i, crop in conjunctiva_crops(dataset_dir, every):
        assert crop.mask is not None
        flat = flatten_on_skin(crop.rgb, crop.mask, index=i).astype(np.float32)
        for name, fn in light_transforms().items():
            spoiled = np.clip(fn(crop.rgb.astype(np.float32)), 0, 255)
            yield Negative(f"crop_outlined:{name}", _image(spoiled, crop.mask))
            yield Negative(f"crop_automatic:{name}", _image(np.clip(fn(flat), 0, 255), None))


def skin_beside_eyelid(dataset_dir: Path, every: int = 10) -> Iterator[Negative]:
    """A square or ellipse outlined on the skin next to a real crop (flattened on skin)."""
    for i, crop in conjunctiva_crops(dataset_dir, every):
        assert crop.mask is not None
        flat = flatten_on_skin(crop.rgb, crop.mask, index=i)
        h, w = crop.mask.shape
        band = max(16, round(w * 0.25))  # the skin margin left of the crop
        box = (0, 0, band, min(flat.shape[0], band * 2))
        yield Negative("skin_beside_eyelid_square", square_outline(flat, box))
        yield Negative("skin_beside_eyelid_ellipse", ellipse_outline(flat, box))


def battery(dataset_dir: Path | None, site: str) -> Iterator[Negative]:
    """Every negative family for ``site``; the data-derived ones need the dataset."""
    yield from scene_negatives()
    if dataset_dir is None:
        return
    if site == "conjunctiva":
        yield from fingernail_negatives(dataset_dir)
        yield from spoiled_crops(dataset_dir)
    else:
        yield from conjunctiva_negatives(dataset_dir)
        yield from fingernail_negatives(dataset_dir, with_nails=False)
    yield from skin_beside_eyelid(dataset_dir)
