"""A real crop on a skin-coloured photo, and tracing its outline on the page's canvas."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tests.conftest import conjunctiva_images, flatten_on_skin

MIN_SPACING = 26  # CSS px between placed points: closer taps would grab the previous point


@dataclass(frozen=True)
class Photo:
    path: Path
    mask: np.ndarray  # the crop's true inner-eyelid mask, in photo pixels (bool)
    label: str


def eyelid_photo(tmp_path: Path, *, index: int = 0, scale: float = 2.0) -> Photo:
    """A dataset crop flattened onto skin and saved as a JPEG, like a phone photo."""
    images = conjunctiva_images()
    if not images:
        raise AssertionError("the anemia dataset is needed (HEALTHGUARD_DATASET_DIR)")
    crop = images[index]
    png = crop.read_bytes()
    photo = flatten_on_skin(png, scale=scale)
    rgba = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    h, w = rgba.shape[:2]
    pad = max(h, w) // 2
    mask = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    mask[pad : pad + h, pad : pad + w] = (rgba[:, :, 3] >= 128).astype(np.uint8) * 255
    scaled = cv2.resize(mask, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST)
    path = tmp_path / "eyelid.jpg"
    assert cv2.imwrite(str(path), photo, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return Photo(path=path, mask=np.asarray(scaled) > 0, label=crop.label)


def outline_of(mask: np.ndarray, *, tolerance: float = 0.006) -> list[tuple[float, float]]:
    """The mask's outer contour as a polygon of a few dozen points (photo pixels)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    poly = cv2.approxPolyDP(contour, tolerance * cv2.arcLength(contour, True), True)
    return [(float(x), float(y)) for x, y in poly.reshape(-1, 2)]


@dataclass(frozen=True)
class View:
    scale: float
    ox: float
    oy: float
    left: float
    top: float

    def to_client(self, p: tuple[float, float]) -> tuple[int, int]:
        return (
            round(self.left + self.ox + p[0] * self.scale),
            round(self.top + self.oy + p[1] * self.scale),
        )

    def to_image(self, client: tuple[int, int]) -> tuple[float, float]:
        return (
            (client[0] - self.left - self.ox) / self.scale,
            (client[1] - self.top - self.oy) / self.scale,
        )


def view_of(page: Any) -> View:
    canvas = page.locator("#outline-canvas")
    data = canvas.evaluate(
        "c => [c.dataset.scale, c.dataset.offsetX, c.dataset.offsetY]"
    )
    box = canvas.bounding_box()
    return View(float(data[0]), float(data[1]), float(data[2]), box["x"], box["y"])


def trace(
    page: Any,
    polygon: list[tuple[float, float]],
    *,
    touch: bool = False,
    avoid: tuple[tuple[int, int], ...] = (),
) -> list[tuple[float, float]]:
    """Click (or tap) the polygon's points on the canvas; return what was placed, in
    photo pixels, computed back from the exact positions clicked. Points too close to
    one already placed (or to `avoid`) are left out: a tap there would grab that point."""
    view = view_of(page)
    clicked: list[tuple[int, int]] = []
    for point in polygon:
        client = view.to_client(point)
        if any(math.dist(client, c) < MIN_SPACING for c in (*clicked, *avoid)):
            continue
        if touch:
            page.touchscreen.tap(*client)
        else:
            page.mouse.click(*client)
        clicked.append(client)
    return [view.to_image(c) for c in clicked]


def drag(page: Any, start: tuple[int, int], end: tuple[int, int]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()


def png_from_multipart(body: bytes) -> bytes:
    start = body.index(b"\x89PNG\r\n\x1a\n")
    end = body.index(b"IEND", start) + 8  # the chunk type, then its CRC
    return body[start:end]


def rasterise(polygon: list[tuple[float, float]], size: tuple[int, int]) -> np.ndarray:
    """The polygon filled in an image of `size` (width, height), as bool."""
    shift = 4  # sub-pixel precision for fillPoly
    pts = np.round(np.array(polygon) * (1 << shift)).astype(np.int32)
    out = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(out, [pts], (255,), lineType=cv2.LINE_8, shift=shift)
    return out > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0
