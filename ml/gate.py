"""The photo gate: refuse what is not like the training photos, or too badly lit to judge.

Runs inside ``Model.predict`` on the prepared input tensor ([1, S, S, 4]: RGB in [0, 1]
and the mask in {0, 1}), after segmentation and before the model is invoked. It never
looks at the model's weights, so a retrained model keeps its gate, and its parameters
come from ``model/<site>/gate.json`` (fitted by ``python -m ml.training.gate_fit``).

Three kinds of check, all on a 56x56 copy of the tensor (see ``python -m ml.bench``):

1. Mask geometry: too small a share of the frame, or too thin to read a colour from.
2. Light, inside the mask: too dark, too bright, clipped channels, a colour cast (the mean
   hue pushed out of the training crops' range, towards blue/magenta or orange/yellow),
   washed-out colour, no texture at all (a flat colour). Thresholds are set from the
   training crops' own spread (a low/high quantile plus a margin), so real crops pass.
3. "Is this like the training photos?": a small colour-feature vector (CIE Lab means,
   log spreads and correlations, saturation, low tail of a*) is whitened with a robust
   Mahalanobis fit on the real training crops, and its distance to the k-th nearest
   real crop is compared with a threshold chosen by subject-grouped cross-validation
   (one model per segmentation path: automatic masks take in some background).
4. "Is this rather a finger?": a logistic discriminant on the same whitened features
   (linear and squared terms) between the real crops and real negatives of the open data
   (the fingernail photos: nail and skin boxes, the white board, whole photos), with a
   threshold chosen by grouped CV (subjects for crops, sessions for negatives) so that it
   refuses few real crops. The k-NN check alone lets nails and finger skin through: they
   sit near the palest real crops.

For the automatic path (no mask uploaded) the segmentation itself is judged: a mask that
is small, stands out little from its surroundings (low contrast), or leaves much of the
equally red area outside it (fragmented) is refused with ``outline_needed``.

Everything refused raises PhotoRejected with a stable ``code`` (see CODES), machine
``reasons`` (see REASONS) and ``advice`` in plain words.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from ml.images import ImageError

GATE_FILE = "gate.json"
GATE_FORMAT = "healthguard-gate/1"
WORK_SIDE = 56

# The code for "not like the training photos", by site.
UNLIKE_CODE = {"conjunctiva": "not_a_conjunctiva", "fingernail": "not_fingernails"}
QUALITY_CODE = "photo_quality"
CODES = (*UNLIKE_CODE.values(), QUALITY_CODE)

# Stable machine names, in the order they are reported.
REASONS = (
    "mask_too_small",
    "mask_too_thin",
    "too_dark",
    "too_bright",
    "clipped",
    "colour_cast",
    "washed_out",
    "no_texture",
    "outline_needed",
    "unlike_training_photos",
)
QUALITY_REASONS = frozenset(REASONS) - {"unlike_training_photos"}

SUBJECT = {"conjunctiva": "the inner lower eyelid", "fingernail": "the fingernails"}

# One plain sentence per reason; {subject} is the body part in words.
ADVICE = {
    "mask_too_small": "The marked area is too small. Move closer or zoom in so that "
    "{subject} fills more of the photo, then mark it again.",
    "mask_too_thin": "The marked area is too thin to read its colour. Mark the whole "
    "pink-red area, not just a line along it.",
    "too_dark": "The photo is too dark. Take it again in bright daylight or a well-lit "
    "room, without covering the light.",
    "too_bright": "The photo is too bright or washed out by the flash. Take it again "
    "without flash, out of direct sunlight.",
    "clipped": "Parts of the photo are pure white or pure black, so their colour is lost. "
    "Take it again without flash and without strong light shining on it.",
    "colour_cast": "The light gives the photo a strong colour tint (too blue or too "
    "orange). Take it again in daylight, not under coloured or yellow lamps, and "
    "without photo filters.",
    "washed_out": "The colours in the photo look grey. Take it again in daylight without "
    "filters or black-and-white mode.",
    "no_texture": "The marked area is one flat colour, not a real photo of {subject}. "
    "Take a photo of {subject} itself.",
    "outline_needed": "We could not find {subject} in the photo with confidence. Please "
    "outline it yourself: draw around the pink-red area.",
    "unlike_training_photos": "This does not look like a photo of {subject}, or the "
    "light is too poor to see its true colour.",
}
HOW_TO = {
    "conjunctiva": "Gently pull the lower eyelid down and photograph the pink-red inside "
    "of it, close up and in good light, then outline that area.",
    "fingernail": "Photograph the fingertips with the nails clearly visible, close up and "
    "in good light.",
}


class GateError(ValueError):
    """gate.json is missing, unreadable or malformed."""


class PhotoRejected(ImageError):
    """The photo is not like the training photos, or too badly lit to be judged.

    ``code`` is one of CODES, ``reasons`` a non-empty list of REASONS names (the API
    puts them in ``details.reasons``) and ``advice`` plain words for a parent.
    """

    code = QUALITY_CODE

    def __init__(self, *, code: str, reasons: list[str], advice: str) -> None:
        super().__init__(advice)
        self.code = code
        self.reasons = list(reasons)
        self.advice = advice


@dataclass(frozen=True)
class Measures:
    """What the gate measures on one input tensor (all plain floats, for reports)."""

    mask_share: float
    thickness: float
    l_median: float
    bright_share: float
    clipped_share: float
    hue_deg: float
    chroma: float
    texture: float
    contrast: float
    red_outside: float
    features: tuple[float, ...]


FEATURE_NAMES = (
    "L_mean",
    "a_mean",
    "b_mean",
    "log_L_std",
    "log_a_std",
    "log_b_std",
    "sat_mean",
    "a_p10",
    "a_b_corr",
    "L_a_corr",
)


def _kth(values: np.ndarray, q: float) -> float:
    """The q-quantile (nearest rank) of a 1-D array; np.partition is cheaper than
    np.percentile for one value."""
    k = min(len(values) - 1, int(q * len(values)))
    return float(np.partition(values, k)[k])


def measure(tensor: np.ndarray) -> Measures:
    """Measure one model input tensor [1, S, S, 4] (or [S, S, 4])."""
    t = tensor[0] if tensor.ndim == 4 else tensor
    small = cv2.resize(
        np.ascontiguousarray(t, dtype=np.float32),
        (WORK_SIDE, WORK_SIDE),
        interpolation=cv2.INTER_AREA,
    )
    rgb = np.ascontiguousarray(small[..., :3])
    inside = small[..., 3] >= 0.5
    n = int(inside.sum())
    if n < 4:
        zeros = tuple(0.0 for _ in FEATURE_NAMES)
        return Measures(n / inside.size, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, zeros)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)  # L 0..100, a/b about -127..127
    px = lab[inside]
    mean = px.mean(axis=0, dtype=np.float64)
    centred = px - mean.astype(np.float32)
    cov = (centred.T @ centred).astype(np.float64) / n
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    l_mean, a_mean, b_mean = (float(v) for v in mean)
    l_std, a_std, b_std = (float(v) for v in sd)
    rgb_in = rgb[inside]
    vmax = rgb_in.max(axis=1)
    vmin = rgb_in.min(axis=1)
    sat = (vmax - vmin) / (vmax + 1e-3)
    features = (
        l_mean,
        a_mean,
        b_mean,
        math.log(l_std + 0.5),
        math.log(a_std + 0.5),
        math.log(b_std + 0.5),
        float(sat.mean()),
        _kth(px[:, 1], 0.1),
        float(cov[1, 2] / (a_std * b_std + 1e-6)),
        float(cov[0, 1] / (l_std * a_std + 1e-6)),
    )
    # Texture: mean absolute Laplacian of L inside the (eroded) mask, in L units.
    big_l = np.ascontiguousarray(lab[..., 0])
    lap = np.abs(cv2.Laplacian(big_l, cv2.CV_32F, ksize=3))
    mask8 = inside.astype(np.uint8)
    eroded = cv2.erode(mask8, np.ones((3, 3), np.uint8)).astype(bool)
    texture = float(lap[eroded].mean()) if eroded.any() else 0.0
    thickness = 2.0 * float(cv2.distanceTransform(mask8, cv2.DIST_L2, 3).max())
    # How well the mask stands out from the rest of the frame in redness (a* - 0.6 b*,
    # the segmenter's score), and how much equally red area lies outside it.
    outside = ~inside
    contrast, red_outside = 99.0, 0.0
    if n <= inside.size - 16:
        red = lab[..., 1] - np.float32(0.6) * lab[..., 2]
        r_in, r_out = red[inside], red[outside]
        spread = math.sqrt((float(r_in.var()) + float(r_out.var())) / 2.0) + 1e-3
        contrast = (float(r_in.mean()) - float(r_out.mean())) / spread
        red_outside = float((r_out > _kth(r_in, 0.25)).sum()) / n
    l_in = px[:, 0]
    return Measures(
        mask_share=n / inside.size,
        thickness=thickness,
        l_median=_kth(l_in, 0.5),
        bright_share=float((l_in > 95.0).mean()),
        clipped_share=float(((vmax >= 0.985) | (vmax <= 0.02)).mean()),
        hue_deg=math.degrees(math.atan2(b_mean, a_mean)),
        chroma=math.hypot(a_mean, b_mean),
        texture=texture,
        contrast=contrast,
        red_outside=red_outside,
        features=features,
    )


Path_ = Literal["provided", "automatic"]
PATHS: tuple[Path_, ...] = ("provided", "automatic")


@dataclass(frozen=True)
class DistanceModel:
    """Distance to the k-th nearest real training image, in whitened feature space.

    The features are whitened with a robust Mahalanobis fit (centre, and ``whiten`` = the
    Cholesky factor of the precision matrix), so that no feature dominates by its units;
    the k-NN distance then follows the real crops' actual spread (which is not an
    ellipsoid: saturated reds or pale orange-browns sit inside the ellipsoid but far
    from any real crop).
    """

    center: np.ndarray
    whiten: np.ndarray
    points: np.ndarray
    k: int
    threshold: float

    def distance(self, features: tuple[float, ...]) -> float:
        z = (np.asarray(features, np.float64) - self.center) @ self.whiten
        d2 = ((self.points - z) ** 2).sum(axis=1)
        return math.sqrt(float(np.partition(d2, self.k - 1)[self.k - 1]))


@dataclass(frozen=True)
class Discriminant:
    """Log-odds that the photo is a real negative (finger, nail, skin, board), not a crop.

    Uses its path's whitening (``center``, ``whiten``); the terms are the whitened
    features z and their squares, so the boundary can curve around the crops' cloud.
    """

    center: np.ndarray
    whiten: np.ndarray
    weights: np.ndarray  # [2 * dims]
    bias: float
    threshold: float

    def score(self, features: tuple[float, ...]) -> float:
        z = (np.asarray(features, np.float64) - self.center) @ self.whiten
        return float(self.bias + np.concatenate([z, z * z]) @ self.weights)


@dataclass(frozen=True)
class Gate:
    """Parameters of one site's gate (see gate.json) and the checks that use them."""

    site: str
    distance_models: dict[Path_, DistanceModel]
    limits: dict[str, float]
    raw: dict[str, Any]
    discriminants: dict[Path_, Discriminant] | None = None

    def reasons(self, m: Measures, how: Path_) -> list[str]:
        """The names of every check that fails (empty: the photo passes)."""
        out = self.hard_reasons(m, how)
        model = self.distance_models[how]
        disc = self.discriminants[how] if self.discriminants else None
        if model.distance(m.features) > model.threshold or (
            disc is not None and disc.score(m.features) > disc.threshold
        ):
            out.append("unlike_training_photos")
        return [r for r in REASONS if r in out]

    def hard_reasons(self, m: Measures, how: Path_) -> list[str]:
        """The explicit mask, light and segmentation checks (no distance)."""
        lim = self.limits
        out: list[str] = []
        if m.mask_share < lim["min_mask_share"] and how == "provided":
            out.append("mask_too_small")
        if m.thickness < lim["min_thickness"]:
            out.append("mask_too_thin")
        if m.l_median < lim["min_l_median"]:
            out.append("too_dark")
        if m.l_median > lim["max_l_median"] or m.bright_share > lim["max_bright_share"]:
            out.append("too_bright")
        if m.clipped_share > lim["max_clipped_share"]:
            out.append("clipped")
        hue = m.hue_deg
        if (lim["cast_low_deg"] <= hue < lim["min_hue_deg"]) or (
            lim["max_hue_deg"] < hue <= lim["cast_high_deg"]
        ):
            out.append("colour_cast")
        if m.chroma < lim["min_chroma"]:
            out.append("washed_out")
        if m.texture < lim["min_texture"]:
            out.append("no_texture")
        if how == "automatic" and (
            m.mask_share < lim["auto_min_mask_share"]
            or m.contrast < lim["auto_min_contrast"]
            or m.red_outside > lim["auto_max_red_outside"]
        ):
            out.append("outline_needed")
        return out

    def check(self, tensor: np.ndarray, how: Path_) -> None:
        """Raise PhotoRejected if the input tensor should not be scored."""
        reasons = self.reasons(measure(tensor), how)
        if reasons:
            raise self.rejection(reasons)

    def rejection(self, reasons: list[str]) -> PhotoRejected:
        reasons = [r for r in REASONS if r in reasons]
        code = code_for(self.site, reasons)
        return PhotoRejected(code=code, reasons=reasons, advice=advice_for(self.site, reasons))


