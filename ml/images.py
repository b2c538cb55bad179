"""Bytes in, validated pixels out.

Everything here works on in-memory bytes and never writes to disk. Each upload's
container is walked once, by `read_header`: the PNG chunk list or the JPEG marker stream
from the signature to the end-of-image, hopping by segment lengths (no pixel is decoded).
The walk yields the dimensions, so a file that declares absurd dimensions is rejected
before any pixel is decoded, and it records where the container ends (`Container`), which
`check_trailer` (nothing hidden after the image) and `decode_image` (a JPEG whose image
data is incomplete) read instead of walking the bytes again.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

logger = logging.getLogger(__name__)

MIN_SIDE: int = 32
MAX_PIXELS: int = 50_000_000

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"

# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...). C4, C8 and
# CC are DHT, JPG and DAC and carry no frame header.
_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
# Markers that stand alone, without a length field.
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
# A marker inside JPEG entropy-coded data: 0xFF followed by anything but a stuffed zero,
# a restart marker or another fill byte. It matches the last 0xFF of a fill run, which
# the walk skips over anyway; a leading `\xff+` would find the same marker but run
# about ten times slower (no literal prefix for re to scan for), ~35 ms on a 3 MB photo.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Legitimate PNGs have tens to hundreds of chunks; a walk is bounded all the same.
_PNG_MAX_CHUNKS = 50_000
# What a file hidden behind an image starts with: archives (ZIP local/central/end
# records, RAR, 7z, gzip), PDF, ELF and PE executables, and markup or script a browser
# or server might run. Markup is matched case-insensitively.
_EMBEDDED_SIGNATURES = (
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"Rar!\x1a\x07",
    b"7z\xbc\xaf\x27\x1c",
    b"%PDF-",
    b"\x7fELF",
    b"This program cannot be run in DOS mode",
)
_EMBEDDED_MARKUP = (b"<script", b"<html", b"<svg", b"<?php", b"<?xml", b"<!doctype", b"<iframe")
_EMBEDDED_PREFIXES = (b"MZ", b"#!", b"\x1f\x8b")


class ImageError(Exception):
    """Base class of every image problem the user can be told about."""

    code: str = "invalid_image"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedImageType(ImageError):
    """The bytes are not a PNG or a JPEG (judged by magic bytes, not by name)."""

    code = "unsupported_media_type"


class UndecodableImage(ImageError):
    """Empty, truncated or corrupt data, or a header that makes no sense."""

    code = "invalid_image"


class ImageDimensionsError(ImageError):
    """Too small to analyse, or too many pixels to decode safely."""

    code = "invalid_dimensions"


@dataclass(frozen=True)
class Container:
    """Where the container walk of `read_header` ended.

    ``end`` is the offset just past the JPEG EOI marker or the PNG IEND chunk, or None
    when the walk stopped before it; ``problem`` then says why (truncated or corrupt),
    in the words `check_trailer` raises. ``scan`` is the offset of the first JPEG SOS
    marker (None for PNGs, or when no scan was reached).
    """

    end: int | None
    problem: str = ""
    scan: int | None = None


@dataclass(frozen=True)
class ImageHeader:
    format: Literal["png", "jpeg"]
    width: int
    height: int
    has_alpha: bool
    bit_depth: int
    # Filled in by read_header; a header built by hand has none, and the functions that
    # need it walk the bytes themselves. Not part of a header's identity.
    container: Container | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DecodedImage:
    """RGB pixels (H, W, 3) uint8 and, for PNGs with transparency, a 0/255 mask (H, W)."""

    rgb: np.ndarray
    mask: np.ndarray | None
    header: ImageHeader


def _sniff_other_format(data: bytes) -> str | None:
    head = data[:64]
    stripped = head.lstrip()
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP"
    if stripped.startswith((b"<svg", b"<?xml", b"<!DOCTYPE", b"<html")):
        return "SVG/XML"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    return None


def read_header(data: bytes) -> ImageHeader:
    """Identify PNG or JPEG by magic bytes and read size, alpha and bit depth.

    The container is walked to its end-of-image (PNG chunks by length, JPEG markers by
    segment length, scan data searched for the next marker); no pixel data is decoded.
    Errors before the dimensions are known are raised here; a container that is cut
    short after them is recorded in ``header.container`` and refused by `check_trailer`.
    """
    if not data:
        raise UndecodableImage("The file is empty.")
    if data.startswith(PNG_SIGNATURE):
        return _read_png_header(data)
    if data.startswith(JPEG_SIGNATURE):
        return _read_jpeg_header(data)
    if PNG_SIGNATURE.startswith(data) or JPEG_SIGNATURE.startswith(data):
        raise UndecodableImage("The file is truncated: it ends inside the image signature.")
    other = _sniff_other_format(data)
    if other is not None:
        raise UnsupportedImageType(f"{other} files are not supported: upload a PNG or JPEG image.")
    raise UnsupportedImageType("The file is not a PNG or JPEG image.")


def _read_png_header(data: bytes) -> ImageHeader:
    pos = len(PNG_SIGNATURE)
    if len(data) < pos + 8 + 13:
        raise UndecodableImage("The PNG file is truncated before its header (IHDR).")
    length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
    if ctype != b"IHDR" or length != 13:
        raise UndecodableImage("The PNG file has no valid IHDR header.")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", data[pos + 8 : pos + 18])
    if width == 0 or height == 0:
        raise UndecodableImage("The PNG header declares an image with no pixels.")
    valid_depths = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
    if color_type not in valid_depths or bit_depth not in valid_depths[color_type]:
        raise UndecodableImage("The PNG header has an invalid colour type or bit depth.")
    has_trns, container = _walk_png_chunks(data)
    has_alpha = color_type in (4, 6) or has_trns
    return ImageHeader("png", int(width), int(height), has_alpha, int(bit_depth), container)


def _walk_png_chunks(data: bytes) -> tuple[bool, Container]:
    """Walk the chunk list from IHDR to IEND, by chunk lengths.

    Returns whether a tRNS (transparency) chunk comes before the image data, and where
    the IEND chunk's CRC ends.
    """
    pos = len(PNG_SIGNATURE)
    n = len(data)
    has_trns = False
    looking_for_trns = True
    for _ in range(_PNG_MAX_CHUNKS):
        if pos + 8 > n:
            break
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if looking_for_trns and kind in (b"tRNS", b"IDAT", b"IEND"):
            has_trns = kind == b"tRNS"
            looking_for_trns = False
        if pos + 12 > n:
            break
        pos += 12 + length
        if kind == b"IEND":
            if pos > n:
                break
            return has_trns, Container(end=pos)
    else:
        return has_trns, Container(end=None, problem="The PNG file has too many chunks.")
    return has_trns, Container(end=None, problem="The PNG file is truncated: it has no IEND chunk.")


def _read_jpeg_header(data: bytes) -> ImageHeader:
    pos = 2
    n = len(data)
    while pos < n:
        if data[pos] != 0xFF:
            raise UndecodableImage("The JPEG file is corrupt: expected a marker.")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):
            raise UndecodableImage("The JPEG file has no frame header before its image data.")
        if pos + 2 > n:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise UndecodableImage("The JPEG file is corrupt: invalid segment length.")
        if marker in _SOF_MARKERS:
            if pos + 8 > n:
                break
            precision, height, width, components = struct.unpack(">BHHB", data[pos + 2 : pos + 8])
            if width == 0 or height == 0:
                raise UndecodableImage("The JPEG header declares an image with no pixels.")
            if components not in (1, 3, 4):
                raise UndecodableImage(
                    "The JPEG file has an unsupported number of colour channels."
                )
            container = _walk_jpeg_to_end(data, pos + length)
            return ImageHeader("jpeg", int(width), int(height), False, int(precision), container)
        pos += length
    raise UndecodableImage("The JPEG file is truncated before its frame header.")


def _walk_jpeg_to_end(data: bytes, pos: int) -> Container:
    """Carry the marker walk on from just after the frame header to the EOI marker.

    What goes wrong here is recorded, not raised: the header is sound, and whether a
    truncated file is refused is for `check_trailer` and `decode_image` to decide.
    """
    n = len(data)
    scan: int | None = None
    while pos < n:
        if data[pos] != 0xFF:
            return Container(None, "The JPEG file is corrupt: expected a marker.", scan)
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return Container(pos, "", scan)
        if marker in _STANDALONE_MARKERS:
            continue
        if marker == 0xDA and scan is None:
            scan = pos - 2
        if pos + 2 > n:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            return Container(None, "The JPEG file is corrupt: invalid segment length.", scan)
        pos += length
        if marker == 0xDA:
            # Entropy-coded data runs to the next real marker (another scan's tables,
            # another scan, or the end of image).
            match = _JPEG_MARKER.search(data, pos)
            if match is None:
                break
            pos = match.start()
    return Container(None, "The JPEG file is truncated: it has no end-of-image marker.", scan)


def _container(data: bytes, header: ImageHeader) -> Container:
    if header.container is not None:
        return header.container
    walked = read_header(data).container
    assert walked is not None  # read_header always records it
    return walked


def _jpeg_is_complete(data: bytes, container: Container) -> bool:
    """True when an end-of-image marker follows the main image's scan data.

    libjpeg pads a truncated file with grey and only warns, so OpenCV would return a
    half-grey picture; inside scan data 0xFF is always stuffed, so FFD9 is the real EOI.
    When the walk stopped early (a corrupt segment between scans), the last FFD9 decides.
    """
    scan = container.scan
    if scan is None:
        return False
    return container.end is not None or data.rfind(b"\xff\xd9") > scan


def check_trailer(data: bytes, header: ImageHeader) -> None:
    """Refuse a truncated container, or one with another file hidden after the image.

    A JPEG with a ZIP, a script or a PDF appended (a polyglot) decodes as a perfectly
    good photo, so the decoder alone would accept it: the bytes after the end-of-image
    are searched for the signatures of archives, documents, executables and markup.
    Other trailing bytes are allowed: real photos carry them (an Ultra HDR gain map, MPF
    previews, or the leftover tail of a file rewritten in place, as 22 of the 630
    CP-AnemiC crops do). A JPEG or PNG whose end-of-image is missing is truncated.
    """
    container = _container(data, header)
    if container.end is None:
        raise UndecodableImage(container.problem)
    trailer = data[container.end :]
    if not trailer:
        return
    lowered = trailer.lower()
    found = (
        any(sig in trailer for sig in _EMBEDDED_SIGNATURES)
        or any(tag in lowered for tag in _EMBEDDED_MARKUP)
        or trailer.lstrip(b"\x00\r\n\t ").startswith(_EMBEDDED_PREFIXES)
    )
    if found:
        logger.warning("upload refused: a file is hidden in %d bytes after the image", len(trailer))
        raise UnsupportedImageType(
            "The file carries another file after the image (for example an archive or a "
            "script). Send a plain PNG or JPEG photo."
        )


def check_dimensions(
    header: ImageHeader, *, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS
) -> None:
    """Reject images too small to analyse or with too many pixels to decode."""
    if min(header.width, header.height) < min_side:
        raise ImageDimensionsError(
            f"The image is {header.width}x{header.height} pixels; "
            f"each side must be at least {min_side} pixels."
        )
    if header.width * header.height > max_pixels:
        raise ImageDimensionsError(
            f"The image is {header.width}x{header.height} pixels; "
            f"at most {max_pixels:,} pixels are accepted."
        )


def _jpeg_flags(header: ImageHeader, target: int) -> int:
    """Largest libjpeg DCT reduction that keeps the short side at or above ``target``."""
    short = min(header.width, header.height)
    for factor, flag in (
        (8, cv2.IMREAD_REDUCED_COLOR_8),
        (4, cv2.IMREAD_REDUCED_COLOR_4),
        (2, cv2.IMREAD_REDUCED_COLOR_2),
    ):
        if short // factor >= target:
            return flag
    return cv2.IMREAD_COLOR


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        # Rounded division by 257 maps 0..65535 exactly onto 0..255.
        return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise UndecodableImage(f"Unsupported pixel type {pixels.dtype}.")


def decode_image(
    data: bytes, header: ImageHeader | None = None, *, target: int = 224
) -> DecodedImage:
    """Decode PNG/JPEG bytes to RGB uint8 plus an optional mask from PNG alpha.

    The header is read and the dimensions are checked before the full decode. JPEGs are
    decoded with libjpeg's DCT scaling (short side stays >= ``target``) and their EXIF
    orientation applied. For PNGs, 16-bit is reduced to 8-bit, greyscale and palette are
    expanded to RGB, and alpha becomes the mask (alpha >= 128 is inside); a PNG whose
    alpha is opaque everywhere has no mask.
    """
    if header is None:
        header = read_header(data)
    check_dimensions(header)
    if header.format == "jpeg" and not _jpeg_is_complete(data, _container(data, header)):
        raise UndecodableImage("The JPEG file is truncated: its image data is incomplete.")
    buf = np.frombuffer(data, dtype=np.uint8)
    flags = _jpeg_flags(header, target) if header.format == "jpeg" else cv2.IMREAD_UNCHANGED
    try:
        pixels = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        raise UndecodableImage("The image data is corrupt and cannot be decoded.") from exc
    if pixels is None or pixels.size == 0:
        raise UndecodableImage("The image data is corrupt or truncated and cannot be decoded.")
    pixels = _to_uint8(pixels)

    mask: np.ndarray | None = None
    if pixels.ndim == 2:
        rgb = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    elif pixels.shape[2] == 1:
        rgb = cv2.cvtColor(pixels[:, :, 0], cv2.COLOR_GRAY2RGB)
    elif pixels.shape[2] == 2:  # grey + alpha, if a build returns it unexpanded
        rgb = cv2.cvtColor(pixels[:, :, 0], cv2.COLOR_GRAY2RGB)
        mask = _alpha_to_mask(pixels[:, :, 1])
    elif pixels.shape[2] == 3:
        rgb = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.shape[2] == 4:
        rgb = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB)
        mask = _alpha_to_mask(pixels[:, :, 3])
    else:
        raise UndecodableImage("The image has an unsupported number of channels.")
    if mask is not None and not mask.any():
        raise UndecodableImage("The image is fully transparent: there is nothing to analyse.")
    return DecodedImage(rgb=np.ascontiguousarray(rgb), mask=mask, header=header)


def _alpha_to_mask(alpha: np.ndarray) -> np.ndarray | None:
    if bool((alpha == 255).all()):
        return None
    return np.where(alpha >= 128, 255, 0).astype(np.uint8)
