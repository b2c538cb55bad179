"""Evaluation metrics written into the model card (NumPy only, so tests can use them)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties)."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p), dtype=np.float64)
    sorted_p = p[order]
    i = 0
    while i < len(p):
        j = i
        while j + 1 < len(p) and sorted_p[j + 1] == sorted_p[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    n_pos = int((y == 1).sum())
    n_neg = len(y) - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    if len(set(np.asarray(y).tolist())) < 2:
        return None
    return roc_auc(y, p)


def bootstrap_auc_ci(
    y: np.ndarray, p: np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of AUC over subject resamples (one image per subject)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if y[idx].min() == y[idx].max():
            continue
        values.append(roc_auc(y[idx], p[idx]))
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def at_threshold(y: np.ndarray, p: np.ndarray, thr: float) -> dict[str, Any]:
    """Anemic is predicted when p >= thr."""
    pred = p >= thr
    tp = int((pred & (y == 1)).sum())
    fn = int((~pred & (y == 1)).sum())
    tn = int((~pred & (y == 0)).sum())
    fp = int((pred & (y == 0)).sum())
    return {
        "threshold": thr,
        "sensitivity": round(tp / max(tp + fn, 1), 3),
        "specificity": round(tn / max(tn + fp, 1), 3),
        "accuracy": round((tp + tn) / max(len(y), 1), 3),
        "tp": tp,
        "fn": fn,
        "tn": tn,
        "fp": fp,
    }


def calibration_table(y: np.ndarray, p: np.ndarray, edges: list[float]) -> list[dict[str, Any]]:
    rows = []
    for lo, hi in itertools.pairwise(edges):
        last = hi >= edges[-1]
        sel = (p >= lo) & ((p <= hi) if last else (p < hi))
        n = int(sel.sum())
        rows.append(
            {
                "bin": f"[{lo:.1f}, {hi:.1f}{']' if last else ')'}",
                "n": n,
                "mean_predicted": round(float(p[sel].mean()), 3) if n else None,
                "observed_anemic_rate": round(float(y[sel].mean()), 3) if n else None,
            }
        )
    return rows


def confidence_by_level(
    y: np.ndarray, p: np.ndarray, low: float, high: float
) -> tuple[dict[str, float], dict[str, Any]]:
    """Share of held-out subjects at each level whose blood test agreed with the level.

    LOW agrees when non-anemic, HIGH when anemic, MEDIUM counts the majority class.
    """
    levels = {
        "low": p < low,
        "medium": (p >= low) & (p < high),
        "high": p >= high,
    }
    conf: dict[str, float] = {}
    detail: dict[str, Any] = {}
    for name, sel in levels.items():
        n = int(sel.sum())
        anemic = int(y[sel].sum())
        if n == 0:
            conf[name] = 0.0
        elif name == "low":
            conf[name] = round((n - anemic) / n, 2)
        elif name == "high":
            conf[name] = round(anemic / n, 2)
        else:
            conf[name] = round(max(anemic, n - anemic) / n, 2)
        detail[name] = {"n": n, "anemic": anemic, "non_anemic": n - anemic}
    return conf, detail


def group_breakdown(
    y: np.ndarray, p: np.ndarray, groups: list[str], low: float, high: float
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    arr = np.array(groups)
    for g in sorted(set(groups)):
        sel = arr == g
        a = auc(y[sel], p[sel])
        out[g] = {
            "n": int(sel.sum()),
            "n_anemic": int(y[sel].sum()),
            "auc": round(a, 3) if a is not None else None,
            "at_medium_threshold": at_threshold(y[sel], p[sel], low),
            "at_high_threshold": at_threshold(y[sel], p[sel], high),
        }
    return out
