#!/usr/bin/env python3
"""Smoke test a running HealthGuard Vision deployment (standard library only).

    BASE_URL=http://127.0.0.1:8000 python3 deploy/smoke_check.py [--wait 180] [--image F]
        [--health-only]

Checks, in order: /health/ready (polled for up to --wait seconds), /health/live,
/health, then POST /api/predict with a real image, expecting 201 and every documented
field with a sane value and the caller's X-Request-ID echoed back. When METRICS_TOKEN is
set it also checks that /metrics refuses a scrape without the token and serves one
with it. --health-only skips the prediction (production: nothing is stored there).
Exits 1 on the first failed check, 2 on bad usage.

The image: --image, else the first PNG of the shared anemia data set
(../shared/data/anemia/images/cpanemic beside the checkout, or SMOKE_IMAGE_DIR), else a
small photo-like PNG generated here (CI agents have no copy of the data set). A real crop
must be scored (201). The generated PNG is not an eyelid, so the photo gate must refuse
it: 422 `not_a_conjunctiva`/`photo_quality` with `details.reasons` (that proves the model
and its gate are loaded, but not that scoring works: pass a real image for that).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[2] / "shared/data/anemia/images/cpanemic"
TIMEOUT_S = 30.0
GENERATED_NAME = "generated.png"
GATE_CODES = ("not_a_conjunctiva", "photo_quality")


class CheckFailed(Exception):
    pass


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CheckFailed(f"not JSON (status {self.status}): {self.body[:200]!r}") from None


def request(
    base_url: str,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    url = urllib.parse.urljoin(base_url.rstrip("/") + "/", path.lstrip("/"))
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CheckFailed(f"BASE_URL must be an http(s) URL, got {base_url!r}")
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310  (scheme checked)
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return Response(resp.status, headers, resp.read())
    except urllib.error.HTTPError as exc:
        headers = {k.lower(): v for k, v in exc.headers.items()}
        return Response(exc.code, headers, exc.read())


def expect_status(resp: Response, status: int, what: str) -> None:
    if resp.status != status:
        raise CheckFailed(f"{what}: expected {status}, got {resp.status}: {resp.body[:300]!r}")


def wait_ready(base_url: str, wait_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            resp = request(base_url, "/health/ready")
            if resp.status == 200:
                return dict(resp.json())
            last = f"status {resp.status}: {resp.body[:200]!r}"
        except (urllib.error.URLError, OSError) as exc:
            last = f"{exc.__class__.__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise CheckFailed(f"/health/ready not 200 within {wait_s:.0f} s (last: {last})")
        time.sleep(2)


def png_generated(width: int = 320, height: int = 240) -> bytes:
    """A photo-like RGB PNG: pink-red tissue tones with noise (deterministic)."""
    rng = random.Random(7)  # noqa: S311  (test pattern, not security)
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            shade = 0.75 + 0.25 * (x / width) * (1 - abs(y - height / 2) / height)
            rows += bytes(
                max(0, min(255, int(c * shade) + rng.randint(-12, 12))) for c in (205, 105, 110)
            )

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def image_pick(path: str | None) -> tuple[str, bytes]:
    if path:
        return Path(path).name, Path(path).read_bytes()
    data_dir = Path(os.environ.get("SMOKE_IMAGE_DIR") or DATA_DIR)
    if data_dir.is_dir():
        for candidate in sorted(data_dir.glob("*.png")):
            return candidate.name, candidate.read_bytes()
    return GENERATED_NAME, png_generated()


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "smoke" + secrets.token_hex(12)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def check_live(base_url: str) -> str:
    resp = request(base_url, "/health/live")
    expect_status(resp, 200, "GET /health/live")
    return "process answers"


def check_health(base_url: str) -> str:
    resp = request(base_url, "/health")
    expect_status(resp, 200, "GET /health")
    body = resp.json()
    if body.get("model_loaded") is not True or body.get("database_reachable") is not True:
        raise CheckFailed(f"GET /health: model or database not ok: {body}")
    return f"version {body.get('version')}, model sites {body.get('model_sites')}"


def check_predict(base_url: str, image: str | None) -> str:
    filename, content = image_pick(image)
    request_id = "smoke-" + secrets.token_hex(8)
    body, content_type = multipart({"site": "conjunctiva"}, filename, content)
    resp = request(
        base_url,
        "/api/predict",
        method="POST",
        body=body,
        headers={
            "Content-Type": content_type,
            "Accept": "application/json",
            "X-Request-ID": request_id,
        },
    )
    if filename == GENERATED_NAME:
        return gate_refusal_check(resp)
    expect_status(resp, 201, f"POST /api/predict ({filename}, {len(content)} bytes)")
    result = resp.json()
    problems = []
    for field in (
        "condition",
        "risk_level",
        "risk_score",
        "confidence",
        "recommendation",
        "analysis_date",
        "message_id",
        "model_version",
        "request_id",
        "segmentation",
    ):
        if result.get(field) in (None, ""):
            problems.append(f"{field} missing")
    if result.get("risk_level") not in ("low", "medium", "high"):
        problems.append(f"risk_level {result.get('risk_level')!r}")
    for field in ("risk_score", "confidence"):
        value = result.get(field)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            problems.append(f"{field} {value!r} not a number in [0, 1]")
    if not re.fullmatch(r"pred_[A-Za-z0-9_-]{16,}", str(result.get("message_id", ""))):
        problems.append(f"message_id {result.get('message_id')!r}")
    if result.get("segmentation") not in ("provided", "automatic"):
        problems.append(f"segmentation {result.get('segmentation')!r}")
    try:
        analysed = datetime.fromisoformat(str(result.get("analysis_date")).replace("Z", "+00:00"))
        offset = analysed.utcoffset()
        if offset is None or offset.total_seconds() != 0:
            problems.append(f"analysis_date {result.get('analysis_date')!r} not UTC")
    except ValueError:
        problems.append(f"analysis_date {result.get('analysis_date')!r} not ISO 8601")
    if result.get("request_id") != request_id or resp.headers.get("x-request-id") != request_id:
        problems.append(
            f"request id not echoed: body {result.get('request_id')!r}, "
            f"header {resp.headers.get('x-request-id')!r}"
        )
    if problems:
        raise CheckFailed("POST /api/predict: " + "; ".join(problems) + f" in {result}")
    return (
        f"{filename}: {result['risk_level']} (score {result['risk_score']}, "
        f"confidence {result['confidence']}), {result['message_id']}, "
        f"model {result['model_version']}"
    )


def gate_refusal_check(resp: Response) -> str:
    """The generated PNG is no eyelid: the photo gate must refuse it in the error shape."""
    expect_status(resp, 422, f"POST /api/predict ({GENERATED_NAME}, refused by the photo gate)")
    error = resp.json().get("error", {})
    details = error.get("details") or {}
    if error.get("code") not in GATE_CODES or not details.get("reasons") or not details.get(
        "advice"
    ):
        raise CheckFailed(f"POST /api/predict ({GENERATED_NAME}): not a gate refusal: {error}")
    return (
        f"{GENERATED_NAME}: refused by the photo gate ({error['code']}, {details['reasons']}); "
        "scoring not checked, pass --image with a real crop"
    )


def check_metrics(base_url: str, token: str) -> str:
    anonymous = request(base_url, "/metrics")
    if anonymous.status not in (401, 403):
        raise CheckFailed(
            f"GET /metrics without the token: expected 401 or 403, got {anonymous.status}"
        )
    resp = request(base_url, "/metrics", headers={"Authorization": f"Bearer {token}"})
    expect_status(resp, 200, "GET /metrics with the token")
    if b"# TYPE " not in resp.body:
        raise CheckFailed("GET /metrics: not in the Prometheus text format")
    return f"refused without token ({anonymous.status}), {len(resp.body)} bytes with it"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base-url", default=os.environ.get("BASE_URL"), help="default: $BASE_URL")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for readiness")
    parser.add_argument("--image", help="image to post (default: see the module docstring)")
    parser.add_argument(
        "--health-only",
        action="store_true",
        help="probes and metrics only, no prediction stored (production)",
    )
    args = parser.parse_args(argv)
    if not args.base_url:
        parser.error("set BASE_URL or pass --base-url")
    base_url: str = args.base_url
    token = os.environ.get("METRICS_TOKEN", "")

    checks: list[tuple[str, Any]] = [
        ("ready", lambda: f"{wait_ready(base_url, args.wait)}"),
        ("live", lambda: check_live(base_url)),
        ("health", lambda: check_health(base_url)),
    ]
    if not args.health_only:
        checks.append(("predict", lambda: check_predict(base_url, args.image)))
    if token:
        checks.append(("metrics", lambda: check_metrics(base_url, token)))
    print(f"smoke check against {base_url}")
    for name, check in checks:
        started = time.monotonic()
        try:
            detail = check()
        except (CheckFailed, urllib.error.URLError, OSError) as exc:
            print(f"  FAIL {name}: {exc}")
            return 1
        print(f"  ok   {name} ({(time.monotonic() - started) * 1000:.0f} ms): {detail}")
    print(f"smoke check: all {len(checks)} checks succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
