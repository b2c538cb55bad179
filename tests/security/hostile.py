"""Hostile and unusual files, built in memory from real pixels and hand-made bytes.

Nothing here touches disk: every builder returns bytes. The valid oddities (greyscale,
CMYK, 16-bit) start from a real conjunctiva crop so the model has something to find.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Sequence

import cv2
import numpy as np

from devtools.multipart import Part
from tests.conftest import flatten_on_skin

# --- generic containers -----------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, offset, length) of each segment up to and including the first SOS."""
    pos, out = 2, []
    while pos + 4 <= len(data):
        assert data[pos] == 0xFF, "not at a marker"
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        out.append((marker, pos, length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return out


def encode(ext: str, pixels: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, pixels, list(params))
    assert ok, ext
    return buf.tobytes()


# --- valid oddities: must be analysed (201) -----------------------------------------


def greyscale_jpeg(crop_png: bytes) -> bytes:
    grey = cv2.cvtColor(flatten_on_skin(crop_png), cv2.COLOR_BGR2GRAY)
    data = encode(".jpg", grey, cv2.IMWRITE_JPEG_QUALITY, 92)
    sof = next(s for s in jpeg_segments(data) if s[0] == 0xC0)
    assert data[sof[1] + 9] == 1, "expected a one-component JPEG"
    return data


def cmyk_jpeg(crop_png: bytes) -> bytes:
    """A four-component Adobe JPEG, assembled by hand from four one-component scans.

    libjpeg (OpenCV) encodes only grey or YCbCr, so each CMYK plane is encoded as a
    greyscale JPEG with the same (standard) tables, and the four entropy-coded scans are
    put behind one four-component SOF0 and an Adobe APP14 marker (transform 0: no colour
    transform, inverted CMYK as Photoshop writes it). Sequential JPEG allows one scan
    per component, so this is a valid baseline CMYK file.
    """
    bgr = flatten_on_skin(crop_png)
    h, w = bgr.shape[:2]
    # Adobe CMYK is stored inverted: with K stored as 255 (no black), C/M/Y stored as
    # R/G/B decode back to the original colours.
    planes = [bgr[:, :, 2], bgr[:, :, 1], bgr[:, :, 0], np.full((h, w), 255, np.uint8)]
    tables: bytes = b""
    scans: list[bytes] = []
    for index, plane in enumerate(planes):
        grey = encode(".jpg", np.ascontiguousarray(plane), cv2.IMWRITE_JPEG_QUALITY, 92)
        segments = jpeg_segments(grey)
        if index == 0:
            tables = b"".join(
                grey[pos : pos + 2 + length]
                for marker, pos, length in segments
                if marker in (0xDB, 0xC4)
            )
        _, sos_pos, sos_len = segments[-1]
        assert grey.endswith(b"\xff\xd9")
        entropy = grey[sos_pos + 2 + sos_len : -2]
        sos = bytes([1, index + 1, 0x00, 0, 63, 0])
        scans.append(b"\xff\xda" + struct.pack(">H", 2 + len(sos)) + sos + entropy)
    adobe = b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0)
    sof = struct.pack(">BHHB", 8, h, w, 4) + b"".join(bytes([i + 1, 0x11, 0]) for i in range(4))
    return (
        b"\xff\xd8"
        + b"\xff\xee" + struct.pack(">H", 2 + len(adobe)) + adobe
        + tables
        + b"\xff\xc0" + struct.pack(">H", 2 + len(sof)) + sof
        + b"".join(scans)
        + b"\xff\xd9"
    )


def png_16bit(crop_png: bytes) -> bytes:
    rgba = cv2.imdecode(np.frombuffer(crop_png, np.uint8), cv2.IMREAD_UNCHANGED)
    data = encode(".png", rgba.astype(np.uint16) * 257)
    assert data[24] == 16, "expected bit depth 16 in IHDR"
    return data


# --- hostile files: must be refused (4xx) -------------------------------------------


def tiny_png() -> bytes:
    return encode(".png", np.full((1, 1, 3), 128, np.uint8))


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG declaring width x height RGB pixels, with a few KB of real deflate data
    (the first rows), as a decompression bomb would start."""
    rows = b"".join(b"\x00" + b"\x00" * (width * 3) for _ in range(2))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + png_chunk(b"IEND", b"")
    )


def truncated_jpeg(jpeg: bytes) -> bytes:
    return jpeg[: len(jpeg) // 2]


def jpeg_with_corrupt_huffman_table(jpeg: bytes) -> bytes:
    """The first DHT claims more codes of each length than its bits allow."""
    marker, pos, length = next(s for s in jpeg_segments(jpeg) if s[0] == 0xC4)
    counts_at = pos + 5  # FF C4, length (2), Tc/Th (1), then 16 code counts
    corrupt = bytearray(jpeg)
    corrupt[counts_at : counts_at + 16] = bytes([255] * 16)
    return bytes(corrupt)


def png_with_bad_crc(png: bytes) -> bytes:
    """The CRC of the first IDAT chunk is flipped."""
    pos = png.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", png[pos : pos + 4])
    crc_at = pos + 8 + length
    corrupt = bytearray(png)
    corrupt[crc_at : crc_at + 4] = bytes(b ^ 0xFF for b in corrupt[crc_at : crc_at + 4])
    return bytes(corrupt)


def gif() -> bytes:
    """A well-formed 64x64 GIF89a: header, palette, one image whose LZW data codes one
    pixel (decoders fill the rest), trailer."""
    width = height = 64
    palette = bytes([0, 0, 0, 255, 0, 0])
    # LZW with min code size 2: clear code, then one pixel index 1, end of information.
    lzw = bytes([0x02, 0x02, 0x4C, 0x01, 0x00])
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + palette
        + b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + lzw
        + b"\x3b"
    )


def bmp(pixels: np.ndarray) -> bytes:
    return encode(".bmp", pixels)


def webp(pixels: np.ndarray) -> bytes:
    return encode(".webp", pixels, cv2.IMWRITE_WEBP_QUALITY, 80)


SVG_WITH_SCRIPT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">'
    b"<script>fetch('/api/results').then(r=>r.text()).then(alert)</script>"
    b'<rect width="640" height="480" fill="red"/></svg>'
)

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R/OpenAction<</S/JavaScript/JS(app.alert(1))>>"
    b">>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)

HTML = (
    b"<!DOCTYPE html><html><body><img src=x onerror=alert(document.cookie)>"
    b"<script>alert(1)</script></body></html>"
)


def zip_of(name: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, payload)
    return buf.getvalue()


def polyglot_jpeg_zip(jpeg: bytes) -> bytes:
    """A valid JPEG with a ZIP archive appended: both a JPEG viewer and unzip open it."""
    data = jpeg + zip_of("payload.html", HTML)
    assert zipfile.is_zipfile(io.BytesIO(data))
    return data


# --- multipart bodies by hand: devtools.multipart ----------------------------------


def many_parts(count: int, *, files: bool) -> Sequence[Part]:
    return [
        Part(f"f{i}".encode(), b"x", b"x.jpg" if files else None, b"image/jpeg")
        for i in range(count)
    ]
