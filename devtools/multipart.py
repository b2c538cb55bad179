"""multipart/form-data bodies built by hand: names and file names are sent verbatim,
so tests can send what no browser would. Stdlib only."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: bytes
    data: bytes
    filename: bytes | None = None
    content_type: bytes = b"application/octet-stream"


def multipart(parts: Iterable[Part], boundary: str | None = None) -> tuple[bytes, str]:
    """The body and its Content-Type header."""
    boundary = boundary or "hg-" + uuid.uuid4().hex
    b = boundary.encode()
    out = bytearray()
    for part in parts:
        out += b"--" + b + b"\r\n"
        disposition = b'Content-Disposition: form-data; name="' + part.name + b'"'
        if part.filename is not None:
            disposition += b'; filename="' + part.filename + b'"'
            out += disposition + b"\r\nContent-Type: " + part.content_type + b"\r\n\r\n"
        else:
            out += disposition + b"\r\n\r\n"
        out += part.data + b"\r\n"
    out += b"--" + b + b"--\r\n"
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def image_part(data: bytes, filename: bytes = b"eyelid.jpg", ctype: bytes = b"image/jpeg") -> Part:
    return Part(b"image", data, filename, ctype)


def image_upload(
    data: bytes, filename: str = "eyelid.png", content_type: str = "image/png"
) -> tuple[bytes, str]:
    """The body of POST /api/predict with one `image` file, and its Content-Type."""
    return multipart([image_part(data, filename.encode(), content_type.encode())])