def _quality(reasons: list[str]) -> list[str]:
    """The light/mask reasons, unless the only one is outline_needed next to unlike."""
    quality = [r for r in REASONS if r in reasons and r in QUALITY_REASONS]
    if quality == ["outline_needed"] and "unlike_training_photos" in reasons:
        return []
    return quality


def code_for(site: str, reasons: list[str]) -> str:
    """photo_quality when light or mask is to blame, else not_a_conjunctiva/not_fingernails."""
    if _quality(reasons):
        return QUALITY_CODE
    return UNLIKE_CODE.get(site, f"not_{site}")


def advice_for(site: str, reasons: list[str]) -> str:
    """Plain-words advice for a list of reasons: one sentence each, then how to retake."""
    subject = SUBJECT.get(site, "the body part")
    quality = _quality(reasons)
    if quality:
        chosen = quality
        tail = []
    else:
        chosen = [r for r in REASONS if r in reasons]
        tail = [HOW_TO.get(site, "Take the photo again, close up and in good light.")]
        if "outline_needed" in chosen:  # say how to retake before offering to outline
            chosen.remove("outline_needed")
            tail.append(ADVICE["outline_needed"])
    parts = [ADVICE[r] for r in chosen] + tail
    return " ".join(p.format(subject=subject).strip() for p in parts)


