"""Reading the labelled dataset (../shared/data/anemia layout) for one body site."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.images import decode_image
from ml.preprocess import InputSpec, prepare_input

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASET_DIR = REPO_ROOT.parent / "shared" / "data" / "anemia"
ENV_VAR = "HEALTHGUARD_DATASET_DIR"

# Which rows of labels.csv belong to which model folder.
SITE_IMAGE_KIND = {"conjunctiva": "palpebral_crop", "fingernail": "fingers_photo"}


@dataclass(frozen=True)
class Sample:
    file: str
    subject_id: str
    label: int  # 1 anemic, 0 non-anemic
    hb_g_dl: float
    sex: str
    region: str
    site: str
    qc_flag: str
    dup_group: str


def resolve_dataset_dir(flag: str | None) -> Path | None:
    """--dataset-dir, else $HEALTHGUARD_DATASET_DIR, else ../shared/data/anemia if present."""
    if flag:
        return Path(flag)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    if (DEFAULT_DATASET_DIR / "labels.csv").is_file():
        return DEFAULT_DATASET_DIR
    return None


def labels_sha256(dataset_dir: Path) -> str:
    return hashlib.sha256((dataset_dir / "labels.csv").read_bytes()).hexdigest()


def _region(site: str) -> str:
    # "Komfo Anokye Teaching Hospital (Ashanti)" -> "Ashanti"
    if "(" in site and site.endswith(")"):
        return site.rsplit("(", 1)[1][:-1]
    return site or "unknown"


def load_samples(
    dataset_dir: Path, site: str = "conjunctiva", *, keep_conflicting_label: bool = False
) -> list[Sample]:
    """Labelled rows of one site, skipping blank labels (and, unless asked, the
    conflicting-label duplicates: their group's median Hb can still label them)."""
    kind = SITE_IMAGE_KIND[site]
    samples: list[Sample] = []
    with (dataset_dir / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["image_kind"] != kind or row["label"] not in ("anemic", "non_anemic"):
                continue
            if row["qc_flag"] == "dup_conflicting_label" and not keep_conflicting_label:
                # The same picture is labelled both ways: no usable label.
                continue
            samples.append(
                Sample(
                    file=row["file"],
                    subject_id=row["subject_id"],
                    label=1 if row["label"] == "anemic" else 0,
                    hb_g_dl=float(row["hb_g_dl"]),
                    sex=row["sex"] or "unknown",
                    region=_region(row["site"]),
                    site=row["site"] or "unknown",
                    qc_flag=row["qc_flag"],
                    dup_group=row["dup_group"],
                )
            )
    logger.info("loaded %d labelled %s samples from %s", len(samples), site, dataset_dir)
    return samples


def load_tensor(dataset_dir: Path, sample: Sample, spec: InputSpec) -> np.ndarray:
    """Model input (size, size, 4) for a masked training crop, through the runtime's code."""
    image = decode_image((dataset_dir / sample.file).read_bytes())
    if image.mask is None:
        raise ValueError(f"{sample.file} has no alpha mask")
    return prepare_input(image.rgb, image.mask, spec)[0]


def one_per_subject(samples: list[Sample]) -> list[Sample]:
    """The first image (by file name) of each subject: duplicates count once."""
    chosen: dict[str, Sample] = {}
    for s in sorted(samples, key=lambda s: s.file):
        chosen.setdefault(s.subject_id, s)
    return sorted(chosen.values(), key=lambda s: s.file)


def load_crop(dataset_dir: Path, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, mask) of a masked training crop at its own size, as the runtime decodes it."""
    image = decode_image((dataset_dir / sample.file).read_bytes())
    if image.mask is None:
        raise ValueError(f"{sample.file} has no alpha mask")
    return image.rgb, image.mask


# Two copies whose Hb differs by more than this are a label conflict (the sheet has 0.1 g/dL
# resolution, with a few 2-decimal values).
HB_CONFLICT_G_DL = 0.05


@dataclass(frozen=True)
class Subject:
    """One child as far as the images can tell: a group of copies (see ml.training.fingerprint)."""

    group: str
    samples: tuple[Sample, ...]  # sorted by file; samples[0] is the training image
    hb_g_dl: float  # median Hb of the group
    cutoff_g_dl: float

    @property
    def image(self) -> Sample:
        return self.samples[0]

    @property
    def label(self) -> int:
        return int(self.hb_g_dl < self.cutoff_g_dl)

    @property
    def clean(self) -> bool:
        """A single image, duplicate-free in the dataset and under rotation/flip."""
        return len(self.samples) == 1 and self.samples[0].qc_flag == "ok"

    @property
    def conflicting_hb(self) -> bool:
        hbs = [s.hb_g_dl for s in self.samples]
        return max(hbs) - min(hbs) > HB_CONFLICT_G_DL

    @property
    def subject_ids(self) -> tuple[str, ...]:
        return tuple(sorted({s.subject_id for s in self.samples}))


def subjects_from_groups(
    samples: list[Sample], group_of: dict[str, str], cutoff_g_dl: float
) -> list[Subject]:
    """One Subject per group (group_of: file -> group id), sorted by group id."""
    by_group: dict[str, list[Sample]] = {}
    for s in samples:
        by_group.setdefault(group_of[s.file], []).append(s)
    out = []
    for g in sorted(by_group):
        members = tuple(sorted(by_group[g], key=lambda s: s.file))
        hb = float(np.median([s.hb_g_dl for s in members]))
        out.append(Subject(group=g, samples=members, hb_g_dl=hb, cutoff_g_dl=cutoff_g_dl))
    return out
