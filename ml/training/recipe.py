"""The training recipe: features -> standardise -> MLP bags for P(anemic) and Hb -> calibration.

The same recipe is used for the shipped model and inside cross-validation, so the CV
figures measure exactly what ships. One fit:

1. soft-histogram thresholds from the training pixels; features; standardisation;
2. inner K-fold: out-of-fold classifier logits and Hb estimates on the training rows;
3. Platt scaling of the out-of-fold logits -> calibrated P(anemic);
4. the Hb estimate moved to the side of the cut-off its risk level says (``agree_np``);
5. the interval's scale: exp(ridge fit of log |out-of-fold residual| on the features);
6. the conformal quantile of |residual| / scale (normalised split-conformal, 90%);
7. the final MLP bags on all training rows.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor

from ml.training.features import N_THRESHOLDS, features_from_table, fit_thresholds_from_tables
from ml.training.graph import ExportedParams, HbHead, MLPWeights

logger = logging.getLogger(__name__)

Table = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RecipeConfig:
    hidden_units: int = 16
    l2_alpha: float = 1.0
    hb_hidden_units: int = 16
    hb_l2_alpha: float = 3.0
    n_models: int = 3
    max_iter: int = 300
    solver: str = "lbfgs"
    n_thresholds: int = N_THRESHOLDS
    calibration_folds: int = 3
    scale_ridge_alpha: float = 30.0
    interval_level: float = 0.9
    cutoff_g_dl: float = 11.0
    low: float = 0.3
    high: float = 0.7
    agree_margin_g_dl: float = 0.1
    feature_clip: float = 0.0
    seed: int = 20261126

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Fitted:
    params: ExportedParams
    conformal_quantile: float
    oof_mean: np.ndarray  # out-of-fold Hb estimates on the training rows (after agree)
    oof_p: np.ndarray


def compute_features(tables: list[Table], thresholds: np.ndarray, widths: np.ndarray) -> np.ndarray:
    return np.stack([features_from_table(c, m, thresholds, widths) for c, m in tables])


def _weights(coefs: list[np.ndarray], intercepts: list[np.ndarray]) -> MLPWeights:
    return MLPWeights(
        w1=coefs[0].astype(np.float32),
        b1=intercepts[0].astype(np.float32),
        w2=coefs[1].astype(np.float32),
        b2=intercepts[1].astype(np.float32),
    )


def _fit_bag(
    x: np.ndarray, target: np.ndarray, cfg: RecipeConfig, *, regress: bool
) -> list[MLPWeights]:
    out = []
    for k in range(cfg.n_models):
        model: MLPClassifier | MLPRegressor
        if regress:
            model = MLPRegressor(
                (cfg.hb_hidden_units,),
                alpha=cfg.hb_l2_alpha,
                solver=cfg.solver,
                max_iter=cfg.max_iter,
                random_state=cfg.seed + k,
            )
        else:
            model = MLPClassifier(
                (cfg.hidden_units,),
                alpha=cfg.l2_alpha,
                solver=cfg.solver,
                max_iter=cfg.max_iter,
                random_state=cfg.seed + k,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, target)
        out.append(_weights(model.coefs_, model.intercepts_))
    return out


def bag_output(xs: np.ndarray, mlps: list[MLPWeights] | tuple[MLPWeights, ...]) -> np.ndarray:
    """Mean raw output (logit, or standardised Hb) of a bag, in float64."""
    total = np.zeros(len(xs), dtype=np.float64)
    for m in mlps:
        h = np.maximum(xs @ m.w1 + m.b1, 0.0)
        total += (h @ m.w2 + m.b2)[:, 0]
    return total / len(mlps)


def agree_np(p: np.ndarray, mean: np.ndarray, head: HbHead) -> np.ndarray:
    """NumPy twin of graph.agree."""
    capped = np.minimum(mean, head.cutoff - head.margin)
    floored = np.maximum(mean, head.cutoff)
    return np.where(p >= head.high, capped, np.where(p < head.low, floored, mean))


def predict_columns(params: ExportedParams, feats: np.ndarray) -> np.ndarray:
    """NumPy twin of the exported graph: raw features -> (n, 3) [p_anemic, hb_mean, hb_scale]."""
    xs = (feats - params.feature_mean) / params.feature_scale
    if params.feature_clip > 0:
        xs = np.clip(xs, -params.feature_clip, params.feature_clip)
    p = 1.0 / (1.0 + np.exp(-(params.platt_a * bag_output(xs, params.mlps) + params.platt_b)))
    hb = params.hb
    mean = bag_output(xs, hb.mlps) * hb.target_scale + hb.target_mean
    scale = np.exp(xs @ hb.scale_w[:, 0] + hb.scale_b)
    return np.stack([p, agree_np(p, mean, hb), scale], axis=1)


def predict_features(params: ExportedParams, feats: np.ndarray) -> np.ndarray:
    """Calibrated P(anemic) only (kept for callers of the v1 recipe)."""
    return predict_columns(params, feats)[:, 0]


def conformal_quantile(normalised: np.ndarray, level: float) -> float:
    """The ceil((n + 1) level) / n empirical quantile (split-conformal)."""
    n = len(normalised)
    k = min(n, math.ceil((n + 1) * level))
    return float(np.sort(normalised)[k - 1])


def fit_recipe(
    tables: list[Table], y: np.ndarray, hb_g_dl: np.ndarray, cfg: RecipeConfig
) -> Fitted:
    """Fit on one row per subject (tables from features.pixel_table)."""
    thresholds, widths = fit_thresholds_from_tables(tables, cfg.n_thresholds)
    feats = compute_features(tables, thresholds, widths)
    mean = feats.mean(axis=0)
    scale = feats.std(axis=0)
    scale[scale < 1e-6] = 1.0
    xs = (feats - mean) / scale
    if cfg.feature_clip > 0:
        xs = np.clip(xs, -cfg.feature_clip, cfg.feature_clip)
    t_mean, t_scale = float(hb_g_dl.mean()), float(hb_g_dl.std())
    target = (hb_g_dl - t_mean) / t_scale

    # Out-of-fold outputs on the training rows: Platt scaling, the interval's scale model and
    # the conformal quantile are fitted on predictions the MLPs did not see the answer for.
    oof_logit = np.zeros(len(y))
    oof_mu = np.zeros(len(y))
    inner = StratifiedKFold(cfg.calibration_folds, shuffle=True, random_state=cfg.seed)
    for tr, te in inner.split(xs, y):
        oof_logit[te] = bag_output(xs[te], _fit_bag(xs[tr], y[tr], cfg, regress=False))
        oof_mu[te] = bag_output(xs[te], _fit_bag(xs[tr], target[tr], cfg, regress=True))
    oof_mu = oof_mu * t_scale + t_mean
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof_logit.reshape(-1, 1), y)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    oof_p = 1.0 / (1.0 + np.exp(-(a * oof_logit + b)))
    head0 = HbHead(
        (),
        t_mean,
        t_scale,
        np.zeros((xs.shape[1], 1), np.float32),
        0.0,
        cfg.cutoff_g_dl,
        cfg.low,
        cfg.high,
        cfg.agree_margin_g_dl,
    )
    oof_mean = agree_np(oof_p, oof_mu, head0)
    resid = np.abs(hb_g_dl - oof_mean)
    ridge = Ridge(alpha=cfg.scale_ridge_alpha).fit(xs, np.log(resid + 0.1))
    oof_scale = np.exp(ridge.predict(xs))
    q = conformal_quantile(resid / oof_scale, cfg.interval_level)

    head = HbHead(
        mlps=tuple(_fit_bag(xs, target, cfg, regress=True)),
        target_mean=t_mean,
        target_scale=t_scale,
        scale_w=ridge.coef_.reshape(-1, 1).astype(np.float32),
        scale_b=float(ridge.intercept_),
        cutoff=cfg.cutoff_g_dl,
        low=cfg.low,
        high=cfg.high,
        margin=cfg.agree_margin_g_dl,
    )
    params = ExportedParams(
        thresholds=thresholds,
        widths=widths,
        feature_mean=mean.astype(np.float32),
        feature_scale=scale.astype(np.float32),
        mlps=tuple(_fit_bag(xs, y, cfg, regress=False)),
        platt_a=a,
        platt_b=b,
        hb=head,
        feature_clip=cfg.feature_clip,
    )
    logger.info("fitted recipe on %d subjects (platt a=%.3f b=%.3f, q=%.3f)", len(y), a, b, q)
    return Fitted(params=params, conformal_quantile=q, oof_mean=oof_mean, oof_p=oof_p)