LIMIT_KEYS = (
    "min_mask_share",
    "min_thickness",
    "min_l_median",
    "max_l_median",
    "max_bright_share",
    "max_clipped_share",
    "min_hue_deg",
    "max_hue_deg",
    "cast_low_deg",
    "cast_high_deg",
    "min_chroma",
    "min_texture",
    "auto_min_mask_share",
    "auto_min_contrast",
    "auto_max_red_outside",
)


def gate_from_dict(raw: Any, *, site: str) -> Gate:
    """Validate a parsed gate.json; any problem is a GateError."""
    if not isinstance(raw, dict):
        raise GateError("gate.json must hold a JSON object")
    if raw.get("format") != GATE_FORMAT:
        raise GateError(f"gate.json format must be {GATE_FORMAT!r}, got {raw.get('format')!r}")
    if raw.get("site") != site:
        raise GateError(f"gate.json is for site {raw.get('site')!r}, not {site!r}")
    if list(raw.get("features", [])) != list(FEATURE_NAMES):
        raise GateError("gate.json features do not match this code's feature list")
    try:
        limits = {k: float(raw["limits"][k]) for k in LIMIT_KEYS}
        models = {how: _distance_model(raw["distance"][how]) for how in PATHS}
        discs = None
        if "discriminant" in raw:  # optional: a site without real negatives has none
            discs = {how: _discriminant(raw["discriminant"][how], models[how]) for how in PATHS}
    except (KeyError, TypeError, ValueError) as exc:
        raise GateError(f"gate.json lacks or mangles a required field: {exc}") from exc
    if not all(math.isfinite(v) for v in limits.values()):
        raise GateError("gate.json holds a non-finite limit")
    return Gate(site, models, limits, raw, discs)


