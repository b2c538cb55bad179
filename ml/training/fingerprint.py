"""Duplicates under rotation and mirroring: a dihedral-invariant fingerprint of a masked crop.

The dataset's own duplicate check compared upright thumbnails, so copies of a crop that are
rotated by 90/180/270 degrees or mirrored were missed, some of them under other subject ids.
Here every crop is reduced to its colour content inside the mask (RGB zeroed outside the
alpha mask, cropped to the mask's bounding box) and fingerprinted under all 8 rotations and
flips; the smallest digest is the fingerprint, so a crop and any rotated or mirrored copy
of it share one. A second, tolerant key (a small thumbnail of the same content, compared
under the 8 variants) also catches copies that were re-encoded or re-cropped by a pixel.

``duplicate_groups`` joins images that share a fingerprint or a subject_id (union-find), so
each group is one subject for every split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

THUMB = 16
# Mean absolute difference (0-255 scale) under which two thumbnails count as one image.
NEAR_MAD = 2.0


def dihedral_variants(a: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations/flips of an (H, W, ...) array."""
    out = []
    for flipped in (a, a[:, ::-1]):
        for k in range(4):
            out.append(np.ascontiguousarray(np.rot90(flipped, k)))
    return out


def masked_content(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGB zeroed outside the mask, cropped to the mask's bounding box, + the mask channel."""
    on = mask > 0
    if not on.any():
        return np.zeros((1, 1, 4), np.uint8)
    ys, xs = np.nonzero(on)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    content = np.where(on[..., None], rgb, 0).astype(np.uint8)
    stacked = np.dstack([content, np.where(on, 255, 0).astype(np.uint8)])
    return stacked[y0:y1, x0:x1]


def exact_fingerprint(rgb: np.ndarray, mask: np.ndarray) -> str:
    """Same digest for a crop and every rotated/mirrored pixel-identical copy of it."""
    content = masked_content(rgb, mask)
    digests = []
    for v in dihedral_variants(content):
        h = hashlib.sha256(np.array(v.shape, np.int64).tobytes() + v.tobytes())
        digests.append(h.hexdigest())
    return min(digests)


def thumbnail(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """THUMB x THUMB x 4 float thumbnail of the masked content (upright)."""
    content = masked_content(rgb, mask).astype(np.float32)
    return cv2.resize(content, (THUMB, THUMB), interpolation=cv2.INTER_AREA)


def near_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest mean absolute difference between thumbnail a and the 8 variants of b."""
    return min(float(np.abs(a - v).mean()) for v in dihedral_variants(b))


@dataclass(frozen=True)
class Groups:
    group_of: dict[str, str]  # file -> group id (the smallest file name in the group)
    exact_links: int  # pairs joined by an identical fingerprint across subject ids
    near_links: int  # pairs joined only by the tolerant thumbnail key

    def members(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for f, g in sorted(self.group_of.items()):
            out.setdefault(g, []).append(f)
        return out


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {i: i for i in items}

    def find(self, i: str) -> str:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        lo, hi = sorted((ra, rb))
        self.parent[hi] = lo
        return True


def duplicate_groups(
    files: Sequence[str],
    subject_ids: Sequence[str],
    crops: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    near_mad: float = NEAR_MAD,
) -> Groups:
    """Group images sharing a subject_id, an exact dihedral fingerprint or a near thumbnail."""
    uf = _UnionFind(files)
    by_subject: dict[str, str] = {}
    for f, sid in zip(files, subject_ids, strict=True):
        uf.union(by_subject.setdefault(sid, f), f)
    exact_links = 0
    by_print: dict[str, str] = {}
    thumbs = []
    for f, (rgb, mask) in zip(files, crops, strict=True):
        first = by_print.setdefault(exact_fingerprint(rgb, mask), f)
        if uf.union(first, f):
            exact_links += 1
        thumbs.append(thumbnail(rgb, mask))
    near_links = 0
    if near_mad > 0:
        stack = np.stack(thumbs)
        # The mean absolute difference is at least the difference of the overall means
        # (which the 8 variants share), so only pairs closer than that are compared.
        means = stack.mean(axis=(1, 2, 3))
        for i, f in enumerate(files):
            candidates = np.nonzero(np.abs(means - means[i]) < near_mad)[0]
            variants = np.stack(dihedral_variants(thumbs[i]))
            d = np.abs(stack[candidates, None] - variants[None]).mean(axis=(2, 3, 4)).min(axis=1)
            for j in candidates[d < near_mad]:
                if j != i and uf.union(files[int(j)], f):
                    near_links += 1
    return Groups({f: uf.find(f) for f in files}, exact_links, near_links)
