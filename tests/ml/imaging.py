"""Hand-made image bytes for the tests (all in memory)."""

from __future__ import annotations

import base64
import struct
import zlib

import cv2
import numpy as np

# A 48x40 CMYK JPEG (Adobe APP14, as Photoshop and Pillow write them): left half white,
# right half CMYK (0, 200, 150, 30). Made with Pillow, which the runtime does not need.
CMYK_JPEG = base64.b64decode(
    "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwAFAwQEBAMFBAQEBQUFBgcMCAcHBwcPCwsJDBEPEhIRDxERExYcFxMUGhURERghGBodHR8fHxMXIiQiHiQcHh8e/8AAFAgAKAAwBEMRAE0RAFkRAEsRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/aAA4EQwBNAFkASwAAPwD7Lr7Lr7Lr7Looooooooor8v6+D64+iiiiiiiiiv1Ar7wrsKKKKKKKKKK/L+vg+uPooooooooor9QK+8K7Ciiiiiiiiivy/r4Prj6KKKKKKKKK/UCvvCuwooooooooor8v6+D64+iiiiiiiiiv1Ar7wrsKKKKKKKKKK/L+vg+uPoooooooor//2Q=="
)


def png_chunk(ctype: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(ctype + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", crc)


def make_png(
    width: int,
    height: int,
    *,
    color_type: int,
    bit_depth: int = 8,
    rows: list[bytes] | None = None,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """A PNG built by hand, so any colour type / bit depth / header can be made."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    for ctype, payload in extra:
        out += png_chunk(ctype, payload)
    if rows is not None:
        raw = b"".join(b"\x00" + r for r in rows)
        out += png_chunk(b"IDAT", zlib.compress(raw))
    return out + png_chunk(b"IEND", b"")


def encode(ext: str, pixels: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, pixels, params or [])
    assert ok
    return buf.tobytes()


def exif_orientation_app1(orientation: int) -> bytes:
    """An APP1 EXIF segment (little-endian TIFF) holding only the Orientation tag."""
    tiff = b"II*\x00" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + exif_orientation_app1(orientation) + jpeg[2:]


def half_red_bgr(height: int, width: int) -> np.ndarray:
    """Left half red, right half blue (BGR), so a rotation is visible."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2] = (0, 0, 255)
    img[:, width // 2 :] = (255, 0, 0)
    return img
