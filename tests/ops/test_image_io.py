"""The one decode path, on a corpus of bad and awkward files built here."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ops.image.io import ImageLoadError, load_image, read_header


def _png_header_only(path, w, h):
    """A PNG whose IHDR claims w x h, with a tiny (invalid) IDAT: a decompression-bomb header."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                     chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    photo.save(d / "ok.jpg", quality=90)
    data = (d / "ok.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (d / "zero.jpg").write_bytes(b"")
    (d / "text.png").write_text("this is not an image\n")
    _png_header_only(d / "bomb.png", 20000, 20000)
    Image.new("CMYK", (32, 16), (0, 255, 255, 0)).save(d / "cmyk.jpg")      # pure red in CMYK
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(d / "deep16.png")
    pal = Image.new("P", (10, 10), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((0, 0), 1)
    pal.save(d / "palette_alpha.png", transparency=0)
    ex = Image.new("RGB", (40, 20), (0, 128, 0))
    exif = ex.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    ex.save(d / "rotated.jpg", exif=exif.tobytes())
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    Image.new("RGB", (1, 1), (9, 9, 9)).save(d / "one.png")
    Image.new("L", (10000, 10), 128).save(d / "wide.png")
    Image.new("LA", (4, 4), (200, 0)).save(d / "la.png")
    return d


def test_truncated_jpeg_header_reads_but_decode_fails(corpus):
    assert read_header(str(corpus / "truncated.jpg")).width == 96
    with pytest.raises(ImageLoadError, match="truncated.jpg: cannot decode"):
        load_image(str(corpus / "truncated.jpg"))


@pytest.mark.parametrize("name,message", [
    ("zero.jpg", "empty file"),
    ("text.png", "not an image Pillow can identify"),
    ("missing.jpg", "file not found"),
    ("bomb.png", "exceeds the limit"),
])
def test_unreadable_files_raise_specific_errors(corpus, name, message):
    for fn in (read_header, load_image):
        with pytest.raises(ImageLoadError, match=message) as exc:
            fn(str(corpus / name))
        assert name in str(exc.value)


def test_bomb_limit_can_be_raised(corpus):
    h = read_header(str(corpus / "bomb.png"), max_pixels=None)
    assert (h.width, h.height) == (20000, 20000)


def test_cmyk_becomes_rgb(corpus):
    img = load_image(str(corpus / "cmyk.jpg"))
    assert img.mode == "RGB"
    r, g, b = np.asarray(img).reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_16bit_png_scaled_to_8bit(corpus):
    arr = np.asarray(load_image(str(corpus / "deep16.png")))
    assert arr.dtype == np.uint8 and arr.shape == (8, 8, 3) and arr.min() == 255


def test_palette_with_transparency(corpus):
    rgba = load_image(str(corpus / "palette_alpha.png"), mode=None)
    assert rgba.mode == "RGBA"
    a = np.asarray(rgba)
    assert a[0, 0, 3] == 255 and tuple(a[0, 0, :3]) == (0, 0, 255)
    assert a[5, 5, 3] == 0
    rgb = np.asarray(load_image(str(corpus / "palette_alpha.png")))
    assert tuple(rgb[5, 5]) == (255, 255, 255)  # transparent composited on white


def test_la_keeps_or_composites_alpha(corpus):
    assert load_image(str(corpus / "la.png"), mode=None).mode == "RGBA"
    assert tuple(np.asarray(load_image(str(corpus / "la.png")))[0, 0]) == (255, 255, 255)


def test_exif_rotation_applied(corpus):
    h = read_header(str(corpus / "rotated.jpg"))
    assert (h.raw_width, h.raw_height, h.orientation) == (40, 20, 6)
    assert (h.width, h.height) == (20, 40)
    assert load_image(str(corpus / "rotated.jpg")).size == (20, 40)


def test_animated_gif_first_frame(corpus):
    assert read_header(str(corpus / "anim.gif")).frames == 3
    px = np.asarray(load_image(str(corpus / "anim.gif")))[8, 8]
    assert px[0] > 200 and px[1] < 60


def test_tiny_and_extreme_aspect(corpus):
    assert load_image(str(corpus / "one.png")).size == (1, 1)
    h = read_header(str(corpus / "wide.png"))
    assert (h.width, h.height) == (10000, 10)
    assert load_image(str(corpus / "wide.png")).mode == "RGB"


def test_header_reads_decode_no_pixels(tmp_path, monkeypatch):
    """read_header on PNG / JPEG / WebP must never run a pixel decoder."""
    from PIL import ImageFile
    for fmt in ("png", "jpeg", "webp"):
        ex = Image.new("RGB", (64, 32), (1, 2, 3))
        exif = ex.getexif()
        exif[0x0112] = 8
        ex.save(tmp_path / f"x.{fmt}", exif=exif.tobytes())
    calls = []
    monkeypatch.setattr(ImageFile.ImageFile, "load",
                        lambda self, *a, **k: calls.append(self.format))
    for fmt in ("png", "jpeg", "webp"):
        h = read_header(str(tmp_path / f"x.{fmt}"))
        assert (h.width, h.height, h.orientation) == (32, 64, 8), fmt
    assert calls == []
