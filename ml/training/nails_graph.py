"""The fingernail model as a TensorFlow graph: pixels + nail mask -> [1, 3] output columns.

The features are the shared in-graph ones (ml.training.graph.features_tf) after a 3x3
erosion of the mask (a min-pool, written as -max_pool(-mask)); the heads are linear. Only
builtin TFLite ops are used, as for the conjunctiva model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ml.training.graph import HbHead, agree, export_module, features_tf
from ml.training.nails import (
    AGREE_MARGIN_G_DL,
    ANEMIC_BELOW_G_DL,
    RISK_HIGH,
    RISK_LOW,
    NailParams,
)


def _eroded(x: tf.Tensor) -> tf.Tensor:
    m = x[:, :, :, 3:4]
    eroded = -tf.nn.max_pool2d(-m, ksize=3, strides=1, padding="SAME")
    return tf.concat([x[:, :, :, 0:3], eroded], axis=3)


def nail_features_tf(x: tf.Tensor, params: NailParams) -> tf.Tensor:
    return features_tf(_eroded(x), params.thresholds, params.widths)


# graph.agree reads only the cut-off, margin and risk thresholds from its HbHead.
_AGREE = HbHead(
    mlps=(),
    target_mean=0.0,
    target_scale=1.0,
    scale_w=np.zeros((1, 1), dtype=np.float32),
    scale_b=0.0,
    cutoff=ANEMIC_BELOW_G_DL,
    low=RISK_LOW,
    high=RISK_HIGH,
    margin=AGREE_MARGIN_G_DL,
)


class FingernailModule(tf.Module):
    def __init__(self, params: NailParams) -> None:
        super().__init__()
        self.params = params

    def columns(self, x: tf.Tensor) -> tf.Tensor:
        p = self.params
        f = nail_features_tf(x, p)
        z = (f - tf.constant(p.feature_mean)) / tf.constant(p.feature_scale)
        logit = tf.matmul(z, tf.constant(p.w_cls.reshape(-1, 1))) + p.b_cls
        prob = tf.sigmoid(p.platt_a * logit + p.platt_b)
        hb = agree(prob, tf.matmul(z, tf.constant(p.w_hb.reshape(-1, 1))) + p.b_hb, _AGREE)
        scale = tf.ones_like(hb) * p.hb_scale
        # The raw features ride along as "feature:<name>" columns (ignored by the runtime),
        # as in the conjunctiva model, so tests can check them against the NumPy recipe.
        return tf.concat([prob, hb, scale, f], axis=1)


def export_nail_tflite(params: NailParams, path: Path, size: int) -> bytes:
    return export_module(FingernailModule(params), path, size)


def nail_features_for_check(x: np.ndarray, params: NailParams) -> np.ndarray:
    """The in-graph features, run eagerly (for the NumPy agreement check)."""
    out = nail_features_tf(tf.constant(x[None].astype(np.float32)), params)
    return np.asarray(out.numpy())[0]
