"""The exported model as a TensorFlow graph: pixels + mask -> features -> three columns.

Output [1, 3 + n_features]: OUTPUT_COLUMNS (calibrated P(anemic) from a bag of MLP
classifiers, the Hb estimate from a bag of MLP regressors, moved to the side of the
cut-off that the risk level says (see ``agree``), and the interval's scale
exp(linear(features))), then the raw features.

Only plain ops that convert to builtin TFLite ops (mul, add, sum, pow, log, sqrt,
maximum, select, sigmoid, fully connected) are used, so tflite-runtime 2.14 can run it
without the Flex (SELECT_TF_OPS) delegate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from ml.training.features import EPS, POOL, RGB_TO_XYZ, WHITE


@dataclass(frozen=True)
class MLPWeights:
    """One hidden-layer ReLU MLP producing a logit."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray


OUTPUT_COLUMNS = ("p_anemic", "hb_mean_g_dl", "hb_scale_g_dl")


@dataclass(frozen=True)
class HbHead:
    """Hb regression (bag of MLPs on standardised features, target standardised) + scale."""

    mlps: tuple[MLPWeights, ...]
    target_mean: float
    target_scale: float
    scale_w: np.ndarray  # (n_features, 1): log |residual| ~ features
    scale_b: float
    cutoff: float  # Hb below this is anemic (11.0 for the conjunctiva site)
    low: float  # risk thresholds: P >= high puts the estimate below the cut-off,
    high: float  # P < low puts it at or above it
    margin: float  # how far below the cut-off a HIGH result's estimate sits at most


@dataclass(frozen=True)
class ExportedParams:
    thresholds: np.ndarray  # (n_channels, n_thresholds)
    widths: np.ndarray  # (n_channels,)
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    mlps: tuple[MLPWeights, ...]
    platt_a: float
    platt_b: float
    hb: HbHead
    # Standardised features are clipped to -+ this (0: not clipped), so a photo unlike the
    # training crops (e.g. skin inside an automatic mask) cannot push the MLPs far outside
    # what they were fitted on.
    feature_clip: float = 0.0


