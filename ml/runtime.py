"""Loading the shipped TFLite models (one per body site) and running them.

The interpreter comes from ``tflite_runtime`` or, if that is not installed, from its
successor ``ai_edge_litert``; RUNTIME_NAME says which. Each model is loaded once per
process (see get_registry) and ``Model.predict`` is safe to call from many threads.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ml.card import CardError, ModelCard, load_card
from ml.fingernail import SITE as FINGERNAIL_SITE
from ml.fingernail import NoFingernailFound, fingernail_input
from ml.gate import GATE_FILE, GateError, load_gate
from ml.images import DecodedImage, ImageError
from ml.preprocess import InputSpec, prepare_input
from ml.segmentation import segment_conjunctiva

logger = logging.getLogger(__name__)

try:
    from tflite_runtime.interpreter import Interpreter

    RUNTIME_NAME = "tflite_runtime"
except ImportError:  # pragma: no cover - depends on what is installed
    from ai_edge_litert.interpreter import Interpreter

    RUNTIME_NAME = "ai_edge_litert"

MODEL_FILE = "model.tflite"
CARD_FILE = "card.json"
# Below this many mask pixels (at the model's input size) there is nothing to measure.
MIN_MASK_PIXELS = 200


class ModelLoadError(Exception):
    """A model folder is missing, incomplete or corrupt."""


class UnknownSite(KeyError):
    """No model is loaded for the requested body site."""

    def __init__(self, site: str, known: tuple[str, ...]) -> None:
        super().__init__(site)
        self.site = site
        self.known = known

    def __str__(self) -> str:
        return f"no model for site {self.site!r}; known sites: {', '.join(self.known) or 'none'}"


class NoConjunctivaFound(ImageError):
    """The mask (provided or automatic) covers too little of the image to analyse."""

    code = "no_conjunctiva_found"


# The output columns every model must provide (card["output"]["columns"] names them; the
# .tflite output is [1, K] in that order). See ml/README.md, "Output contract".
P_COLUMN = "p_anemic"
HB_MEAN_COLUMN = "hb_mean_g_dl"
HB_SCALE_COLUMN = "hb_scale_g_dl"
REQUIRED_COLUMNS = (P_COLUMN, HB_MEAN_COLUMN, HB_SCALE_COLUMN)


@dataclass(frozen=True)
class ModelOutput:
    probability: float
    model_version: str
    site: str
    segmentation: Literal["provided", "automatic"]
    timings_ms: dict[str, float]
    # Haemoglobin estimate (one decimal) and its 90% prediction interval (low, high), with
    # low <= estimate <= high; how the interval is built is in the card's "hb" section.
    hb_estimate_g_dl: float
    hb_interval_g_dl: tuple[float, float]


@dataclass(frozen=True)
class HbSpec:
    """How the Hb columns become an estimate and an interval (card["hb"]["interval"])."""

    quantile: float  # interval = mean -+ quantile * scale (normalised split-conformal)
    clip_low: float
    clip_high: float

    @classmethod
    def from_card(cls, card: ModelCard) -> HbSpec:
        hb = card.raw.get("hb")
        interval = hb.get("interval") if isinstance(hb, dict) else None
        try:
            if not isinstance(interval, dict):
                raise TypeError("no hb.interval section")
            quantile = float(interval["conformal_quantile"])
            clip_low, clip_high = (float(v) for v in interval["clip_g_dl"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(
                "the card lacks hb.interval.conformal_quantile / hb.interval.clip_g_dl"
            ) from exc
        if not (quantile > 0.0 and clip_low < clip_high):
            raise ModelLoadError("the card's hb.interval section is not usable")
        return cls(quantile=quantile, clip_low=clip_low, clip_high=clip_high)

    def estimate(self, mean: float, scale: float) -> tuple[float, tuple[float, float]]:
        """(estimate, (low, high)) rounded to 1 decimal, clipped to the plausible range."""
        half = self.quantile * max(scale, 0.0)
        est = min(self.clip_high, max(self.clip_low, mean))
        low = min(est, max(self.clip_low, mean - half))
        high = max(est, min(self.clip_high, mean + half))
        est_r, low_r, high_r = round(est, 1), round(low, 1), round(high, 1)
        return est_r, (min(low_r, est_r), max(high_r, est_r))


class Model:
    """One loaded .tflite file and its card. ``predict`` is thread-safe."""

    def __init__(self, model_path: Path, card: ModelCard) -> None:
        self.card = card
        self.spec = InputSpec.from_card(card.input)
        self._lock = threading.Lock()
        try:
            # The service never scores without its photo gate (see ml/gate.py).
            self.gate = load_gate(model_path.parent / GATE_FILE, site=card.site)
        except GateError as exc:
            raise ModelLoadError(str(exc)) from exc
        blob = _read_model(model_path, card)
        try:
            # From bytes, not from the path: the path loader memory-maps the file without
            # verifying it, and a truncated file then kills the process (SIGBUS).
            self._interpreter: Any = Interpreter(model_content=blob, num_threads=1)
            self._interpreter.allocate_tensors()
            inputs = self._interpreter.get_input_details()
            outputs = self._interpreter.get_output_details()
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"{model_path} is not a loadable TFLite model: {exc}") from exc
        expected = [1, self.spec.size, self.spec.size, 4]
        if len(inputs) != 1 or list(inputs[0]["shape"]) != expected or len(outputs) != 1:
            raise ModelLoadError(
                f"{model_path} does not match its card: expected one input of shape {expected} "
                f"and one output, got {[list(i['shape']) for i in inputs]}"
            )
        self._input_index = int(inputs[0]["index"])
        self._output_index = int(outputs[0]["index"])
        self._columns = _output_columns(card, model_path, list(outputs[0]["shape"]))
        self.hb = HbSpec.from_card(card)
        # Warm up once so the first request does not pay for lazy allocations.
        self._invoke(np.zeros(expected, dtype=np.float32))

    def _invoke(self, tensor: np.ndarray) -> dict[str, float]:
        """The output row as {column name: value}."""
        with self._lock:
            self._interpreter.set_tensor(self._input_index, tensor)
            self._interpreter.invoke()
            out = np.array(self._interpreter.get_tensor(self._output_index)).reshape(-1)
        return {name: float(out[i]) for name, i in self._columns.items()}

    def prepare(self, image: DecodedImage) -> tuple[np.ndarray, Literal["provided", "automatic"]]:
        """The exact input tensor for ``image`` and which segmentation path was taken."""
        how: Literal["provided", "automatic"]
        if self.card.site == FINGERNAIL_SITE:
            return self._prepare_fingernail(image), "provided"
        if image.mask is not None:
            mask, how = image.mask, "provided"
        else:
            mask, how = segment_conjunctiva(image.rgb), "automatic"
        tensor = prepare_input(image.rgb, mask, self.spec)
        if float(tensor[0, :, :, 3].sum()) < MIN_MASK_PIXELS:
            raise NoConjunctivaFound(
                "No inner eyelid (conjunctiva) could be found in the photo. Pull the lower "
                "eyelid down and take the photo in good light, or mark the area yourself."
            )
        return tensor, how

    def _prepare_fingernail(self, image: DecodedImage) -> np.ndarray:
        # Nails are never segmented automatically (see ml/fingernail.py): the conjunctiva
        # colour rules would pick skin, and nothing else finds nails reliably.
        if image.mask is None:
            raise NoFingernailFound(
                "The photo has no fingernail outlines, so no fingernail could be found."
            )
        tensor = fingernail_input(image.rgb, image.mask, self.spec)
        if float(tensor[0, :, :, 3].sum()) < MIN_MASK_PIXELS:
            raise NoFingernailFound("The fingernail outlines are too small to analyse.")
        return tensor

    def predict(self, image: DecodedImage, *, gate: bool = True) -> ModelOutput:
        """Score one image; the photo gate raises ml.gate.PhotoRejected first.

        ``gate=False`` is for offline evaluation of the model itself (the reference
        outputs ml.training.train records, the artefact tests); the service never passes it.
        """
        t0 = time.perf_counter()
        tensor, how = self.prepare(image)
        if gate:
            self.gate.check(tensor, how)
        t1 = time.perf_counter()
        row = self._invoke(tensor)
        t2 = time.perf_counter()
        p = min(1.0, max(0.0, row[P_COLUMN]))
        estimate, interval = self.hb.estimate(row[HB_MEAN_COLUMN], row[HB_SCALE_COLUMN])
        return ModelOutput(
            probability=p,
            model_version=self.card.version,
            site=self.card.site,
            segmentation=how,
            timings_ms={"preprocess": (t1 - t0) * 1000.0, "inference": (t2 - t1) * 1000.0},
            hb_estimate_g_dl=estimate,
            hb_interval_g_dl=interval,
        )


def _output_columns(card: ModelCard, model_path: Path, shape: list[int]) -> dict[str, int]:
    """Index of each required column in the [1, K] output, from card["output"]["columns"]."""
    section = card.raw.get("output")
    columns = section.get("columns") if isinstance(section, dict) else None
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ModelLoadError(f"the card next to {model_path} lacks output.columns")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ModelLoadError(f"the card next to {model_path} lacks output columns {missing}")
    if shape != [1, len(columns)]:
        raise ModelLoadError(
            f"{model_path} has output shape {shape} but its card names {len(columns)} columns"
        )
    return {c: columns.index(c) for c in REQUIRED_COLUMNS}


def _read_model(model_path: Path, card: ModelCard) -> bytes:
    """The .tflite bytes, checked against the card's sha256 and the TFLite file identifier."""
    try:
        blob = model_path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{model_path} cannot be read: {exc}") from exc
    if blob[4:8] != b"TFL3":
        raise ModelLoadError(f"{model_path} is not a loadable TFLite model (no TFL3 identifier)")
    model = card.raw.get("model")
    expected = model.get("sha256") if isinstance(model, dict) else None
    if not expected:
        # The hash is what keeps a truncated or corrupt file away from the interpreter,
        # which can crash the process (not raise) on some malformed flatbuffers.
        raise ModelLoadError(f"the card next to {model_path} lacks model.sha256")
    if hashlib.sha256(blob).hexdigest() != expected:
        raise ModelLoadError(
            f"{model_path} does not match the sha256 in its card.json (truncated, corrupt, or "
            "the card belongs to another model)"
        )
    return blob


