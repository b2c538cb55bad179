"""Print the model's speed: ``python -m ml.bench [--model-dir model] [--n 200]``.

Times Model.predict (preprocessing + inference, one interpreter thread) on a synthetic
masked 640x480 image, after warm-up, and prints the medians (the figure the issue's
2 ms inference bar is about) and the fastest run. Figures, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from ml.images import DecodedImage, ImageHeader
from ml.runtime import RUNTIME_NAME, ModelRegistry

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", default=str(REPO_ROOT / "model"))
    parser.add_argument("--site", default="conjunctiva")
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args(argv)
    model = ModelRegistry.from_dir(Path(args.model_dir)).get(args.site)
    rng = np.random.default_rng(0)
    rgb = rng.integers(90, 220, (480, 640, 3), dtype=np.uint8)
    mask = np.zeros((480, 640), np.uint8)
    mask[150:330, 100:540] = 255
    image = DecodedImage(rgb=rgb, mask=mask, header=ImageHeader("png", 640, 480, True, 8))
    for _ in range(5):
        model.predict(image)
    pre, inf, total = [], [], []
    for _ in range(args.n):
        t0 = time.perf_counter()
        out = model.predict(image)
        total.append((time.perf_counter() - t0) * 1000.0)
        pre.append(out.timings_ms["preprocess"])
        inf.append(out.timings_ms["inference"])
    size = (Path(args.model_dir) / args.site / "model.tflite").stat().st_size
    print(f"runtime {RUNTIME_NAME}, model {model.card.version}, {size / 1024:.0f} KiB")
    print(
        f"per image over {args.n} runs (median ms): inference {statistics.median(inf):.2f}, "
        f"preprocess {statistics.median(pre):.2f}, predict total {statistics.median(total):.2f}"
    )
    # On a shared, busy machine the median mostly measures waiting for a core; the fastest
    # runs show what the work itself costs.
    print(
        f"fastest run (ms): inference {min(inf):.2f}, preprocess {min(pre):.2f}, "
        f"predict total {min(total):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
