"""Fitting and session-grouped cross-validation of the fingernail recipe (scikit-learn).

See ml.training.nails for the data and the NumPy twin of the exported graph.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedGroupKFold

from ml.training.features import fit_thresholds
from ml.training.metrics import at_threshold, auc, calibration_table, confidence_by_level
from ml.training.nails import (
    ANEMIC_BELOW_G_DL,
    CALIBRATION_EDGES,
    INTERVAL_LEVEL,
    NON_ANEMIC_FROM_G_DL,
    NailConfig,
    NailParams,
    NailSample,
    agree_np,
    erode_mask,
    feature_matrix,
    interval,
    label_for,
    predict_nail_features,
)

logger = logging.getLogger(__name__)


def _fit_heads(
    xs: np.ndarray, y: np.ndarray, labelled: np.ndarray, hb: np.ndarray, cfg: NailConfig
) -> tuple[LogisticRegression, Ridge]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=cfg.logistic_c, max_iter=5000).fit(xs[labelled], y[labelled])
    reg = Ridge(alpha=cfg.ridge_alpha).fit(xs, hb)
    return clf, reg


def conformal_quantile(scores: np.ndarray, level: float = INTERVAL_LEVEL) -> float:
    """The ceil((n + 1) * level) / n empirical quantile (split-conformal, finite-sample)."""
    n = len(scores)
    k = min(n, math.ceil((n + 1) * level))
    return float(np.sort(scores)[k - 1])


def fit_nail_recipe(
    tensors: list[np.ndarray],
    hb: np.ndarray,
    sessions: np.ndarray,
    cfg: NailConfig,
) -> NailParams:
    """Fit on the given photos (all of them for Hb; the labelled ones for P(anemic)).

    Platt scaling and the conformal quantile come from out-of-fold predictions of an inner
    session-grouped split, so neither is fitted on photos the heads have seen.
    """
    y = np.array([label_for(h) if label_for(h) is not None else -1 for h in hb])
    labelled = y >= 0
    thr, wd = fit_thresholds([erode_mask(t) for t in tensors])
    feats = feature_matrix(tensors, thr, wd)
    mean = feats.mean(axis=0)
    scale = feats.std(axis=0)
    scale[scale < 1e-6] = 1.0
    xs = (feats - mean) / scale

    oof_logit = np.zeros(len(hb))
    oof_hb = np.zeros(len(hb))
    strata = np.where(labelled, y, 2)
    inner = StratifiedGroupKFold(cfg.inner_folds, shuffle=True, random_state=cfg.seed)
    for tr, te in inner.split(xs, strata, sessions):
        clf, reg = _fit_heads(xs[tr], y[tr], labelled[tr], hb[tr], cfg)
        oof_logit[te] = clf.decision_function(xs[te])
        oof_hb[te] = reg.predict(xs[te])
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(
        oof_logit[labelled].reshape(-1, 1), y[labelled]
    )
    # The interval is centred on the shipped estimate, i.e. after the agreement rule.
    oof_p = platt.predict_proba(oof_logit.reshape(-1, 1))[:, 1]
    residual = np.abs(hb - agree_np(oof_p, oof_hb))
    hb_scale = float(np.sqrt(np.mean(residual**2)))
    q = conformal_quantile(residual / hb_scale)
    clf, reg = _fit_heads(xs, y, labelled, hb, cfg)
    return NailParams(
        thresholds=thr,
        widths=wd,
        feature_mean=mean.astype(np.float32),
        feature_scale=scale.astype(np.float32),
        w_cls=clf.coef_[0].astype(np.float32),
        b_cls=float(clf.intercept_[0]),
        platt_a=float(platt.coef_[0, 0]),
        platt_b=float(platt.intercept_[0]),
        w_hb=reg.coef_.astype(np.float32),
        b_hb=float(reg.intercept_),
        hb_scale=hb_scale,
        conformal_q=q,
    )


def hb_agreement(hb: np.ndarray, est: np.ndarray) -> dict[str, Any]:
    diff = est - hb
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1))
    return {
        "mae_g_dl": round(float(np.abs(diff).mean()), 3),
        "bias_g_dl": round(bias, 3),
        "limits_of_agreement_g_dl": [round(bias - 1.96 * sd, 2), round(bias + 1.96 * sd, 2)],
        "mae_of_predicting_the_training_mean_g_dl": None,
    }


def cross_validate_nails(
    samples: list[NailSample], tensors: list[np.ndarray], cfg: NailConfig
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Session-grouped CV of the whole recipe (thresholds, heads, Platt, conformal q).

    cv_repeats x cv_folds folds over sessions (StratifiedGroupKFold); every photo of a test
    session is scored by a model fitted without any photo of that session. Fold AUCs give
    the spread; the first repeat's out-of-fold predictions give the pooled figures.
    """
    hb = np.array([s.hb_g_dl for s in samples])
    sessions = np.array([s.session for s in samples])
    y = np.array([s.label if s.label is not None else -1 for s in samples])
    labelled = y >= 0
    strata = np.where(labelled, y, 2)
    fold_rows: list[dict[str, Any]] = []
    first: dict[str, np.ndarray] = {}
    repeat_summ: list[dict[str, float]] = []
    for rep in range(cfg.cv_repeats):
        oof = np.zeros((len(hb), 3))
        low = np.zeros(len(hb))
        high = np.zeros(len(hb))
        base = np.zeros(len(hb))
        folds = StratifiedGroupKFold(cfg.cv_folds, shuffle=True, random_state=cfg.seed + rep)
        for k, (tr, te) in enumerate(folds.split(np.zeros(len(hb)), strata, sessions)):
            params = fit_nail_recipe([tensors[i] for i in tr], hb[tr], sessions[tr], cfg)
            feats = feature_matrix([tensors[i] for i in te], params.thresholds, params.widths)
            out = predict_nail_features(params, feats)
            oof[te] = out
            low[te], high[te] = interval(out[:, 1], params)
            base[te] = hb[tr].mean()
            tel = te[labelled[te]]
            a = auc(y[tel], out[labelled[te], 0])
            covered = (hb[te] >= low[te]) & (hb[te] <= high[te])
            fold_rows.append(
                {
                    "repeat": rep,
                    "fold": k,
                    "n_sessions": len(set(sessions[te])),
                    "n_photos": len(te),
                    "n_labelled": len(tel),
                    "auc": round(a, 3) if a is not None else None,
                    "hb_mae_g_dl": round(float(np.abs(out[:, 1] - hb[te]).mean()), 3),
                    "interval_coverage": round(float(covered.mean()), 3),
                    "interval_mean_width_g_dl": round(float((high[te] - low[te]).mean()), 2),
                }
            )
            logger.info("CV repeat %d fold %d: %s", rep, k, fold_rows[-1])
        covered_all = (hb >= low) & (hb <= high)
        a_all = auc(y[labelled], oof[labelled, 0])
        repeat_summ.append(
            {
                "pooled_auc": float(a_all or 0.0),
                "hb_mae": float(np.abs(oof[:, 1] - hb).mean()),
                "coverage": float(covered_all.mean()),
                "width": float((high - low).mean()),
                "baseline_mae": float(np.abs(base - hb).mean()),
            }
        )
        if rep == 0:
            first = {"p": oof[:, 0], "hb": oof[:, 1], "low": low, "high": high, "base": base}
    aucs = [r["auc"] for r in fold_rows if r["auc"] is not None]

    def _mean_sd(key: str) -> list[float]:
        v = np.array([r[key] for r in repeat_summ])
        return [round(float(v.mean()), 3), round(float(v.std(ddof=1)), 3)]

    summary = {
        "grouping": (
            f"session (StratifiedGroupKFold, {cfg.cv_folds} folds x {cfg.cv_repeats} repeats, "
            f"seeds {cfg.seed}..{cfg.seed + cfg.cv_repeats - 1}); 16 sessions, so each test fold "
            "holds 4 sessions"
        ),
        "n_photos": len(hb),
        "n_labelled": int(labelled.sum()),
        "n_anemic": int((y == 1).sum()),
        "n_non_anemic": int((y == 0).sum()),
        "n_sessions": len(set(sessions)),
        "auc_fold_mean": round(float(np.mean(aucs)), 3),
        "auc_fold_sd": round(float(np.std(aucs, ddof=1)), 3),
        "auc_fold_range": [round(min(aucs), 3), round(max(aucs), 3)],
        "auc_pooled_mean_sd_over_repeats": _mean_sd("pooled_auc"),
        "hb_mae_mean_sd_over_repeats_g_dl": _mean_sd("hb_mae"),
        "hb_mae_of_predicting_the_training_mean_g_dl": _mean_sd("baseline_mae"),
        "interval_coverage_mean_sd_over_repeats": _mean_sd("coverage"),
        "interval_mean_width_mean_sd_over_repeats_g_dl": _mean_sd("width"),
        "per_fold": fold_rows,
    }
    return summary, first