def _channels(rgb: tf.Tensor) -> tf.Tensor:
    """rgb: [P, 3] -> [P, C], identical formulas to features.pixel_channels."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    s = r + g + b + EPS
    lin = tf.where(rgb > 0.04045, tf.pow((rgb + 0.055) / 1.055, 2.4), rgb / 12.92)
    xyz = tf.matmul(lin, tf.constant(RGB_TO_XYZ.T)) / tf.constant(WHITE)
    f = tf.where(
        xyz > 0.008856,
        tf.pow(tf.maximum(xyz, 1e-6), 1.0 / 3.0),
        7.787 * xyz + 16.0 / 116.0,
    )
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    v = tf.maximum(tf.maximum(r, g), b)
    mn = tf.minimum(tf.minimum(r, g), b)
    chans = [
        r,
        g,
        b,
        r / s,
        g / s,
        r - g,
        (r - g) / (r + g + EPS),
        (116.0 * fy - 16.0) / 100.0,
        5.0 * (fx - fy),
        2.0 * (fy - fz),
        (v - mn) / (v + EPS),
        v,
        tf.math.log(r + EPS) - tf.math.log(g + EPS),
    ]
    return tf.concat(chans, axis=1)


def _sum_pixels(t: tf.Tensor, side: int) -> tf.Tensor:
    """Sum [P, K] over pixels in two stages (rows, then columns) -> [1, K].

    A single float32 reduction over 50,176 pixels loses about 1% on the skewness; summing
    row by row first keeps the result within about 1e-4 of NumPy's pairwise sum.
    """
    k = t.shape[-1]
    rows = tf.reduce_sum(tf.reshape(t, [side, side, k]), axis=1)
    return tf.reduce_sum(rows, axis=0, keepdims=True)


def features_tf(x: tf.Tensor, thresholds: np.ndarray, widths: np.ndarray) -> tf.Tensor:
    """x: [1, H, W, 4] (H == W) -> [1, n_features], identical to features.masked_features."""
    # 2x2 average pooling first (features are computed at 112x112): 4x less work, and the
    # pooled mask (0, .25, .5, .75, 1) acts as a per-pixel weight at the mask's edge.
    x = tf.nn.avg_pool2d(x, ksize=POOL, strides=POOL, padding="VALID")
    side = int(x.shape[1])
    px = tf.reshape(x, [-1, 4])
    rgb = px[:, 0:3]
    m = px[:, 3:4]
    c = _channels(rgb)
    n_ch, n_th = thresholds.shape
    n = _sum_pixels(m, side) + EPS
    mean = _sum_pixels(c * m, side) / n
    d = c - mean
    dm = d * m
    var = _sum_pixels(d * dm, side) / n
    std = tf.sqrt(var + 1e-8)
    skew = _sum_pixels(d * d * dm, side) / n / (std * std * std)
    moments = tf.reshape(tf.stack([mean, std, skew], axis=2), [1, -1])  # channel-major
    # [P, C, 1] vs [C, T] -> [P, C, T]
    z = (tf.expand_dims(c, 2) - tf.constant(thresholds)) * tf.constant(
        (1.0 / widths)[:, None].astype(np.float32)
    )
    soft = tf.reshape(tf.sigmoid(z) * tf.expand_dims(m, 2), [-1, n_ch * n_th])
    cdf = _sum_pixels(soft, side) / n
    return tf.concat([moments, cdf], axis=1)


def _bag(f: tf.Tensor, mlps: tuple[MLPWeights, ...]) -> tf.Tensor:
    total = tf.zeros([1, 1])
    for mlp in mlps:
        h = tf.nn.relu(tf.matmul(f, tf.constant(mlp.w1)) + tf.constant(mlp.b1))
        total = total + tf.matmul(h, tf.constant(mlp.w2)) + tf.constant(mlp.b2)
    return total / float(len(mlps))


def agree(p: tf.Tensor, mean: tf.Tensor, head: HbHead) -> tf.Tensor:
    """The Hb estimate moved to the side of the cut-off that the risk level says.

    HIGH (p >= high): at most cutoff - margin; LOW (p < low): at least the cut-off; MEDIUM:
    unchanged. So a result never says "high risk of anemia" with an estimate above the
    cut-off, or "low risk" with one below it. The NumPy twin is recipe.agree_np.
    """
    capped = tf.minimum(mean, head.cutoff - head.margin)
    floored = tf.maximum(mean, head.cutoff)
    return tf.where(p >= head.high, capped, tf.where(p < head.low, floored, mean))


class AnemiaModule(tf.Module):
    def __init__(self, params: ExportedParams, size: int = 224) -> None:
        super().__init__()
        self.params = params
        self.size = size

    def columns(self, x: tf.Tensor) -> tf.Tensor:
        p = self.params
        raw = features_tf(x, p.thresholds, p.widths)
        f = (raw - tf.constant(p.feature_mean)) / tf.constant(p.feature_scale)
        if p.feature_clip > 0:
            f = tf.clip_by_value(f, -p.feature_clip, p.feature_clip)
        prob = tf.sigmoid(p.platt_a * _bag(f, p.mlps) + p.platt_b)
        hb = p.hb
        mean = _bag(f, hb.mlps) * hb.target_scale + hb.target_mean
        scale = tf.exp(tf.matmul(f, tf.constant(hb.scale_w)) + hb.scale_b)
        # The raw features ride along as extra columns ("feature:<name>", ignored by the
        # runtime) so a test can check the graph's features against the NumPy recipe.
        return tf.concat([prob, agree(prob, mean, hb), scale, raw], axis=1)


def export_tflite(params: ExportedParams, path: Path, size: int = 224) -> bytes:
    return export_module(AnemiaModule(params, size), path, size)


def export_module(module: Any, path: Path, size: int) -> bytes:
    """Convert a module with a ``columns(x)`` method to a builtin-ops .tflite at ``path``."""
    spec = tf.TensorSpec([1, size, size, 4], tf.float32, name="image_and_mask")

    @tf.function(input_signature=[spec])
    def serve(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"columns": module.columns(x)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    blob: bytes = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return blob


def features_for_check(x: np.ndarray, params: ExportedParams) -> np.ndarray:
    """Run the in-graph feature computation eagerly (for the NumPy agreement check)."""
    out = features_tf(tf.constant(x[None].astype(np.float32)), params.thresholds, params.widths)
    return np.asarray(out.numpy())[0]
