"""The request body as gunicorn receives it, read in the sizes Django asks for.

gunicorn's `wsgi.input` (gunicorn.http.body.Body) serves every `read(n)` by reading its
body 1 KiB at a time through Python, each step slicing and re-buffering what the socket
gave it: a 3 MB phone photo costs ~8 ms of this before Django sees a byte (measured by
`python -m bench.request_cost`; a known issue, benoitc/gunicorn#2596, unresolved in 23.0).
The reader underneath the Body (a LengthReader, for a request with a Content-Length)
reads the same bytes from the same socket in one pass per call. `body_input_wrap` puts a
thin object before the Body that asks that reader directly, and leaves the Body in
charge of whatever it handles itself (lines, iteration, anything it has buffered), so
gunicorn still sees the body consumed exactly as far as it was read and drains the rest
itself before the next keep-alive request.

Anything else in `wsgi.input` (chunked bodies, another server, the test client, a newer
gunicorn whose Body looks different) is passed on untouched.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

try:
    from gunicorn.http.body import Body, LengthReader
except ImportError:  # gunicorn is a production dependency; without it there is no Body
    Body = LengthReader = None

WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Reads of "everything" are served in slices of this size, as LengthReader buffers each.
_READ_ALL_STEP = 1 << 20


class LengthBodyInput:
    """`wsgi.input` for a gunicorn Body with a Content-Length: read() goes to its reader."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._reader = body.reader

    def read(self, size: int | None = None) -> bytes:
        if self._body.buf.tell():
            # The Body holds bytes it read ahead (for readline): it serves them in order.
            return bytes(self._body.read(size))
        if size is None or size < 0:
            parts = []
            while chunk := self._reader.read(_READ_ALL_STEP):
                parts.append(chunk)
            return b"".join(parts)
        return bytes(self._reader.read(size))

    def readline(self, size: int | None = None) -> bytes:
        return bytes(self._body.readline(size))

    def readlines(self, size: int | None = None) -> list[bytes]:
        return list(self._body.readlines(size))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)


def body_input_for(stream: Any) -> Any:
    """The faster reader for a gunicorn Body with a Content-Length, else `stream` itself."""
    if (
        Body is not None
        and type(stream) is Body
        and type(getattr(stream, "reader", None)) is LengthReader
        and isinstance(getattr(stream, "buf", None), io.BytesIO)
    ):
        return LengthBodyInput(stream)
    return stream


def body_input_wrap(application: WSGIApplication) -> WSGIApplication:
    """The WSGI application, with gunicorn's request body read through body_input_for."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = body_input_for(stream)
        return application(environ, start_response)

    return wrapped
