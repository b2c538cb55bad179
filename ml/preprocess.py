"""Turn decoded pixels and a mask into the model's input tensor, as the card specifies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """How pixels become the model input; read from the card's ``input`` section."""

    size: int = 224
    scale: float = 1.0 / 255.0
    interpolation: str = "area"
    mask_threshold: float = 0.5

    @classmethod
    def from_card(cls, section: dict[str, Any]) -> InputSpec:
        return cls(
            size=int(section.get("size", 224)),
            scale=float(section.get("scale", 1.0 / 255.0)),
            interpolation=str(section.get("interpolation", "area")),
            mask_threshold=float(section.get("mask_threshold", 0.5)),
        )


_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def prepare_input(rgb: np.ndarray, mask: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Return a float32 tensor [1, size, size, 4]: RGB scaled to [0, 1], then mask in {0, 1}.

    The image is resized to size x size without keeping the aspect ratio: the model only
    uses colour statistics inside the mask, which the stretch does not change. The mask
    (0/255) is resized with the same interpolation and thresholded.
    """
    size = spec.size
    interp = _INTERPOLATIONS[spec.interpolation]
    small = cv2.resize(rgb, (size, size), interpolation=interp).astype(np.float32) * np.float32(
        spec.scale
    )
    m = cv2.resize(mask, (size, size), interpolation=interp).astype(np.float32) / np.float32(255)
    m = (m >= np.float32(spec.mask_threshold)).astype(np.float32)
    out = np.empty((1, size, size, 4), dtype=np.float32)
    out[0, :, :, :3] = small
    out[0, :, :, 3] = m
    return out
