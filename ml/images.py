"""Bytes in, validated pixels out.

Everything here works on in-memory bytes and never writes to disk. The header is read
from the magic bytes and the PNG IHDR chunk / JPEG SOFn marker only, so a file that
declares absurd dimensions is rejected before any pixel is decoded.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
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
class ImageHeader:
    format: Literal["png", "jpeg"]
    width: int
    height: int
    has_alpha: bool
    bit_depth: int


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

    Only the header is parsed (PNG IHDR and the chunks before IDAT, JPEG markers up to
    the first SOFn); no pixel data is decoded.
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
    has_alpha = color_type in (4, 6)
    if not has_alpha:
        has_alpha = _png_has_trns(data, pos + 8 + 13 + 4)
    return ImageHeader("png", int(width), int(height), has_alpha, int(bit_depth))


def _png_has_trns(data: bytes, pos: int) -> bool:
    """Walk the chunks after IHDR up to IDAT looking for a tRNS (transparency) chunk."""
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        if ctype == b"tRNS":
            return True
        if ctype in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


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
            return ImageHeader("jpeg", int(width), int(height), False, int(precision))
        pos += length
    raise UndecodableImage("The JPEG file is truncated before its frame header.")


def _jpeg_scan_offset(data: bytes) -> int | None:
    """Offset of the first SOS marker of the main image (segments walked by length)."""
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            return None
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker == 0xDA:
            return pos - 2
        if pos + 2 > n:
            return None
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        pos += length
    return None


def _jpeg_is_complete(data: bytes) -> bool:
    """True when an end-of-image marker follows the main image's scan data.

    libjpeg pads a truncated file with grey and only warns, so OpenCV would return a
    half-grey picture; inside scan data 0xFF is always stuffed, so FFD9 is the real EOI.
    """
    sos = _jpeg_scan_offset(data)
    return sos is not None and data.rfind(b"\xff\xd9") > sos


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
    if header.format == "jpeg" and not _jpeg_is_complete(data):
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
