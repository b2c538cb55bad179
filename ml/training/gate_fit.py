"""Fit a site's photo gate from the open data and write ``model/<site>/gate.json``.

    python -m ml.training.gate_fit --site conjunctiva [--dataset-dir DIR] [--out PATH]

Runs in the service venv (NumPy + OpenCV only) in about a minute. Steps:
1. Positives: every real training image of the site, through the service's own input
   path: outlined (the image's mask, ``provided``) and, where the site has an automatic
   segmenter, the automatic path (the crop flattened onto skin-coloured backgrounds and
   segmented by the service's automatic path).
2. Groups for cross-validation: subject_id, merged with any images whose colour features
   are (near-)identical, since the dataset holds rotated/mirrored copies under different
   subject ids.
3. Light and mask limits: from the positives' own spread (a low or high quantile widened
   by a margin; see LIMIT_RULES), so that real photos pass them.
4. Distance: the features are whitened by a robust centre and covariance (iteratively
   trimmed, shrunk); the distance is to the K_NEIGHBOURS-th nearest real image. The
   threshold per path is the quantile of out-of-fold distances that refuses
   TARGET_REFUSAL[path] of real crops, chosen inside nested subject-grouped CV so that the
   reported refusal rate is measured on subjects that set neither the fit nor the threshold.
5. Discriminant (sites with real negatives in the open data: conjunctiva): a logistic
   regression on the whitened features and their squares, real crops against the
   fingernail photos' nail boxes, skin boxes, white board and whole photos (see
   finger_negatives; each family weighs the same). Negatives are grouped by ``session``
   and their sessions split into the same number of folds; the threshold refuses
   DISC_TARGET[path] of out-of-fold real crops, nested inside the CV as for the distance.
6. Report: CV refusal rates of real crops (outlined, automatic), and the refusal rate and
   reasons for each family of the negatives battery (ml.training.gate_battery).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml.gate import (
    FEATURE_NAMES,
    GATE_FILE,
    GATE_FORMAT,
    LIMIT_KEYS,
    PATHS,
    Gate,
    Measures,
    Path_,
    PhotoRejected,
    gate_from_dict,
    measure,
)
from ml.images import DecodedImage, decode_image
from ml.preprocess import InputSpec, prepare_input
from ml.segmentation import segment_conjunctiva
from ml.training.data import SITE_IMAGE_KIND, labels_sha256, resolve_dataset_dir
from ml.training.gate_battery import (
    Negative,
    _boxes,
    _rows,
    battery,
    ellipse_outline,
    square_outline,
)
from ml.training.synthetic import encode_png, flatten_on_skin

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
N_FOLDS = 5
SEED = 0
# Share of real crops the distance check alone may refuse, per path (the targets
# are 3% outlined and 8% automatic for the whole gate; the light checks take the rest).
TARGET_REFUSAL = {"provided": 0.02, "automatic": 0.05}
# Mirrors ml.runtime.MIN_MASK_PIXELS: below it the runtime refuses before the gate.
MIN_MASK_PIXELS = 200
SEGMENTERS = {"conjunctiva": segment_conjunctiva}
K_NEIGHBOURS = 5
# What the runtime raises before the gate when the mask is (nearly) empty.
NO_MASK_CODE = {"conjunctiva": "no_conjunctiva_found", "fingernail": "no_fingernail_found"}


# Share of real crops the discriminant alone may refuse (out of fold), per path.
DISC_TARGET = {"provided": 0.01, "automatic": 0.025}
BALANCE_FAMILIES = True
DISC_L2 = 1.0  # ridge penalty of the logistic regression (on whitened features)
# The white-board area outlined in the fingernail photos (as in the battery).
BOARD_BOX = (80, 60, 330, 400)


@dataclass(frozen=True)
class Positive:
    file: str
    subject_id: str
    provided: Measures
    automatic: Measures | None  # None: the runtime found no mask (refused before the gate)


def _tensor(image: DecodedImage, spec: InputSpec, site: str) -> np.ndarray | None:
    """The runtime's input path (Model.prepare), or None if it refuses for lack of a mask."""
    mask = image.mask if image.mask is not None else SEGMENTERS[site](image.rgb)
    tensor = prepare_input(image.rgb, mask, spec)
    if float(tensor[0, :, :, 3].sum()) < MIN_MASK_PIXELS:
        return None
    return tensor


