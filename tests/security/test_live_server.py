"""Hostile clients against the real server: gunicorn with gunicorn.conf.py, 2 workers.

What the Django test client cannot show: a client that sends headers and then stalls
(slowloris) is cut off by the worker timeout while the other worker keeps serving, and
bodies that are hostile at the HTTP level are refused by the server as deployed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from devtools.live import LiveServer, live_server
from devtools.multipart import image_part, multipart
from tests.security import hostile

pytestmark = pytest.mark.live_server_process

WORKER_TIMEOUT = 5
REJECTIONS = "healthguard_upload_rejections_total"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server("security", workers=2, timeout=WORKER_TIMEOUT) as srv:
        yield srv


def post(server: LiveServer, body: bytes, content_type: str):
    return server.request(
        "POST", "/api/predict", body=body, headers={"Content-Type": content_type}, timeout=30
    )


def assert_clean_error(resp, status: int, code: str) -> None:
    assert resp.status == status, resp.body[:300]
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["error"]["code"] == code
    assert b"Traceback" not in resp.body


def test_a_stalled_upload_is_cut_off_by_the_worker_timeout(server: LiveServer):
    head = (
        "POST /api/predict HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=stall\r\n"
        "Content-Length: 1000000\r\n\r\n"
        "--stall\r\n"
        'Content-Disposition: form-data; name="image"; filename="eyelid.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
        "\xff\xd8\xff"
    ).encode("latin-1")
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(head)
        # The other worker still answers while this one waits for a body that never comes.
        time.sleep(0.5)
        assert server.request("GET", "/health/live", timeout=5).status == 200
        sock.settimeout(WORKER_TIMEOUT * 4)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                chunk = b""
            if not chunk:
                break
            received += chunk
    elapsed = time.monotonic() - started
    # Closed by the server: within the worker timeout (plus the arbiter's check and
    # graceful window), never by our own 20 s read timeout.
    assert elapsed < WORKER_TIMEOUT * 3, elapsed
    assert b"Traceback" not in received
    assert received == b"" or received.startswith(b"HTTP/1.1 ")
    # A new worker replaces the stuck one; the service is ready again.
    server.wait_for("/health/ready", 200, timeout=60)


def test_headers_that_never_end_are_cut_off_too(server: LiveServer):
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        sock.settimeout(WORKER_TIMEOUT * 4)
        try:
            while sock.recv(65536):
                pass
        except (ConnectionResetError, TimeoutError):
            pass
    assert time.monotonic() - started < WORKER_TIMEOUT * 3
    server.wait_for("/health/ready", 200, timeout=60)


def test_the_server_refuses_10000_parts(server: LiveServer, real_crop_bytes):
    before = server.metric_total(REJECTIONS)
    body, ctype = multipart([image_part(real_crop_bytes), *hostile.many_parts(10_000, files=False)])
    assert_clean_error(post(server, body, ctype), 400, "malformed_request")
    assert server.metric_total(REJECTIONS) == before + 1


def test_the_server_refuses_a_declared_body_past_the_limit_without_reading_it(server: LiveServer):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=big\r\n"
            b"Content-Length: 50000000\r\n\r\n--big\r\n"
        )
        sock.settimeout(WORKER_TIMEOUT * 2)
        reply = b""
        while chunk := sock.recv(65536):  # the server answers and closes
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert b'"file_too_large"' in reply


@pytest.mark.parametrize(
    ("name", "status"),
    [
        (b"../../etc/passwd\x00.png", 201),
        (b"..\\..\\boot.ini\x00" + b"A" * 500 + b".png", 201),
        # Django refuses a part whose headers exceed 1 KB: the image is never read.
        (b"../../etc/passwd\x00" + b"A" * 10_000 + b".png", 400),
    ],
    ids=["dot-dot-nul", "backslashes-nul-long", "10000-chars"],
)
def test_the_server_ignores_a_hostile_file_name(server: LiveServer, real_crop_bytes, name, status):
    body, ctype = multipart([image_part(real_crop_bytes, name, b"image/png")])
    resp = post(server, body, ctype)
    if status == 201:
        assert resp.status == 201, resp.body[:300]
        assert "passwd" not in resp.body.decode() and "boot.ini" not in resp.body.decode()
    else:
        assert_clean_error(resp, 400, "malformed_request")
    assert "passwd" not in server.logs() and "boot.ini" not in server.logs()


def test_the_server_refuses_a_polyglot(server: LiveServer, real_crop_bytes):
    from tests.conftest import flatten_on_skin

    jpeg = hostile.encode(".jpg", flatten_on_skin(real_crop_bytes), 1, 92)
    before = server.metric_total(REJECTIONS)
    body, ctype = multipart([image_part(hostile.polyglot_jpeg_zip(jpeg))])
    assert_clean_error(post(server, body, ctype), 415, "unsupported_media_type")
    assert server.metric_total(REJECTIONS) == before + 1


def test_no_request_above_ended_in_a_server_error(server: LiveServer):
    assert server.metric_total("healthguard_api_errors_total") >= 1
    text = server.request("GET", "/metrics").body.decode()
    assert 'status="500"' not in text and 'code="internal_error"' not in text
    # The worker timeouts above log gunicorn's own traceback of the aborted worker (its
    # design); the application itself logged no server error.
    assert "Internal Server Error" not in server.logs()
