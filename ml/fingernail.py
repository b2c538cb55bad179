"""What the fingernail site does differently before the model runs.

The patient page sends a PNG whose alpha is 255 on the nail beds and 0 elsewhere. A
browser canvas may drop the RGB under alpha 0 (premultiplied alpha), so the model must not
depend on it: ``fingernail_input`` blanks every pixel outside the mask before resizing, in
training and in the service alike, and the graph erodes the mask by one pixel so the
blurred edge (where nail and blank pixels mix) is not measured either.

There is no automatic nail finder: colour rules that separate nail from the surrounding
finger skin were not reliable on the dataset's photos (nail and skin differ little in
colour, and a wrong region gives a confident wrong answer), so an opaque photo is refused
with ``NoFingernailFound`` and advice instead.
"""

from __future__ import annotations

import numpy as np

from ml.images import ImageError
from ml.preprocess import InputSpec, prepare_input

SITE = "fingernail"
NO_MASK_ADVICE = (
    "Outline each fingernail on the photo (tap or trace each nail), then send it again. "
    "Take the photo in daylight, without nail polish, with the fingers flat on a white sheet."
)


class NoFingernailFound(ImageError):
    """A fingernail photo without nail outlines (opaque), or with outlines too small."""

    code = "no_fingernail_found"

    def __init__(self, message: str, advice: str = NO_MASK_ADVICE) -> None:
        super().__init__(message)
        self.advice = advice


def fingernail_input(rgb: np.ndarray, mask: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Model input [1, S, S, 4] for a fingernail photo: RGB outside the mask set to 0 first.

    rgb: (H, W, 3) uint8; mask: (H, W) uint8 0/255 (the nail beds).
    """
    blanked = np.where(mask[..., None] > 0, rgb, 0).astype(np.uint8)
    return prepare_input(blanked, mask, spec)
