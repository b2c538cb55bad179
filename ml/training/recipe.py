"""The training recipe: features -> standardise -> bag of small MLPs -> Platt calibration.

The same recipe is used for the shipped model and inside cross-validation, so the CV
figure measures exactly what ships.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier

from ml.training.features import N_THRESHOLDS, fit_thresholds, masked_features
from ml.training.graph import ExportedParams, MLPWeights

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecipeConfig:
    hidden_units: int = 16
    l2_alpha: float = 1.0
    n_models: int = 5
    max_iter: int = 2000
    n_thresholds: int = N_THRESHOLDS
    calibration_folds: int = 5
    seed: int = 20261126

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def compute_features(
    tensors: list[np.ndarray], thresholds: np.ndarray, widths: np.ndarray
) -> np.ndarray:
    return np.stack([masked_features(t, thresholds, widths) for t in tensors])


def _fit_mlps(x: np.ndarray, y: np.ndarray, cfg: RecipeConfig) -> list[MLPWeights]:
    mlps = []
    for k in range(cfg.n_models):
        clf = MLPClassifier(
            (cfg.hidden_units,),
            activation="relu",
            alpha=cfg.l2_alpha,
            max_iter=cfg.max_iter,
            random_state=cfg.seed + k,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x, y)
        mlps.append(
            MLPWeights(
                w1=clf.coefs_[0].astype(np.float32),
                b1=clf.intercepts_[0].astype(np.float32),
                w2=clf.coefs_[1].astype(np.float32),
                b2=clf.intercepts_[1].astype(np.float32),
            )
        )
    return mlps


def _logits(xs: np.ndarray, mlps: list[MLPWeights] | tuple[MLPWeights, ...]) -> np.ndarray:
    total = np.zeros(len(xs), dtype=np.float64)
    for m in mlps:
        h = np.maximum(xs @ m.w1 + m.b1, 0.0)
        total += (h @ m.w2 + m.b2)[:, 0]
    return total / len(mlps)


def predict_features(params: ExportedParams, feats: np.ndarray) -> np.ndarray:
    """NumPy twin of the exported graph, from raw features to calibrated P(anemic)."""
    xs = (feats - params.feature_mean) / params.feature_scale
    z = params.platt_a * _logits(xs, params.mlps) + params.platt_b
    return 1.0 / (1.0 + np.exp(-z))


def fit_recipe(
    tensors: list[np.ndarray], y: np.ndarray, cfg: RecipeConfig
) -> tuple[ExportedParams, np.ndarray]:
    """Fit on one image per subject; return the parameters and the training features."""
    thresholds, widths = fit_thresholds(tensors, cfg.n_thresholds)
    feats = compute_features(tensors, thresholds, widths)
    mean = feats.mean(axis=0)
    scale = feats.std(axis=0)
    scale[scale < 1e-6] = 1.0
    xs = (feats - mean) / scale

    # Out-of-fold logits on the training set give the Platt scaling, so the calibrated
    # probability is not fitted on data the MLPs have memorised.
    oof = np.zeros(len(y))
    inner = StratifiedKFold(cfg.calibration_folds, shuffle=True, random_state=cfg.seed)
    for tr, te in inner.split(xs, y):
        oof[te] = _logits(xs[te], _fit_mlps(xs[tr], y[tr], cfg))
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof.reshape(-1, 1), y)
    mlps = _fit_mlps(xs, y, cfg)
    params = ExportedParams(
        thresholds=thresholds,
        widths=widths,
        feature_mean=mean.astype(np.float32),
        feature_scale=scale.astype(np.float32),
        mlps=tuple(mlps),
        platt_a=float(platt.coef_[0, 0]),
        platt_b=float(platt.intercept_[0]),
    )
    logger.info(
        "fitted recipe on %d subjects (platt a=%.3f b=%.3f)", len(y), params.platt_a, params.platt_b
    )
    return params, feats