def _rgba_image(rgb: np.ndarray, mask: np.ndarray) -> DecodedImage:
    """RGB + mask through a real PNG and the service's decoder."""
    rgba = np.dstack([rgb, mask]).astype(np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ValueError("PNG encoding failed")
    return decode_image(buf.tobytes())


def positive_images(dataset_dir: Path, site: str) -> Iterator[tuple[str, str, DecodedImage]]:
    """(file, subject_id, outlined image) for every real training image of the site."""
    with (dataset_dir / "labels.csv").open(newline="") as fh:
        rows = sorted(
            (r for r in csv.DictReader(fh) if r["image_kind"] == SITE_IMAGE_KIND[site]),
            key=lambda r: r["file"],
        )
    for row in rows:
        image = decode_image((dataset_dir / row["file"]).read_bytes())
        if site == "fingernail":
            # As the service receives them: all nails in one mask (alpha 255 on the nail
            # boxes, RGB blanked outside), on the whole photo and on the crop around the
            # nails that the patient page sends.
            boxes = _boxes(row["nail_bboxes"])
            if not boxes:
                continue
            mask = np.zeros(image.rgb.shape[:2], np.uint8)
            for x0, y0, x1, y1 in boxes:
                mask[y0:y1, x0:x1] = 255
            rgb = np.where(mask[..., None] > 0, image.rgb, 0).astype(np.uint8)
            yield f"{row['file']}#whole", row["subject_id"], _rgba_image(rgb, mask)
            cx0, cy0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
            cx1, cy1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
            yield (
                f"{row['file']}#crop",
                row["subject_id"],
                _rgba_image(rgb[cy0:cy1, cx0:cx1], mask[cy0:cy1, cx0:cx1]),
            )
        else:
            yield row["file"], row["subject_id"], image


def collect_positives(dataset_dir: Path, site: str, spec: InputSpec) -> list[Positive]:
    out = []
    for i, (file, subject, image) in enumerate(positive_images(dataset_dir, site)):
        assert image.mask is not None
        tensor = _tensor(image, spec, site)
        if tensor is None:
            continue
        auto: Measures | None = None
        if site in SEGMENTERS:
            flat = flatten_on_skin(image.rgb, image.mask, index=i)
            t_auto = _tensor(decode_image(encode_png(flat)), spec, site)
            auto = measure(t_auto) if t_auto is not None else None
        out.append(Positive(file, subject, measure(tensor), auto))
    return out


@dataclass(frozen=True)
class RealNegative:
    family: str
    session: str
    path: Path_
    measures: Measures | None  # None: the runtime found no mask (refused before the gate)


def finger_negatives(dataset_dir: Path, spec: InputSpec, site: str) -> list[RealNegative]:
    """Every fingernail photo, as the service would receive it outlined or whole."""
    out = []
    for row in _rows(dataset_dir, "fingers_photo"):
        rgb = decode_image((dataset_dir / row["file"]).read_bytes()).rgb
        items: list[tuple[str, DecodedImage]] = [
            ("nails_whole", square_outline(rgb, (0, 0, rgb.shape[1], rgb.shape[0]))),
            ("nails_board_ellipse", ellipse_outline(rgb, BOARD_BOX)),
        ]
        for box in _boxes(row["nail_bboxes"]):
            items.append(("nails_nail_box_ellipse", ellipse_outline(rgb, box)))
            items.append(("nails_nail_box_square", square_outline(rgb, box)))
        for box in _boxes(row["skin_bboxes"]):
            items.append(("nails_skin_box_ellipse", ellipse_outline(rgb, box)))
            items.append(("nails_skin_box_square", square_outline(rgb, box)))
        for family, image in items:
            how: Path_ = "provided" if image.mask is not None else "automatic"
            tensor = _tensor(image, spec, site)
            m = measure(tensor) if tensor is not None else None
            out.append(RealNegative(family, row["session"], how, m))
    return out


def session_folds(negs: list[RealNegative], n_folds: int, seed: int) -> np.ndarray:
    sessions = sorted({n.session for n in negs})
    ids = {s: i for i, s in enumerate(sessions)}
    return grouped_folds(np.array([ids[n.session] for n in negs]), n_folds, seed)


def _terms(z: np.ndarray) -> np.ndarray:
    return np.concatenate([z, z * z], axis=1)


def logistic_fit(
    pos: np.ndarray, neg: np.ndarray, fit: KnnFit, neg_weight: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Weights and bias of P(negative), classes weighted equally; Newton steps, ridge.

    ``neg_weight`` (relative, per negative) balances the negative families."""
    x = _terms(np.vstack([(pos - fit.center) @ fit.whiten, (neg - fit.center) @ fit.whiten]))
    y = np.r_[np.zeros(len(pos)), np.ones(len(neg))]
    nw = np.ones(len(neg)) if neg_weight is None else np.asarray(neg_weight, np.float64)
    sw = np.r_[np.full(len(pos), 0.5 / len(pos)), 0.5 * nw / nw.sum()]
    xb = np.hstack([x, np.ones((len(x), 1))])
    ridge = np.full(xb.shape[1], DISC_L2 / len(x))
    ridge[-1] = 0.0
    w = np.zeros(xb.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (sw * (p - y)) + ridge * w
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(ridge + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w[:-1], float(w[-1])


def logistic_scores(x: np.ndarray, fit: KnnFit, weights: np.ndarray, bias: float) -> np.ndarray:
    return _terms((x - fit.center) @ fit.whiten) @ weights + bias


def family_weights(families: np.ndarray) -> np.ndarray | None:
    """Each family of negatives weighs the same in the fit (None: each photo does)."""
    if not BALANCE_FAMILIES:
        return None
    names, inverse, counts = np.unique(families, return_inverse=True, return_counts=True)
    return np.asarray(1.0 / counts[inverse], np.float64)


def disc_threshold(
    pos: np.ndarray,
    pfolds: np.ndarray,
    neg: np.ndarray,
    nfolds: np.ndarray,
    families: np.ndarray,
    target: float,
) -> float:
    """The score refusing ``target`` of real crops, from out-of-fold scores."""
    oof = np.empty(len(pos))
    for k in np.unique(pfolds):
        test = pfolds == k
        fit = knn_fit(pos[~test])
        keep = nfolds != k
        w, b = logistic_fit(pos[~test], neg[keep], fit, family_weights(families[keep]))
        oof[test] = logistic_scores(pos[test], fit, w, b)
    return float(np.quantile(oof, 1 - target))


def groups_for(positives: list[Positive]) -> np.ndarray:
    """Subject ids merged across images with near-identical colour features."""
    x = np.array([p.provided.features for p in positives])
    z = (x - x.mean(0)) / (x.std(0) + 1e-9)
    parent = list(range(len(positives)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_subject: dict[str, int] = {}
    for i, p in enumerate(positives):
        j = by_subject.setdefault(p.subject_id, i)
        parent[find(i)] = find(j)
    for i in range(len(z)):
        close = np.nonzero(np.abs(z[i + 1 :] - z[i]).max(axis=1) < 0.03)[0] + i + 1
        for j in close:
            parent[find(int(j))] = find(i)
    return np.array([find(i) for i in range(len(positives))])


def grouped_folds(groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    uniq = np.unique(groups)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    fold_of = {int(g): k % n_folds for k, g in zip(order, uniq, strict=True)}
    return np.array([fold_of[int(g)] for g in groups])


def robust_fit(
    x: np.ndarray, trim: float = 0.05, shrink: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and precision of x: refit three times on all but the farthest ``trim``."""
    keep = np.ones(len(x), bool)
    for _ in range(4):
        center = x[keep].mean(0)
        cov = np.cov(x[keep], rowvar=False)
        cov = (1 - shrink) * cov + shrink * np.diag(np.diag(cov))
        prec = np.linalg.inv(cov)
        d = np.einsum("ij,jk,ik->i", x - center, prec, x - center)
        keep = d <= np.quantile(d, 1 - trim)
    prec = (prec + prec.T) / 2
    return center, prec


def distances(x: np.ndarray, center: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances (used by robust_fit's trimming)."""
    return np.einsum("ij,jk,ik->i", x - center, prec, x - center)


@dataclass(frozen=True)
class KnnFit:
    center: np.ndarray
    whiten: np.ndarray
    points: np.ndarray

    def distances(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.center) @ self.whiten
        d2 = ((z[:, None, :] - self.points[None, :, :]) ** 2).sum(axis=2)
        return np.sqrt(np.partition(d2, K_NEIGHBOURS - 1, axis=1)[:, K_NEIGHBOURS - 1])


def knn_fit(x: np.ndarray) -> KnnFit:
    center, prec = robust_fit(x)
    whiten = np.linalg.cholesky(prec)  # prec = W W^T, so |(x - c) W|^2 is Mahalanobis
    return KnnFit(center, whiten, (x - center) @ whiten)


def oof_distances(x: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """k-NN distance of each row from a fit on the other folds' rows."""
    out = np.empty(len(x))
    for k in np.unique(folds):
        test = folds == k
        out[test] = knn_fit(x[~test]).distances(x[test])
    return out


# How each limit is set from the positives' measures: (measure, quantile, margin, path).
# margin is in the measure's own units, widening the quantile away from the real crops.
LIMIT_RULES: dict[str, tuple[str, float, float, str]] = {
    "min_mask_share": ("mask_share", 0.0, -0.10, "provided"),
    "min_thickness": ("thickness", 0.0, -2.0, "provided"),
    "min_l_median": ("l_median", 0.005, -8.0, "provided"),
    "max_l_median": ("l_median", 0.995, 6.0, "provided"),
    "max_bright_share": ("bright_share", 0.995, 0.10, "provided"),
    "max_clipped_share": ("clipped_share", 0.995, 0.10, "provided"),
    "min_hue_deg": ("hue_deg", 0.005, -6.0, "provided"),
    "max_hue_deg": ("hue_deg", 0.995, 8.0, "provided"),
    "min_chroma": ("chroma", 0.005, -4.0, "provided"),
    "min_texture": ("texture", 0.0, 0.0, "provided"),
    "auto_min_contrast": ("contrast", 0.01, -0.2, "automatic"),
    "auto_max_red_outside": ("red_outside", 0.99, 0.15, "automatic"),
}
# Not learnable from crops flattened onto a plain canvas (a real photo's eyelid is a
# smaller share of the frame): a fixed floor, below which the automatic path is unsure.
AUTO_MIN_MASK_SHARE = 0.03
# The hue band beyond the real range that counts as a colour cast (not another object).
CAST_BAND_DEG = 45.0
# Flat colour: texture at most this share of the smallest real crop's.
TEXTURE_FLOOR_SHARE = 0.25


def fit_limits(pos: list[Positive], site: str = "conjunctiva") -> dict[str, float]:
    limits: dict[str, float] = {}
    for key, (name, q, margin, path) in LIMIT_RULES.items():
        values = np.array(
            [
                getattr(p.provided if path == "provided" else p.automatic, name)
                for p in pos
                if (p.automatic if path == "automatic" else p.provided) is not None
            ]
        )
        if len(values) == 0:
            # No automatic path for this site (no segmenter): the check stays open; the
            # runtime then decides (e.g. no_fingernail_found) before the gate.
            limits[key] = -99.0 if key.startswith("auto_min") else 99.0
            continue
        limits[key] = float(np.quantile(values, q)) + margin
    if site != "fingernail":
        # Floors for an eyelid outline; nails are small in a whole photo by nature.
        limits["min_mask_share"] = max(0.02, limits["min_mask_share"])
        limits["min_thickness"] = max(2.0, limits["min_thickness"])
    limits["min_texture"] = limits["min_texture"] * TEXTURE_FLOOR_SHARE
    limits["cast_low_deg"] = limits["min_hue_deg"] - CAST_BAND_DEG
    limits["cast_high_deg"] = limits["max_hue_deg"] + CAST_BAND_DEG
    limits["auto_min_mask_share"] = AUTO_MIN_MASK_SHARE
    return {k: round(limits[k], 4) for k in LIMIT_KEYS}


def build_gate_dict(
    site: str,
    pos: list[Positive],
    folds: np.ndarray,
    labels: dict[str, str] | None = None,
    negs: list[RealNegative] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """gate.json content (without the report) and the CV report on the real crops.

    With ``negs`` (real negatives) the gate also gets a discriminant per path, and the
    report a ``real_negatives`` section: each family's refusal rate on held-out sessions.
    """
    limits = fit_limits(pos, site)
    xp = np.array([p.provided.features for p in pos])
    auto = [p for p in pos if p.automatic is not None]
    xa = np.array([p.automatic.features for p in auto if p.automatic is not None])
    negs = negs or []
    nfolds_all = session_folds(negs, N_FOLDS, SEED) if negs else np.zeros(0, int)
    distance: dict[str, Any] = {}
    discriminant: dict[str, Any] = {}
    cv: dict[str, np.ndarray] = {}
    neg_unlike = np.zeros(len(negs), bool)  # held-out decision of distance + discriminant
    for path, x, f in (
        ("provided", xp, folds),
        ("automatic", xa, folds[[p.automatic is not None for p in pos]]),
    ):
        if path == "automatic" and (site not in SEGMENTERS or len(x) == 0):
            distance[path] = dict(distance["provided"])
            if "provided" in discriminant:
                discriminant[path] = dict(discriminant["provided"])
            continue
        # Each path has its own fit (the automatic masks take in some of the background).
        # Nested CV: the threshold applied to fold k comes from out-of-fold distances
        # within the other folds only; the shipped threshold from all out-of-fold ones.
        target = TARGET_REFUSAL[path]
        on_path = np.array([n.path == path and n.measures is not None for n in negs], bool).reshape(
            -1
        )
        xn = np.array([n.measures.features for n in negs if n.path == path and n.measures])
        nf = nfolds_all[on_path] if len(negs) else np.zeros(0, int)
        fam = np.array([n.family for n in negs if n.path == path and n.measures], dtype=str)
        use_disc = len(xn) > 0
        refused = np.zeros(len(x), bool)
        neg_ref = np.zeros(len(xn), bool)
        for k in np.unique(f):
            test, ntest = f == k, nf == k
            thr_k = float(np.quantile(oof_distances(x[~test], f[~test]), 1 - target))
            fit_k = knn_fit(x[~test])
            refused[test] = fit_k.distances(x[test]) > thr_k
            if use_disc:
                neg_ref[ntest] = fit_k.distances(xn[ntest]) > thr_k
                dthr_k = disc_threshold(
                    x[~test], f[~test], xn[~ntest], nf[~ntest], fam[~ntest], DISC_TARGET[path]
                )
                w, b = logistic_fit(x[~test], xn[~ntest], fit_k, family_weights(fam[~ntest]))
                refused[test] |= logistic_scores(x[test], fit_k, w, b) > dthr_k
                neg_ref[ntest] |= logistic_scores(xn[ntest], fit_k, w, b) > dthr_k
        neg_unlike[on_path] = neg_ref
        fit = knn_fit(x)
        distance[path] = {
            "center": [round(float(v), 6) for v in fit.center],
            "whiten": [[round(float(v), 6) for v in row] for row in fit.whiten],
            "k": K_NEIGHBOURS,
            "threshold": round(float(np.quantile(oof_distances(x, f), 1 - target)), 4),
            "fitted_on": f"{len(x)} real images, {path} path",
            "points": [[round(float(v), 4) for v in row] for row in fit.points],
        }
        if use_disc:
            w, b = logistic_fit(x, xn, fit, family_weights(fam))
            discriminant[path] = {
                "terms": "whitened features (this path's distance center/whiten), then "
                "their squares",
                "weights": [round(float(v), 6) for v in w],
                "bias": round(b, 6),
                "threshold": round(disc_threshold(x, f, xn, nf, fam, DISC_TARGET[path]), 4),
                "fitted_on": f"{len(x)} real images against {len(xn)} real negatives "
                f"(fingernail photos), {path} path",
            }
        cv[path] = refused
    raw: dict[str, Any] = {
        "format": GATE_FORMAT,
        "site": site,
        "features": list(FEATURE_NAMES),
        "distance": distance,
        "limits": limits,
    }
    if discriminant:
        raw["discriminant"] = discriminant
    # Whole-gate CV refusal: limits are fixed from all crops (quantiles with margins);
    # the distance part is the nested out-of-fold decision above.
    gate = gate_from_dict(json.loads(json.dumps(raw)), site=site)
    labels = labels or {}
    report: dict[str, Any] = {}
    for path in PATHS:
        if path not in cv:
            report[path] = {"evaluated": False, "why": f"no automatic segmenter for {site}"}
            continue
        reasons: Counter[str] = Counter()
        by_label: Counter[str] = Counter()
        n_refused = 0
        j = 0  # index into the rows that have this path's measures
        for item in pos:
            m = item.provided if path == "provided" else item.automatic
            if m is None:
                rs = ["no_mask_found"]
            else:
                rs = gate.hard_reasons(m, path)
                if cv[path][j]:
                    rs.append("unlike_training_photos")
                j += 1
            if rs:
                n_refused += 1
                reasons.update(rs)
                by_label[labels.get(item.file.split("#")[0]) or "unlabelled"] += 1
        report[path] = {
            "n_images": len(pos),
            "refused": n_refused,
            "refusal_rate": round(n_refused / len(pos), 4),
            "reasons": dict(sorted(reasons.items())),
            "refused_by_label": dict(sorted(by_label.items())),
        }
    if negs:
        report["real_negatives"] = real_negatives_report(gate, negs, neg_unlike)
    return raw, report


def real_negatives_report(
    gate: Gate, negs: list[RealNegative], unlike: np.ndarray
) -> dict[str, Any]:
    """Refusal per family of real negatives, each judged by a fit without its session."""
    fams: dict[str, Counter[str]] = defaultdict(Counter)
    for neg, is_unlike in zip(negs, unlike, strict=True):
        f = fams[neg.family]
        f["n"] += 1
        if neg.measures is None:
            rs = ["no_mask_found"]
        else:
            rs = gate.hard_reasons(neg.measures, neg.path)
            if is_unlike:
                rs.append("unlike_training_photos")
        if rs:
            f["refused"] += 1
            f.update(f"reason:{r}" for r in rs)
    out: dict[str, Any] = {}
    for name in sorted(fams):
        f = fams[name]
        out[name] = {
            "n": f["n"],
            "refused": f["refused"],
            "refusal_rate": round(f["refused"] / f["n"], 3),
            "reasons": {k[7:]: v for k, v in sorted(f.items()) if k.startswith("reason:")},
        }
    return out


def battery_report(gate: Gate, negatives: Iterable[Negative], spec: InputSpec) -> dict[str, Any]:
    fams: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "refused": 0, "codes": Counter(), "reasons": Counter()}
    )
    segmenter = SEGMENTERS.get(gate.site)
    for neg in negatives:
        how: Path_ = "provided" if neg.image.mask is not None else "automatic"
        if neg.image.mask is not None:
            mask = neg.image.mask
        elif segmenter is not None:
            mask = segmenter(neg.image.rgb)
        else:
            continue  # no automatic path for this site yet: nothing to report
        f = fams[neg.family]
        f["n"] += 1
        tensor = prepare_input(neg.image.rgb, mask, spec)
        if float(tensor[0, :, :, 3].sum()) < MIN_MASK_PIXELS:
            f["refused"] += 1
            f["codes"][NO_MASK_CODE.get(gate.site, "no_mask_found")] += 1
            continue
        try:
            gate.check(tensor, how)
        except PhotoRejected as exc:
            f["refused"] += 1
            f["codes"][exc.code] += 1
            f["reasons"].update(exc.reasons)
    out = {}
    for name in sorted(fams):
        f = fams[name]
        out[name] = {
            "n": f["n"],
            "refused": f["refused"],
            "refusal_rate": round(f["refused"] / f["n"], 3),
            "codes": dict(sorted(f["codes"].items())),
            "reasons": dict(sorted(f["reasons"].items())),
        }
    return out


def _compact_json(raw: dict[str, Any]) -> str:
    """Indented JSON with each innermost list of numbers on one line (readable diffs)."""
    text = json.dumps(raw, indent=2)
    numbers = re.compile(r"\[\s+([-0-9.eE,\s]+?)\s+\]")
    return numbers.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def _spec(site: str) -> InputSpec:
    card = REPO_ROOT / "model" / site / "card.json"
    if card.is_file():
        section = json.loads(card.read_text()).get("input", {})
        return InputSpec.from_card(section if isinstance(section, dict) else {})
    return InputSpec()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default="conjunctiva", choices=sorted(SITE_IMAGE_KIND))
    parser.add_argument("--dataset-dir")
    parser.add_argument("--out", help=f"default: model/<site>/{GATE_FILE}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    dataset_dir = resolve_dataset_dir(args.dataset_dir)
    if dataset_dir is None:
        raise SystemExit("no dataset: pass --dataset-dir or set HEALTHGUARD_DATASET_DIR")
    spec = _spec(args.site)
    pos = collect_positives(dataset_dir, args.site, spec)
    groups = groups_for(pos)
    folds = grouped_folds(groups, N_FOLDS, SEED)
    with (dataset_dir / "labels.csv").open(newline="") as fh:
        labels = {r["file"]: r["label"] for r in csv.DictReader(fh)}
    negs = finger_negatives(dataset_dir, spec, args.site) if args.site == "conjunctiva" else []
    raw, cv_report = build_gate_dict(args.site, pos, folds, labels, negs)
    real_neg = cv_report.pop("real_negatives", None)
    gate = gate_from_dict(json.loads(json.dumps(raw)), site=args.site)
    neg_report = battery_report(gate, battery(dataset_dir, args.site), spec)
    raw["evaluation"] = {
        "command": f"python -m ml.training.gate_fit --site {args.site} --dataset-dir DIR",
        "labels_sha256": labels_sha256(dataset_dir),
        "n_images": len(pos),
        "n_subjects": len({p.subject_id for p in pos}),
        "n_cv_groups": len(np.unique(groups)),
        "cv": f"{N_FOLDS}-fold cross-validation grouped by subject (and by near-identical "
        "colour content); distance thresholds nested inside it",
        "target_distance_refusal": TARGET_REFUSAL,
        "real_crops_refused_in_cv": cv_report,
        "target_discriminant_refusal": DISC_TARGET if negs else None,
        "real_negatives_refused_in_cv": real_neg,
        "real_negatives_note": "every fingernail photo of the open data (all three nail and "
        "skin boxes, outlined as an ellipse and as an opaque square, the white board, the "
        "whole photo); each judged by a distance and discriminant fitted without its "
        "session's photos (5 folds of sessions, paired with the crops' folds)",
        "negatives": neg_report,
        "negatives_note": "built by ml.training.gate_battery (deterministic, in memory); "
        "the nails_* families are the fingernail photos the discriminant was fitted on "
        "(in-sample for the shipped gate: see real_negatives_refused_in_cv for held-out "
        "sessions); procedural scenes are simple stand-ins for real photos and were not "
        "used to fit "
        "anything",
    }
    out = Path(args.out) if args.out else REPO_ROOT / "model" / args.site / GATE_FILE
    out.write_text(_compact_json(raw), encoding="utf-8")
    for path, r in cv_report.items():
        logger.info("real crops, %s: %s", path, r)
    for name, r in (real_neg or {}).items():
        logger.info("held-out sessions %-30s %3d/%3d refused", name, r["refused"], r["n"])
    for name, r in neg_report.items():
        logger.info("%-40s %3d/%3d refused %s", name, r["refused"], r["n"], r["codes"])
    logger.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
