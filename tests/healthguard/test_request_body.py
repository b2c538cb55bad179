"""healthguard/request_body.py: gunicorn's request body, read through its LengthReader.

Real gunicorn readers over a real socket pair; the live-server tests
(tests/security/test_live_server.py) send hostile bodies through the whole server.
"""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from django.core.handlers.wsgi import WSGIRequest
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import SocketUnreader

from devtools.multipart import image_upload
from healthguard.request_body import LengthBodyInput, body_input_for, body_input_wrap

NEXT_REQUEST = b"GET /health HTTP/1.1\r\n\r\n"


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    client, server = socket.socketpair()
    server.settimeout(10)
    yield client, server
    client.close()
    server.close()


def send(client: socket.socket, data: bytes, *, close: bool = False) -> threading.Thread:
    def run() -> None:
        client.sendall(data)
        if close:
            client.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def gunicorn_body(server: socket.socket, length: int) -> tuple[Body, SocketUnreader]:
    unreader = SocketUnreader(server)
    return Body(LengthReader(unreader, length)), unreader


def read_in_chunks(stream, size: int = 65536) -> bytes:
    parts = []
    while chunk := stream.read(size):
        parts.append(chunk)
    return b"".join(parts)


def test_it_reads_a_gunicorn_body_with_a_length_through_its_reader(sockets):
    client, server = sockets
    data = os.urandom(3 * 1024 * 1024 + 17)
    send(client, data)
    body, _ = gunicorn_body(server, len(data))
    stream = body_input_for(body)
    assert isinstance(stream, LengthBodyInput)
    assert read_in_chunks(stream) == data
    assert body.read(8192) == b""  # gunicorn finds nothing left to drain


def test_it_never_reads_past_the_body_into_the_next_request(sockets):
    client, server = sockets
    data = os.urandom(200_000)
    send(client, data + NEXT_REQUEST)
    body, unreader = gunicorn_body(server, len(data))
    assert read_in_chunks(body_input_for(body), 65536) == data
    assert unreader.read() == NEXT_REQUEST


def test_what_django_leaves_unread_is_left_for_gunicorn_to_drain(sockets):
    client, server = sockets
    data = os.urandom(100_000)
    send(client, data + NEXT_REQUEST)
    body, unreader = gunicorn_body(server, len(data))
    stream = body_input_for(body)
    assert stream.read(1000) == data[:1000]
    assert read_in_chunks(body, 8192) == data[1000:]  # as gunicorn drains before the next
    assert unreader.read() == NEXT_REQUEST


def test_lines_and_reads_come_back_in_order(sockets):
    client, server = sockets
    data = b"first line\r\nsecond line\r\n" + os.urandom(50_000)
    send(client, data)
    body, _ = gunicorn_body(server, len(data))
    stream = body_input_for(body)
    assert stream.readline() == b"first line\r\n"
    # The Body read ahead for the line: those bytes are served before the socket's.
    assert stream.read(5) == b"secon"
    assert stream.read() == data[len(b"first line\r\nsecon") :]
    assert stream.read(10) == b""


def test_a_multipart_upload_reaches_django_whole(sockets):
    client, server = sockets
    image = b"\xff\xd8\xff" + os.urandom(2 * 1024 * 1024)
    payload, ctype = image_upload(image, "phone.jpg", "image/jpeg")
    send(client, payload)
    body, _ = gunicorn_body(server, len(payload))
    request = WSGIRequest(_environ(body_input_for(body), payload, ctype))
    assert request.FILES.getlist("image")[0].read() == image


@pytest.mark.parametrize("wrapped", [False, True], ids=["gunicorn Body", "LengthBodyInput"])
def test_a_body_cut_short_fails_the_same_way_with_or_without_it(wrapped):
    # The client promises more than it sends and closes: both readers see the same end.
    image = b"\xff\xd8\xff" + os.urandom(300_000)
    payload, ctype = image_upload(image, "cut.jpg", "image/jpeg")
    client, server = socket.socketpair()
    server.settimeout(10)
    try:
        send(client, payload[: len(payload) // 2], close=True)
        body, _ = gunicorn_body(server, len(payload))
        stream = body_input_for(body) if wrapped else body
        assert read_in_chunks(stream) == payload[: len(payload) // 2]
    finally:
        client.close()
        server.close()


def test_other_streams_are_passed_on_untouched(sockets):
    _, server = sockets
    plain = io.BytesIO(b"abc")
    assert body_input_for(plain) is plain
    chunked = Body(ChunkedReader(None, SocketUnreader(server)))
    assert body_input_for(chunked) is chunked


def test_the_wsgi_wrapper_swaps_in_the_reader_for_gunicorn_bodies_only(sockets):
    _, server = sockets
    seen = []

    def app(environ, start_response):
        seen.append(environ["wsgi.input"])
        return [b""]

    wrapped = body_input_wrap(app)
    body, _ = gunicorn_body(server, 10)
    wrapped({"wsgi.input": body}, lambda *a: None)
    plain = io.BytesIO()
    wrapped({"wsgi.input": plain}, lambda *a: None)
    assert isinstance(seen[0], LengthBodyInput)
    assert seen[1] is plain


def test_the_production_application_is_wrapped():
    from healthguard import wsgi

    assert wsgi.application.__qualname__.startswith("body_input_wrap")


def _environ(stream, payload: bytes, ctype: str) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/predict",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "CONTENT_TYPE": ctype,
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": stream,
        "wsgi.url_scheme": "http",
    }