def _distance_model(section: Any) -> DistanceModel:
    center = np.asarray(section["center"], np.float64)
    whiten = np.asarray(section["whiten"], np.float64)
    points = np.asarray(section["points"], np.float64)
    k, threshold = int(section["k"]), float(section["threshold"])
    dims = len(FEATURE_NAMES)
    if center.shape != (dims,) or whiten.shape != (dims, dims) or points.ndim != 2:
        raise GateError(f"gate.json distance models must be {dims}-dimensional")
    if points.shape[1] != dims or not 1 <= k <= len(points):
        raise GateError("gate.json distance model points or k are inconsistent")
    numbers = (center, whiten, points, np.array([threshold]))
    if not all(np.isfinite(v).all() for v in numbers):
        raise GateError("gate.json holds a non-finite number")
    if threshold <= 0:
        raise GateError("gate.json distance thresholds must be positive")
    return DistanceModel(center, whiten, points, k, threshold)


def _discriminant(section: Any, model: DistanceModel) -> Discriminant:
    weights = np.asarray(section["weights"], np.float64)
    bias, threshold = float(section["bias"]), float(section["threshold"])
    if weights.shape != (2 * len(FEATURE_NAMES),):
        raise GateError(f"gate.json discriminant weights must be {2 * len(FEATURE_NAMES)} numbers")
    if not (np.isfinite(weights).all() and math.isfinite(bias) and math.isfinite(threshold)):
        raise GateError("gate.json holds a non-finite number")
    return Discriminant(model.center, model.whiten, weights, bias, threshold)


def load_gate(path: Path, *, site: str) -> Gate:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise GateError(f"{path} does not exist: the service never scores without a gate") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GateError(f"{path} is not readable JSON: {exc}") from exc
    return gate_from_dict(raw, site=site)
