"""Colour-distribution features inside the mask: NumPy reference implementation.

The exported TFLite graph (``ml.training.graph``) computes exactly these features from
the pixels; training uses this NumPy version, and ``ml.training.train`` checks that the
two agree before it exports anything.

Per pixel, CHANNELS colour transforms are computed from RGB in [0, 1]; for each channel
the masked mean, standard deviation and skewness, and a soft cumulative histogram
(mean of sigmoid((value - t_k) / w) over the mask at fixed thresholds t_k, a smooth
stand-in for percentiles) are taken.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-3
CHANNELS: tuple[str, ...] = (
    "R",
    "G",
    "B",
    "r_chroma",
    "g_chroma",
    "R_minus_G",
    "RG_norm_diff",
    "L",
    "a",
    "b",
    "S",
    "V",
    "log_R_over_G",
)
STATS: tuple[str, ...] = ("mean", "std", "skew")
N_THRESHOLDS = 7
# Features are computed after 2x2 average pooling of the 112x112 input (56x56 pixels): the
# soft histogram over 112x112 pixels cost about 10 ms per image, over 56x56 under 1 ms.
POOL = 2

# sRGB (D65) -> XYZ, and the D65 white point.
RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float32,
)
WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)


def pixel_channels(rgb: np.ndarray) -> np.ndarray:
    """rgb: (..., 3) in [0, 1] -> (..., len(CHANNELS)), computed in float64."""
    rgb = rgb.astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    s = r + g + b + EPS
    lin = np.where(rgb > 0.04045, np.power((rgb + 0.055) / 1.055, 2.4), rgb / 12.92)
    xyz = (lin @ RGB_TO_XYZ.T.astype(np.float64)) / WHITE.astype(np.float64)
    f = np.where(
        xyz > 0.008856,
        np.power(np.maximum(xyz, 1e-6), 1.0 / 3.0),
        7.787 * xyz + 16.0 / 116.0,
    )
    lab_l = (116.0 * f[..., 1] - 16.0) / 100.0
    lab_a = 5.0 * (f[..., 0] - f[..., 1])
    lab_b = 2.0 * (f[..., 1] - f[..., 2])
    v = np.max(rgb, axis=-1)
    sat = (v - np.min(rgb, axis=-1)) / (v + EPS)
    chans = [
        r,
        g,
        b,
        r / s,
        g / s,
        r - g,
        (r - g) / (r + g + EPS),
        lab_l,
        lab_a,
        lab_b,
        sat,
        v,
        np.log(r + EPS) - np.log(g + EPS),
    ]
    return np.stack(chans, axis=-1)


def feature_names(n_thresholds: int = N_THRESHOLDS) -> list[str]:
    names = [f"{c}_{s}" for c in CHANNELS for s in STATS]
    names += [f"{c}_cdf{k}" for c in CHANNELS for k in range(n_thresholds)]
    return names


def masked_features(tensor: np.ndarray, thresholds: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """tensor: (size, size, 4) model input (RGB in [0,1] + mask) -> 1-D feature vector.

    thresholds: (n_channels, n_thresholds); widths: (n_channels,).
    """
    channels, weights = pixel_table(tensor)
    return features_from_table(channels, weights, thresholds, widths)


def pixel_table(tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pooled in-mask pixels of a model input: (channel values (P, C), weights (P, 1)).

    Pixels with pooled mask 0 add nothing to any feature and are dropped (exact). Training
    caches this table so cross-validation refits thresholds without redoing the pixels.
    """
    tensor = pool(tensor)
    rgb = tensor[..., :3].reshape(-1, 3)
    m = tensor[..., 3].reshape(-1, 1).astype(np.float64)
    keep = m[:, 0] != 0
    return pixel_channels(rgb[keep]), m[keep]


def features_from_table(
    c: np.ndarray, m: np.ndarray, thresholds: np.ndarray, widths: np.ndarray
) -> np.ndarray:
    """Masked mean, std, skewness and soft CDF of each channel, from a pixel_table."""
    n = m.sum() + EPS
    mean = (c * m).sum(axis=0) / n
    d = c - mean
    var = (d * d * m).sum(axis=0) / n
    std = np.sqrt(var + 1e-8)
    skew = (d * d * d * m).sum(axis=0) / n / (std * std * std)
    z = (c[:, :, None] - thresholds[None, :, :]) / widths[None, :, None]
    cdf = (_sigmoid(z) * m[:, :, None]).sum(axis=0) / n
    moments = np.stack([mean, std, skew], axis=1).reshape(-1)
    return np.concatenate([moments, cdf.reshape(-1)]).astype(np.float32)


def pool(tensor: np.ndarray) -> np.ndarray:
    """(H, W, K) -> (H/POOL, W/POOL, K) mean over POOLxPOOL blocks (as tf avg_pool2d VALID)."""
    h, w, k = tensor.shape
    blocks = tensor[: h - h % POOL, : w - w % POOL].reshape(h // POOL, POOL, w // POOL, POOL, k)
    return blocks.mean(axis=(1, 3), dtype=np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def fit_thresholds(
    tensors: list[np.ndarray], n_thresholds: int = N_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds at evenly spaced quantiles (10%..90%) of the pooled masked pixels."""
    return fit_thresholds_from_tables([pixel_table(t) for t in tensors], n_thresholds)


def fit_thresholds_from_tables(
    tables: list[tuple[np.ndarray, np.ndarray]], n_thresholds: int = N_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """fit_thresholds from cached pixel tables (pixels with pooled mask > 0.5 count)."""
    samples = []
    rng = np.random.default_rng(0)
    for c, m in tables:
        px = c[m[:, 0] > 0.5]
        if len(px) > 2000:
            px = px[rng.choice(len(px), 2000, replace=False)]
        samples.append(px)
    pooled = np.concatenate(samples)
    qs = np.linspace(0.1, 0.9, n_thresholds)
    thresholds = np.quantile(pooled, qs, axis=0).T.astype(np.float32)
    widths = ((thresholds[:, -1] - thresholds[:, 0]) / (2 * n_thresholds)).astype(np.float32)
    widths = np.maximum(widths, 1e-3).astype(np.float32)
    return thresholds, widths