class ModelRegistry:
    """All the models in a folder: one subfolder per body site."""

    def __init__(self, models: dict[str, Model]) -> None:
        self._models = dict(models)
        self.sites: tuple[str, ...] = tuple(sorted(self._models))

    @classmethod
    def from_dir(cls, model_dir: Path) -> ModelRegistry:
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelLoadError(f"model directory {model_dir} does not exist")
        models: dict[str, Model] = {}
        for sub in sorted(p for p in model_dir.iterdir() if p.is_dir()):
            card_path, model_path = sub / CARD_FILE, sub / MODEL_FILE
            if not card_path.exists() and not model_path.exists():
                continue  # not a model folder
            if not card_path.is_file():
                raise ModelLoadError(f"{sub} has {MODEL_FILE} but no {CARD_FILE}")
            if not model_path.is_file():
                raise ModelLoadError(f"{sub} has {CARD_FILE} but no {MODEL_FILE}")
            try:
                card = load_card(card_path)
            except CardError as exc:
                raise ModelLoadError(f"{card_path}: {exc}") from exc
            if card.site != sub.name:
                raise ModelLoadError(
                    f"{card_path} says site {card.site!r} but lives in folder {sub.name!r}"
                )
            models[card.site] = Model(model_path, card)
            logger.info("loaded model %s (%s) with %s", card.version, card.site, RUNTIME_NAME)
        if not models:
            raise ModelLoadError(
                f"no model found in {model_dir}: expected subfolders with {CARD_FILE} "
                f"and {MODEL_FILE}"
            )
        return cls(models)

    def get(self, site: str) -> Model:
        try:
            return self._models[site]
        except KeyError:
            raise UnknownSite(site, self.sites) from None


_registries: dict[Path, ModelRegistry] = {}
_registries_lock = threading.Lock()


def get_registry(model_dir: Path) -> ModelRegistry:
    """The process-wide registry for ``model_dir``, loaded on first use."""
    key = Path(model_dir).resolve()
    with _registries_lock:
        registry = _registries.get(key)
        if registry is None:
            registry = ModelRegistry.from_dir(key)
            _registries[key] = registry
        return registry
