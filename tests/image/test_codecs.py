"""Codecs: round trips, parameters that change the bitstream, validation errors."""
import io

import numpy as np
import pytest
from PIL import Image

from ops.image import codecs as C

MAGIC = {
    "jpeg": lambda d: d[:3] == b"\xff\xd8\xff",
    "webp": lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP",
    "avif": lambda d: d[4:12] in (b"ftypavif", b"ftypavis"),
    "jxl": lambda d: d[:2] == b"\xff\x0a" or d[:12] == b"\0\0\0\x0cJXL \r\n\x87\n",
}


@pytest.fixture(scope="module")
def photo():
    """A 160x120 natural-looking image: smooth gradients, edges, texture and noise."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:120, 0:160].astype(np.float64)
    img = np.stack([x * 1.4 + 20 * np.sin(y / 7), y * 2.0, 128 + 90 * np.sin((x + y) / 11)], -1)
    img[30:70, 40:90] = (220, 40, 60)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse) if mse else np.inf


@pytest.mark.parametrize("fmt,params", [
    ("jpeg", {"quality": 90}), ("webp", {"quality": 90}), ("avif", {"quality": 80, "speed": 8}),
    ("jxl", {"distance": 1.0, "effort": 3}), ("jxl", {"quality": 90, "effort": 3})])
def test_round_trip(photo, fmt, params):
    enc = C.encode(photo, fmt, **params)
    assert MAGIC[fmt](enc.data), enc.data[:16]
    assert enc.decoded.shape == photo.shape and enc.decoded.dtype == np.uint8
    assert 0 < enc.nbytes < photo.nbytes / 2           # lossy: clearly compressed
    assert 30 < _psnr(photo, enc.decoded) < 60         # close, not identical
    assert enc.bpp == pytest.approx(8 * len(enc.data) / (160 * 120))
    assert enc.encode_seconds > 0 and enc.decode_seconds > 0
    # the decoded image is what a third-party decoder sees
    if fmt != "jxl":
        ref = np.asarray(Image.open(io.BytesIO(enc.data)).convert("RGB"))
        np.testing.assert_array_equal(ref, enc.decoded)
    assert C.decode(enc.data, fmt).tobytes() == enc.decoded.tobytes()


@pytest.mark.parametrize("fmt,params", [("webp", {"lossless": True}), ("jxl", {"lossless": True}),
                                        ("jxl", {"quality": 100}), ("jxl", {"distance": 0})])
def test_lossless_is_exact(photo, fmt, params):
    # JPEG XL quality 100 / distance 0 are lossless, as in cjxl
    enc = C.encode(photo, fmt, effort=3, **params) if fmt == "jxl" else \
        C.encode(photo, fmt, **params)
    np.testing.assert_array_equal(enc.decoded, photo)


def test_webp_is_lossy_by_default(photo):
    # imagecodecs.webp_encode is lossless unless told otherwise; our default must be lossy
    enc = C.encode(photo, "webp")
    assert enc.params["lossless"] is False
    assert not np.array_equal(enc.decoded, photo)


def test_jpeg_options_change_the_bitstream(photo):
    base = C.encode(photo, "jpeg", quality=85)
    full = C.encode(photo, "jpeg", quality=85, subsampling="4:4:4")
    prog = C.encode(photo, "jpeg", quality=85, progressive=True)
    opt = C.encode(photo, "jpeg", quality=85, optimize=True)
    assert full.nbytes > base.nbytes                  # full-resolution chroma costs bytes
    assert _psnr(photo, full.decoded) > _psnr(photo, base.decoded)
    assert b"\xff\xc2" in prog.data and b"\xff\xc2" not in base.data   # SOF2 = progressive
    assert opt.nbytes < base.nbytes
    np.testing.assert_array_equal(opt.decoded, base.decoded)  # Huffman tables only


def test_avif_and_jxl_settings(photo):
    a420 = C.encode(photo, "avif", quality=60, speed=9)
    a444 = C.encode(photo, "avif", quality=60, speed=9, subsampling="4:4:4")
    assert a420.data != a444.data
    small = C.encode(photo, "jxl", distance=4.0, effort=3)
    big = C.encode(photo, "jxl", distance=0.5, effort=3)
    assert small.nbytes < big.nbytes
    assert _psnr(photo, big.decoded) > _psnr(photo, small.decoded)
    assert C.encode(photo, "jxl", effort=3).params["distance"] == 1.0    # default distance


def test_pil_and_grey_inputs(photo):
    pil = C.encode(Image.fromarray(photo), "jpeg", quality=80)
    arr = C.encode(photo, "jpeg", quality=80)
    assert pil.data == arr.data
    grey = C.encode(Image.fromarray(photo[:, :, 0]), "jpg", quality=80)
    assert grey.decoded.shape == photo.shape and grey.format == "jpeg"


@pytest.mark.parametrize("call,message", [
    (lambda im: C.encode(im, "gif"), "unknown format 'gif'"),
    (lambda im: C.encode(im, "jpeg", qualty=50), "unknown parameter(s) ['qualty']"),
    (lambda im: C.encode(im, "jpeg", quality=101), "'quality' must lie in [1, 100]"),
    (lambda im: C.encode(im, "jpeg", quality=50.5), "'quality' must be an integer"),
    (lambda im: C.encode(im, "avif", subsampling="420"), "'subsampling' must be one of"),
    (lambda im: C.encode(im, "webp", lossless="yes"), "'lossless' must be true or false"),
    (lambda im: C.encode(im, "jxl", quality=90, distance=1), "'quality' or 'distance', not both"),
    (lambda im: C.encode(im.astype(np.float32), "jpeg"), "expected a uint8 array"),
    (lambda im: C.encode(im[:, :, :2], "jpeg"), "expected an HxWx3 RGB array"),
    (lambda im: C.encode(Image.fromarray(im).convert("RGBA"), "webp"), "alpha channel"),
])
def test_bad_input_errors(photo, call, message):
    with pytest.raises(C.CodecError) as err:
        call(photo)
    assert message in str(err.value)


def test_decode_garbage_is_a_clear_error():
    with pytest.raises(C.CodecError, match="avif: cannot decode 9 bytes"):
        C.decode(b"not avif!", "avif")


def test_versions_name_every_library():
    v = C.codec_versions()
    for key in ("pillow", "libjpeg-turbo", "libwebp", "libavif", "aom", "dav1d", "libjxl"):
        assert v.get(key), key


def test_bits_per_pixel():
    assert C.bits_per_pixel(1000, 100, 80) == 1.0
    with pytest.raises(ValueError):
        C.bits_per_pixel(10, 0, 5)
