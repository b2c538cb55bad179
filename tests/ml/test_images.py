from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from ml.images import (
    MAX_PIXELS,
    DecodedImage,
    ImageDimensionsError,
    ImageError,
    ImageHeader,
    UndecodableImage,
    UnsupportedImageType,
    check_dimensions,
    decode_image,
    read_header,
)
from tests.ml.imaging import (
    CMYK_JPEG,
    encode,
    half_red_bgr,
    make_png,
    png_chunk,
    with_exif_orientation,
)


def rgba_png(height: int = 60, width: int = 80, alpha: int | None = None) -> bytes:
    img = np.zeros((height, width, 4), np.uint8)
    img[..., 2] = 200  # red (BGRA)
    img[..., 3] = 255
    if alpha is None:
        img[: height // 2, :, 3] = 0  # top half transparent
    else:
        img[..., 3] = alpha
    return encode(".png", img)


def test_it_reads_a_png_header_with_alpha() -> None:
    assert read_header(rgba_png()) == ImageHeader("png", 80, 60, True, 8)


def test_it_turns_png_alpha_into_a_mask() -> None:
    image = decode_image(rgba_png())
    assert image.rgb.shape == (60, 80, 3)
    assert image.rgb.dtype == np.uint8
    assert tuple(image.rgb[50, 10]) == (200, 0, 0)  # RGB order
    assert image.mask is not None
    assert image.mask[:30].max() == 0
    assert image.mask[30:].min() == 255


def test_it_treats_a_fully_opaque_alpha_as_no_mask() -> None:
    image = decode_image(rgba_png(alpha=255))
    assert image.header.has_alpha
    assert image.mask is None


def test_it_rejects_a_fully_transparent_png() -> None:
    with pytest.raises(UndecodableImage):
        decode_image(rgba_png(alpha=0))


def test_it_expands_a_greyscale_png_to_rgb() -> None:
    grey = np.full((40, 50), 77, np.uint8)
    image = decode_image(encode(".png", grey))
    assert image.header.has_alpha is False
    assert image.rgb.shape == (40, 50, 3)
    assert (image.rgb == 77).all()
    assert image.mask is None


def test_it_reduces_a_16_bit_png_to_8_bit() -> None:
    img = np.zeros((40, 40, 3), np.uint16)
    img[..., 2] = 65535
    img[..., 1] = 257 * 100
    data = encode(".png", img)
    assert read_header(data).bit_depth == 16
    image = decode_image(data)
    assert image.rgb.dtype == np.uint8
    assert tuple(image.rgb[0, 0]) == (255, 100, 0)


def test_it_expands_a_palette_png_with_transparency() -> None:
    palette = bytes([255, 0, 0, 0, 0, 255])  # index 0 red, index 1 blue
    rows = [bytes([0] * 20 + [1] * 20) for _ in range(40)]
    data = make_png(
        40, 40, color_type=3, rows=rows, extra=((b"PLTE", palette), (b"tRNS", bytes([255, 0])))
    )
    header = read_header(data)
    assert header.has_alpha  # from the tRNS chunk
    image = decode_image(data)
    assert tuple(image.rgb[5, 5]) == (255, 0, 0)
    assert image.mask is not None
    assert image.mask[5, 5] == 255 and image.mask[5, 30] == 0


def test_it_expands_a_palette_png_without_transparency() -> None:
    rows = [bytes([0] * 40) for _ in range(40)]
    data = make_png(40, 40, color_type=3, rows=rows, extra=((b"PLTE", bytes([10, 20, 30])),))
    image = decode_image(data)
    assert image.mask is None
    assert tuple(image.rgb[0, 0]) == (10, 20, 30)


def test_it_reads_grey_and_alpha_png() -> None:
    rows = [bytes([90, 255] * 40) if y >= 20 else bytes([90, 0] * 40) for y in range(40)]
    image = decode_image(make_png(40, 40, color_type=4, rows=rows))
    assert tuple(image.rgb[30, 0]) == (90, 90, 90)
    assert image.mask is not None
    assert image.mask[:20].max() == 0 and image.mask[20:].min() == 255


def test_it_reads_a_jpeg_header() -> None:
    data = encode(".jpg", half_red_bgr(120, 200))
    assert read_header(data) == ImageHeader("jpeg", 200, 120, False, 8)


@pytest.mark.parametrize("size", [(120, 200), (1000, 1600)])  # plain and DCT-reduced decode
def test_it_applies_the_exif_orientation_of_a_jpeg(size: tuple[int, int]) -> None:
    height, width = size
    data = with_exif_orientation(encode(".jpg", half_red_bgr(height, width)), 6)
    header = read_header(data)
    assert (header.width, header.height) == (width, height)  # as stored
    image = decode_image(data)
    # Orientation 6: rotate 90 degrees clockwise, so the red left half ends up on top.
    assert image.rgb.shape[0] > image.rgb.shape[1]
    h = image.rgb.shape[0]
    assert image.rgb[h // 4, image.rgb.shape[1] // 2, 0] > 200  # red on top
    assert image.rgb[3 * h // 4, image.rgb.shape[1] // 2, 2] > 200  # blue below


def test_it_uses_dct_scaling_for_large_jpegs() -> None:
    data = encode(".jpg", half_red_bgr(1000, 2400))
    image = decode_image(data)
    assert image.rgb.shape == (250, 600, 3)  # reduced by 4: short side stays >= 224
    assert image.header.width == 2400


def test_it_decodes_a_greyscale_jpeg() -> None:
    data = encode(".jpg", np.full((64, 64), 128, np.uint8))
    image = decode_image(data)
    assert image.rgb.shape == (64, 64, 3)
    assert abs(int(image.rgb[10, 10, 0]) - 128) <= 2


def test_it_decodes_a_cmyk_jpeg() -> None:
    assert read_header(CMYK_JPEG).width == 48
    image = decode_image(CMYK_JPEG)
    assert image.rgb.shape == (40, 48, 3)
    assert image.rgb[20, 5].min() > 240  # white half
    red, green, _ = (int(v) for v in image.rgb[20, 40])
    assert red > 200 and green < 100  # CMYK (0, 200, 150, 30) is a red


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        b"BM" + b"\x00" * 60,
        b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 30,
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
        b"<?xml version='1.0'?><svg/>",
        b"%PDF-1.7\n%\xe2\xe3",
        b"PK\x03\x04" + b"\x00" * 30,
        b"hello, this is text",
    ],
)
def test_it_rejects_files_that_are_not_png_or_jpeg(data: bytes) -> None:
    with pytest.raises(UnsupportedImageType) as info:
        read_header(data)
    assert info.value.code == "unsupported_media_type"
    with pytest.raises(UnsupportedImageType):
        decode_image(data)


def test_it_rejects_an_empty_file() -> None:
    with pytest.raises(UndecodableImage) as info:
        read_header(b"")
    assert info.value.code == "invalid_image"
    assert str(info.value)


def test_it_rejects_a_truncated_png() -> None:
    data = encode(".png", np.random.default_rng(0).integers(0, 255, (80, 80, 3), np.uint8))
    with pytest.raises(UndecodableImage):
        decode_image(data[: len(data) // 2])


def test_it_rejects_a_png_cut_inside_its_header() -> None:
    with pytest.raises(UndecodableImage):
        read_header(rgba_png()[:20])
    with pytest.raises(UndecodableImage):
        read_header(b"\x89PN")


def test_it_rejects_a_truncated_jpeg() -> None:
    data = encode(".jpg", np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8))
    with pytest.raises(UndecodableImage):
        decode_image(data[: len(data) // 2])


def test_it_rejects_a_jpeg_without_frame_header() -> None:
    with pytest.raises(UndecodableImage):
        read_header(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")


def test_it_rejects_corrupt_png_data() -> None:
    data = make_png(40, 40, color_type=2, extra=((b"IDAT", b"not zlib data at all"),))
    with pytest.raises(UndecodableImage):
        decode_image(data)


def test_it_rejects_a_png_with_an_invalid_header() -> None:
    with pytest.raises(UndecodableImage):
        read_header(make_png(40, 40, color_type=5))
    with pytest.raises(UndecodableImage):
        read_header(make_png(0, 40, color_type=2))


def test_it_rejects_a_1x1_image() -> None:
    data = encode(".png", np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(ImageDimensionsError) as info:
        decode_image(data)
    assert info.value.code == "invalid_dimensions"


def test_it_rejects_a_tiny_png_declaring_50000x50000_before_decoding() -> None:
    # A few hundred bytes that would decompress to 7.5 GB of pixels.
    rows_zlib = zlib.compress(b"\x00" * 1000)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0))
        + png_chunk(b"IDAT", rows_zlib)
        + png_chunk(b"IEND", b"")
    )
    assert len(data) < 200
    header = read_header(data)
    assert header.width * header.height > MAX_PIXELS
    with pytest.raises(ImageDimensionsError):
        check_dimensions(header)
    with pytest.raises(ImageDimensionsError):
        decode_image(data)


def test_it_accepts_custom_dimension_limits() -> None:
    header = ImageHeader("png", 100, 100, False, 8)
    check_dimensions(header)
    with pytest.raises(ImageDimensionsError):
        check_dimensions(header, min_side=101)
    with pytest.raises(ImageDimensionsError):
        check_dimensions(header, max_pixels=9_999)


def test_every_image_error_has_a_code_and_a_message() -> None:
    for cls in (UnsupportedImageType, UndecodableImage, ImageDimensionsError):
        err = cls("message for the user")
        assert isinstance(err, ImageError)
        assert err.code in {"unsupported_media_type", "invalid_image", "invalid_dimensions"}
        assert str(err) == "message for the user"


def test_decoded_images_are_frozen() -> None:
    image = decode_image(rgba_png())
    assert isinstance(image, DecodedImage)
    with pytest.raises(AttributeError):
        image.mask = None  # type: ignore[misc]


def test_it_never_returns_bgr() -> None:
    img = np.zeros((40, 40, 3), np.uint8)
    img[...] = (255, 0, 0)  # blue in BGR
    assert tuple(decode_image(encode(".png", img)).rgb[0, 0]) == (0, 0, 255)
    assert cv2.IMREAD_COLOR != cv2.IMREAD_UNCHANGED