def pooled_figures(
    samples: list[NailSample], first: dict[str, np.ndarray], low_thr: float, high_thr: float
) -> dict[str, Any]:
    """Figures from the first repeat's out-of-fold predictions (one per photo)."""
    hb = np.array([s.hb_g_dl for s in samples])
    y = np.array([s.label if s.label is not None else -1 for s in samples])
    lab = y >= 0
    p = first["p"]
    conf, detail = confidence_by_level(y[lab], p[lab], low_thr, high_thr)
    covered = (hb >= first["low"]) & (hb <= first["high"])
    agreement = hb_agreement(hb, first["hb"])
    agreement["mae_of_predicting_the_training_mean_g_dl"] = round(
        float(np.abs(first["base"] - hb).mean()), 3
    )
    a = auc(y[lab], p[lab])
    by_band = {}
    for name, sel in (
        ("anemic (< 12.0)", hb < ANEMIC_BELOW_G_DL),
        ("unlabelled (12.0-13.0)", (hb >= ANEMIC_BELOW_G_DL) & (hb < NON_ANEMIC_FROM_G_DL)),
        ("non-anemic (>= 13.0)", hb >= NON_ANEMIC_FROM_G_DL),
    ):
        by_band[name] = {
            "n": int(sel.sum()),
            "hb_mae_g_dl": round(float(np.abs(first["hb"][sel] - hb[sel]).mean()), 3),
            "hb_bias_g_dl": round(float((first["hb"][sel] - hb[sel]).mean()), 3),
            "interval_coverage": round(float(covered[sel].mean()), 3),
        }
    return {
        "auc": round(float(a or 0.0), 3),
        "at_medium_threshold": at_threshold(y[lab], p[lab], low_thr),
        "at_high_threshold": at_threshold(y[lab], p[lab], high_thr),
        "calibration_table": calibration_table(y[lab], p[lab], CALIBRATION_EDGES),
        "confidence_by_level": conf,
        "risk_levels": detail,
        "hb": {
            **agreement,
            "interval_coverage": round(float(covered.mean()), 3),
            "interval_mean_width_g_dl": round(float((first["high"] - first["low"]).mean()), 2),
            "by_hb_band": by_band,
        },
    }
