"""Copies of a crop under rotation/mirroring are one subject (ml.training.fingerprint)."""

from __future__ import annotations

import numpy as np

from ml.training.fingerprint import dihedral_variants, duplicate_groups, exact_fingerprint


def crop(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    mask = np.zeros((40, 56), np.uint8)
    mask[5:33, 4:50] = 255
    mask[5:12, 4:20] = 0  # not symmetric, so rotations really differ
    return rgb, mask


def test_every_rotation_and_flip_has_the_same_fingerprint() -> None:
    rgb, mask = crop(0)
    prints = {
        exact_fingerprint(r, m)
        for r, m in zip(dihedral_variants(rgb), dihedral_variants(mask), strict=True)
    }
    assert len(prints) == 1
    assert exact_fingerprint(*crop(1)) not in prints


def test_colour_outside_the_mask_does_not_count() -> None:
    rgb, mask = crop(0)
    other = rgb.copy()
    other[mask == 0] = 0
    assert exact_fingerprint(rgb, mask) == exact_fingerprint(other, mask)
    other[20, 30] ^= 1  # one pixel inside the mask
    assert exact_fingerprint(rgb, mask) != exact_fingerprint(other, mask)


def test_it_groups_rotated_and_mirrored_copies_across_subject_ids() -> None:
    rgb, mask = crop(0)
    rotated = (np.rot90(rgb, 2).copy(), np.rot90(mask, 2).copy())
    mirrored = (rgb[:, ::-1].copy(), mask[:, ::-1].copy())
    noisy = (np.clip(rgb.astype(int) + 1, 0, 255).astype(np.uint8), mask)  # re-encoded copy
    files = ["a", "b", "c", "d", "e", "f"]
    subjects = ["s1", "s2", "s3", "s4", "s5", "s5"]
    crops = [(rgb, mask), rotated, mirrored, noisy, crop(1), crop(2)]
    groups = duplicate_groups(files, subjects, crops)
    g = groups.group_of
    assert g["a"] == g["b"] == g["c"] == g["d"]
    assert g["e"] == g["f"]  # same subject_id
    assert g["a"] != g["e"]
    assert groups.exact_links == 2 and groups.near_links == 1
    exact_only = duplicate_groups(files, subjects, crops, near_mad=0)
    assert exact_only.group_of["d"] != exact_only.group_of["a"]
