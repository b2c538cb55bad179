"""The naive design as a plain implementation would build it: the bench's second peer.

    gunicorn -c gunicorn.conf.py bench.naive_flask:app    (started by bench/run.py)

What a straightforward reading of the architecture gives, and nothing more: Flask;
OpenCV decodes the upload at full resolution; a resize to the model's input size; the
same TFLite file, loaded once per worker at start; one autocommit INSERT per prediction
into a table of its own. No segmentation (the mask is the whole image), no audit trail,
no metrics, no request log, no sessions, no trailer check. It exists so that
``make bench`` measures the service against the design it is meant to beat, in one run.

Configuration: DATABASE_URL (PostgreSQL) and HEALTHGUARD_MODEL_DIR, as the service.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psycopg
from flask import Flask, jsonify, request

try:
    from tflite_runtime.interpreter import Interpreter
except ImportError:  # pragma: no cover - depends on what is installed
    from ai_edge_litert.interpreter import Interpreter

SITE = "conjunctiva"
MODEL_DIR = Path(os.environ.get("HEALTHGUARD_MODEL_DIR", Path(__file__).parent.parent / "model"))
CARD = json.loads((MODEL_DIR / SITE / "card.json").read_text())
SIZE = int(CARD["input"]["size"])
SCALE = np.float32(CARD["input"]["scale"])
LOW = float(CARD["risk"]["thresholds"]["low"])
HIGH = float(CARD["risk"]["thresholds"]["high"])

interpreter: Any = Interpreter(model_path=str(MODEL_DIR / SITE / "model.tflite"), num_threads=1)
interpreter.allocate_tensors()
INPUT = interpreter.get_input_details()[0]["index"]
OUTPUT = interpreter.get_output_details()[0]["index"]

conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
# Two workers start at once, and CREATE TABLE IF NOT EXISTS is not safe against itself
# (both may pass the check): one at a time, under a transaction-scoped advisory lock.
with conn.transaction():
    conn.execute("SELECT pg_advisory_xact_lock(724100)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS naive_prediction (id bigserial PRIMARY KEY, "
        "created timestamptz NOT NULL DEFAULT now(), score double precision NOT NULL, "
        "risk text NOT NULL)"
    )

app = Flask(__name__)


@app.get("/health/ready")
def ready() -> Any:
    return jsonify(status="ok")


@app.post("/api/predict")
def predict() -> Any:
    upload = request.files.get("image")
    if upload is None:
        return jsonify(error={"code": "missing_image"}), 400
    data = np.frombuffer(upload.read(), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        return jsonify(error={"code": "invalid_image"}), 400
    rgb = cv2.cvtColor(cv2.resize(bgr, (SIZE, SIZE), interpolation=cv2.INTER_AREA),
                       cv2.COLOR_BGR2RGB)
    tensor = np.ones((1, SIZE, SIZE, 4), np.float32)  # channel 3: the full mask
    tensor[0, :, :, :3] = rgb.astype(np.float32) * SCALE
    interpreter.set_tensor(INPUT, tensor)
    interpreter.invoke()
    score = float(interpreter.get_tensor(OUTPUT).reshape(-1)[0])
    risk = "LOW" if score < LOW else ("MEDIUM" if score < HIGH else "HIGH")
    row = conn.execute(
        "INSERT INTO naive_prediction (score, risk) VALUES (%s, %s) RETURNING id", (score, risk)
    ).fetchone()
    return jsonify(id=row[0] if row else None, score=score, risk=risk), 201
