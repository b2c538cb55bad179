from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.images import decode_image
from ml.segmentation import segment_conjunctiva
from ml.training.data import load_samples
from ml.training.synthetic import MARGIN, flatten_on_skin


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_it_finds_a_pink_region_on_brown_skin() -> None:
    rgb = np.zeros((150, 240, 3), np.uint8)
    rgb[...] = (100, 68, 50)
    yy, xx = np.mgrid[0:150, 0:240]
    truth = ((xx - 120) / 90.0) ** 2 + ((yy - 80) / 30.0) ** 2 <= 1.0
    rgb[truth] = (205, 120, 125)
    mask = segment_conjunctiva(rgb)
    assert mask.shape == (150, 240) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    assert iou(mask > 0, truth) > 0.9


def test_it_returns_an_empty_mask_for_a_flat_grey_image() -> None:
    assert segment_conjunctiva(np.full((64, 64, 3), 128, np.uint8)).max() == 0


def test_it_keeps_only_the_largest_region() -> None:
    rgb = np.full((100, 200, 3), (100, 68, 50), np.uint8)
    rgb[20:80, 20:120] = (205, 120, 125)
    rgb[40:50, 170:180] = (205, 120, 125)
    mask = segment_conjunctiva(rgb)
    assert mask[50, 70] == 255
    assert mask[45, 175] == 0


def test_it_rejects_non_rgb_input() -> None:
    with pytest.raises(ValueError, match="RGB"):
        segment_conjunctiva(np.zeros((10, 10), np.uint8))


def test_it_finds_real_crops_flattened_onto_skin(dataset_dir: Path) -> None:
    """Real conjunctiva crops, alpha dropped, on skin: the automatic path of the service."""
    samples = [s for s in load_samples(dataset_dir) if s.qc_flag == "ok"][:40]
    scores = []
    for i, s in enumerate(samples):
        crop = decode_image((dataset_dir / s.file).read_bytes())
        assert crop.mask is not None
        flat = flatten_on_skin(crop.rgb, crop.mask, index=i)
        h, w = crop.mask.shape
        my, mx = round(h * MARGIN), round(w * MARGIN)
        truth = np.zeros(flat.shape[:2], bool)
        truth[my : my + h, mx : mx + w] = crop.mask > 0
        scores.append(iou(segment_conjunctiva(flat) > 0, truth))
    assert float(np.median(scores)) > 0.8
    assert float(np.mean(scores)) > 0.7


def test_it_keeps_a_paler_part_attached_to_the_red_region() -> None:
    rgb = np.full((120, 240, 3), (95, 65, 50), np.uint8)
    rgb[40:80, 30:130] = (200, 100, 105)  # clearly red
    rgb[40:80, 130:210] = (225, 150, 140)  # paler pink, touching it
    mask = segment_conjunctiva(rgb)
    assert mask[60, 80] == 255
    assert mask[60, 180] == 255
    assert mask[10, 10] == 0
