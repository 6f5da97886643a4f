"""The image door: every hostile or odd input gives an RGB image or an ImageError with a human message.

All inputs are generated here with Pillow or raw bytes; there are no binary fixtures.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from similarity import images
from similarity.errors import ImageError, SimilarityError
from similarity.images import (
    MAX_PIXELS,
    MAX_SIDE,
    MAX_UPLOAD_BYTES,
    LoadedImage,
    decode_image,
    image_sha256,
    is_url,
    load_image,
    make_thumbnail,
    read_bytes,
    to_rgb,
)

RED = (220, 20, 30)
BLUE = (20, 40, 200)
WHITE = (255, 255, 255)


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def noisy(size: tuple[int, int] = (96, 64), seed: int = 1) -> Image.Image:
    """Incompressible pixels, so a truncated file really loses image data."""
    width, height = size
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(width * height * 3))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size in IHDR but carries no pixel data (a cheap decompression bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def pixel(img: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, ...]:
    return img.getpixel(xy)


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 0) -> None:
    assert all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True)), (actual, expected)


def assert_error(data: bytes, fragment: str, **kwargs: object) -> ImageError:
    with pytest.raises(ImageError) as info:
        decode_image(data, **kwargs)
    assert fragment in str(info.value)
    return info.value


# ----------------------------------------------------------------------------- good files


@pytest.mark.parametrize(
    ("fmt", "params", "tol"),
    [
        ("JPEG", {"quality": 95}, 6),
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("GIF", {}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
    ],
)
def test_roundtrip_formats(fmt: str, params: dict, tol: int) -> None:
    data = encode(Image.new("RGB", (64, 48), RED), fmt, **params)
    loaded = load_image(data)
    assert loaded.image.mode == "RGB"
    assert loaded.image.size == (64, 48)
    assert loaded.format == fmt
    assert loaded.nbytes == len(data)
    assert_close(pixel(loaded.image, (10, 10)), RED, tol)


def test_one_by_one_pixel() -> None:
    img = decode_image(encode(Image.new("RGB", (1, 1), BLUE), "PNG"))
    assert (img.mode, img.size, pixel(img)) == ("RGB", (1, 1), BLUE)


@pytest.mark.parametrize(("size", "expected"), [((20000, 2), (1024, 1)), ((2, 20000), (1, 1024))])
def test_extreme_aspect_ratio(size: tuple[int, int], expected: tuple[int, int]) -> None:
    img = decode_image(encode(Image.new("RGB", size, RED), "PNG"))
    assert (img.mode, img.size) == ("RGB", expected)
    assert_close(pixel(img), RED, 1)


def test_large_jpeg_decodes_through_draft_mode() -> None:
    data = encode(Image.new("RGB", (8000, 6000), BLUE), "JPEG", quality=80)
    img = decode_image(data)  # its speed is measured in benchmarks/query.py, not here
    # the 1/8-scale draft (1000x750) halved gives exactly 500x375; a full decode reduced by 17 gives 470x352
    assert img.size == (500, 375)
    assert_close(pixel(img, (250, 187)), BLUE, 6)


@pytest.mark.parametrize(
    ("size", "expected"), [((800, 800), (400, 400)), ((1500, 1000), (750, 500)), ((671, 2000), (344, 1024))]
)
def test_big_pictures_are_box_reduced_towards_the_draft_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    img = decode_image(encode(Image.new("RGB", size, RED), "PNG"))
    assert img.size == expected and min(img.size) >= images.DRAFT_SIZE
    assert_close(pixel(img), RED, 1)


def test_max_side_is_respected_for_png() -> None:
    img = decode_image(encode(Image.new("RGB", (3000, 1500), RED), "PNG"), max_side=300)
    assert img.size == (300, 150)


# ----------------------------------------------------------------------------- modes


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, BLUE, WHITE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert_close(pixel(decode_image(data)), RED, 0)


def test_animated_webp_uses_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in (BLUE, RED)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    img = decode_image(data)
    assert img.mode == "RGB"
    assert_close(pixel(img), BLUE, 2)


def test_pil_input_on_a_later_frame_gives_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, BLUE)]
    gif = Image.open(io.BytesIO(encode(frames[0], "GIF", save_all=True, append_images=frames[1:])))
    gif.seek(1)
    assert_close(pixel(load_image(gif).image), RED, 0)


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    img = decode_image(data)
    assert (img.mode, img.size) == ("RGB", (40, 30))
    assert_close(pixel(img, (20, 15)), (255, 0, 0), 8)


def test_sixteen_bit_png_is_scaled_to_eight_bits() -> None:
    data = encode(Image.new("I;16", (8, 8), 32896), "PNG")  # 32896 / 257 = 128
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    img = decode_image(data)
    assert (img.mode, pixel(img)) == ("RGB", (128, 128, 128))


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [("I", 40, 40), ("I", 65535, 255), ("I;16", 65535, 255), ("F", 0.5, 128), ("F", 100.0, 100)],
)
def test_high_depth_pil_images(mode: str, value: float, expected: int) -> None:
    img = load_image(Image.new(mode, (4, 4), value)).image
    assert (img.mode, pixel(img)) == ("RGB", (expected,) * 3)


def test_mode_i_with_negative_values_is_stretched() -> None:
    arr = np.array([[-1000, 1000]], dtype=np.int32)
    img = to_rgb(Image.fromarray(arr, "I"))
    assert (pixel(img, (0, 0)), pixel(img, (1, 0))) == ((0, 0, 0), (255, 255, 255))


def test_palette_png_transparency_becomes_white() -> None:
    pal = Image.new("P", (20, 10), 0)
    pal.putpalette([*RED, *BLUE] + [0] * 762)
    pal.paste(1, (10, 0, 20, 10))  # right half blue, left half index 0 (transparent)
    data = encode(pal, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    img = decode_image(data)
    assert (pixel(img, (2, 5)), pixel(img, (15, 5))) == (WHITE, BLUE)


def test_rgba_flattens_onto_white() -> None:
    rgba = Image.new("RGBA", (20, 10), (*RED, 0))
    rgba.paste((*BLUE, 255), (10, 0, 20, 10))
    img = decode_image(encode(rgba, "PNG"))
    assert (img.mode, pixel(img, (2, 5)), pixel(img, (15, 5))) == ("RGB", WHITE, BLUE)


def test_half_transparent_black_is_grey() -> None:
    img = decode_image(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 128)), "PNG"))
    assert_close(pixel(img), (127, 127, 127), 1)


def test_la_flattens_onto_white() -> None:
    la = Image.new("LA", (20, 10), (0, 0))
    la.paste((50, 255), (10, 0, 20, 10))
    img = decode_image(encode(la, "PNG"))
    assert (img.mode, pixel(img, (2, 5)), pixel(img, (15, 5))) == ("RGB", WHITE, (50, 50, 50))


def test_exif_orientation_is_applied() -> None:
    src = Image.new("RGB", (60, 30), RED)
    src.paste(BLUE, (30, 0, 60, 30))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img = decode_image(encode(src, "JPEG", quality=95, exif=exif))
    assert img.size == (30, 60)
    assert_close(pixel(img, (15, 5)), RED, 8)  # the left edge became the top
    assert_close(pixel(img, (15, 55)), BLUE, 8)
    assert 0x0112 not in img.getexif()  # nobody can apply it twice


def test_grayscale_and_bilevel_become_rgb() -> None:
    assert pixel(decode_image(encode(Image.new("L", (3, 3), 77), "PNG"))) == (77, 77, 77)
    assert pixel(decode_image(encode(Image.new("1", (3, 3), 1), "PNG"))) == WHITE


# ----------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(("fmt", "params"), [("JPEG", {"quality": 90}), ("PNG", {}), ("WEBP", {"quality": 90})])
def test_truncated_files_are_damaged(fmt: str, params: dict) -> None:
    data = encode(noisy(), fmt, **params)
    assert_error(data[: len(data) // 2], "damaged or incomplete")


def test_truncated_inside_header_is_damaged() -> None:
    assert_error(encode(noisy(), "PNG")[:20], "damaged or incomplete")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>', id="svg"),
        pytest.param(b"<!DOCTYPE html><html><body><img src=x></body></html>", id="html"),
        pytest.param(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n", id="pdf"),
        pytest.param(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2mp41", id="mp4"),
        pytest.param(b"GIF", id="three-bytes"),
    ],
)
def test_not_an_image(data: bytes) -> None:
    assert_error(data, "not a supported image (JPEG, PNG, WebP, GIF, BMP, TIFF)")


def test_random_bytes_named_jpg(tmp_path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(random.Random(7).randbytes(4096))
    with pytest.raises(ImageError, match="not a supported image"):
        load_image(path)


@pytest.mark.parametrize("brand", [b"heic", b"heix", b"mif1", b"msf1"])
def test_heic_is_refused_with_advice(brand: bytes) -> None:
    data = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    error = assert_error(data, "HEIC")
    assert "convert" in str(error)


def test_avif_is_refused_with_advice() -> None:
    assert_error(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + b"\x00" * 64, "AVIF images are not supported")


def test_zero_bytes() -> None:
    assert_error(b"", "empty")
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_zero_byte_file(tmp_path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(path)


def test_too_many_bytes_names_the_cap() -> None:
    with pytest.raises(ImageError, match=r"too large \(the limit is 10 MB\)"):
        load_image(b"\xff\xd8\xff" + bytes(MAX_UPLOAD_BYTES))


def test_file_over_the_cap(tmp_path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(encode(noisy((64, 64)), "PNG"))
    with pytest.raises(ImageError, match="the limit is 1 KB"):
        load_image(path, max_bytes=1024)
    with pytest.raises(ImageError, match="the limit is 2 KB"):
        read_bytes(path, max_bytes=2048)


def test_real_over_limit_png_is_refused_before_decoding() -> None:
    data = encode(Image.new("1", (8000, 8000)), "PNG")  # 64 MP, a few KB on disk
    assert len(data) < 100_000
    assert_error(data, "too many pixels (8000x8000; the limit is 60 megapixels)")


def test_small_pixel_cap() -> None:
    assert_error(encode(Image.new("RGB", (100, 100)), "PNG"), "the limit is 0.001 megapixels", max_pixels=1000)


@pytest.mark.parametrize(
    "size",
    [
        pytest.param((8000, 8000), id="over-our-cap"),
        pytest.param((10000, 10000), id="pillow-warning-zone"),
        pytest.param((100000, 100000), id="pillow-bomb-error"),
    ],
)
def test_declared_decompression_bomb(size: tuple[int, int]) -> None:
    assert_error(png_header_only(*size), "too many pixels")


def test_declared_size_without_data_is_damaged() -> None:
    assert_error(png_header_only(50, 50), "damaged or incomplete")


def test_pil_input_over_pixel_cap() -> None:
    with pytest.raises(ImageError, match="too many pixels"):
        load_image(Image.new("1", (200, 200)), max_pixels=1000)


def test_mutated_files_never_raise_anything_but_image_error() -> None:
    rng = random.Random(42)
    originals = [encode(noisy((48, 32), seed), fmt) for seed, fmt in enumerate(("JPEG", "PNG", "GIF", "WEBP", "BMP"))]
    for data in originals:
        for _ in range(30):
            mutant = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                mutant[rng.randrange(len(mutant))] = rng.randrange(256)
            try:
                img = decode_image(bytes(mutant))
            except ImageError:
                continue
            assert img.mode == "RGB"


def test_image_error_is_a_similarity_error() -> None:
    assert issubclass(ImageError, SimilarityError)


# ----------------------------------------------------------------------------- paths and sources


def test_load_image_from_path_bytes_and_pil(tmp_path) -> None:
    data = encode(Image.new("RGB", (30, 20), RED), "PNG")
    path = tmp_path / "red.png"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    from_path, from_str, from_bytes = load_image(path), load_image(str(path)), load_image(bytearray(data))
    for loaded in (from_path, from_str, from_bytes):
        assert isinstance(loaded, LoadedImage)
        assert (loaded.sha256, loaded.nbytes, loaded.format, loaded.image.size) == (
            expected,
            len(data),
            "PNG",
            (30, 20),
        )
    assert image_sha256(data) == expected


def test_load_image_from_pil_does_not_touch_the_input() -> None:
    src = Image.new("RGBA", (2000, 100), (*RED, 255))
    loaded = load_image(src)
    assert (src.mode, src.size) == ("RGBA", (2000, 100))
    assert (loaded.image.mode, loaded.image.size, loaded.nbytes) == ("RGB", (MAX_SIDE, 51), 0)
    assert loaded.image is not src
    raw = b"RGBA:2000x100:" + src.tobytes()
    assert loaded.sha256 == hashlib.sha256(raw).hexdigest()
    small = Image.new("RGB", (5, 5), BLUE)
    assert load_image(small).image is not small


def test_pil_sha256_depends_on_pixels() -> None:
    one, two = Image.new("RGB", (4, 4), RED), Image.new("RGB", (4, 4), BLUE)
    assert load_image(one).sha256 == load_image(one.copy()).sha256 != load_image(two).sha256


def test_url_strings_are_not_loaded_implicitly() -> None:
    with pytest.raises(ImageError, match="fetch_url"):
        load_image("  HTTPS://example.com/a.jpg")


def test_read_bytes_refusals(tmp_path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        read_bytes(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="folder"):
        read_bytes(tmp_path)
    with pytest.raises(ImageError, match="could not be read"):
        read_bytes("bad\x00name.jpg")


def test_read_bytes_refuses_special_files(tmp_path) -> None:
    fifo = tmp_path / "pipe.jpg"
    try:
        import os

        os.mkfifo(fifo)
    except (AttributeError, OSError):
        pytest.skip("no FIFOs on this platform")
    with pytest.raises(ImageError, match="not a regular file"):
        read_bytes(fifo)


def test_unsupported_source_type() -> None:
    with pytest.raises(TypeError):
        load_image(12345)  # type: ignore[arg-type]


def test_is_url() -> None:
    assert is_url("http://a.example/x.png") and is_url("  HTTPS://a.example/")
    assert not is_url("ftp://a.example/x.png") and not is_url("/tmp/http.png") and not is_url("")


# ----------------------------------------------------------------------------- thumbnails and limits


def test_make_thumbnail_is_small_jpeg() -> None:
    thumb = make_thumbnail(Image.new("RGB", (1000, 500), RED))
    assert thumb[:3] == b"\xff\xd8\xff" and len(thumb) < 8_000
    decoded = Image.open(io.BytesIO(thumb))
    assert (decoded.format, decoded.size) == ("JPEG", (384, 192))
    assert_close(pixel(decoded.convert("RGB"), (100, 100)), RED, 10)


def test_make_thumbnail_of_small_rgba_flattens() -> None:
    thumb = Image.open(io.BytesIO(make_thumbnail(Image.new("RGBA", (50, 40), (0, 0, 0, 0)), max_side=100)))
    assert thumb.size == (50, 40)
    assert_close(pixel(thumb.convert("RGB")), WHITE, 3)


def test_limits_are_as_documented() -> None:
    assert (images.MAX_UPLOAD_BYTES, images.MAX_LOCAL_BYTES) == (10 * 1024 * 1024, 50 * 1024 * 1024)
    assert (MAX_PIXELS, images.DRAFT_SIZE, MAX_SIDE) == (60_000_000, 336, 1024)
    assert MAX_PIXELS > 53_000_000  # the 53 MP test photo must pass
