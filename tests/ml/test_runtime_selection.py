"""Which interpreter package ml.runtime picked: CI runs tests/ml under each one."""

from __future__ import annotations

import importlib.util
import os

from ml.runtime import RUNTIME_NAME


def test_it_uses_the_runtime_this_run_expects():
    expected = os.environ.get("HEALTHGUARD_EXPECT_RUNTIME")
    if expected is None:
        # tflite-runtime is preferred whenever it is installed.
        installed = importlib.util.find_spec("tflite_runtime") is not None
        expected = "tflite_runtime" if installed else "ai_edge_litert"
    assert expected == RUNTIME_NAME
