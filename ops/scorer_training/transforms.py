"""Lossy and lossless image edits used to build generation-loss training pairs.

Every edit takes an ``Encoded`` copy (file bytes + format) and returns a new one: pixels are
decoded, changed, and encoded again, because the scorer sees the file (size, format, JPEG
quantisation tables), not just pixels.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

R = Image.Resampling
PIL_FILTERS = {"box": R.BOX, "bilinear": R.BILINEAR, "bicubic": R.BICUBIC,
               "lanczos": R.LANCZOS, "hamming": R.HAMMING, "nearest": R.NEAREST}
RESIZE_FILTERS = tuple(PIL_FILTERS) + ("nearest_offset", "area", "bilinear_noaa")
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


@dataclass
class Encoded:
    """One copy of an image as a file: its bytes and format, pixels decoded on demand."""

    data: bytes
    format: str
    _pixels: np.ndarray | None = field(default=None, repr=False, compare=False)
    # a chain's original keeps the pristine pixels it was saved from (before its own PNG /
    # camera-JPEG encode): the reference every copy's damage is measured against
    pristine: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            with Image.open(io.BytesIO(self.data)) as im:
                self._pixels = np.asarray(im.convert("RGB"))
        return self._pixels

    def drop_pixels(self) -> None:
        """Forget the decoded pixels (decoded again on demand): long chains stay small."""
        self._pixels = None

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.pixels.shape[:2]
        return w, h


# ---------------------------------------------------------------- encoders
def encode(img: Image.Image, fmt: str, **opts) -> Encoded:
    """Save ``img`` in ``fmt`` with Pillow options and keep the bytes."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **opts)
    return Encoded(buf.getvalue(), fmt)


def to_png(px: np.ndarray, compress_level: int = 6) -> Encoded:
    return encode(Image.fromarray(px), "PNG", compress_level=compress_level)


def to_jpeg(px: np.ndarray, quality: int, subsampling: str = "4:2:0",
            optimize: bool = False, progressive: bool = False) -> Encoded:
    img = Image.fromarray(px)
    opts = dict(quality=int(quality), subsampling=SUBSAMPLING[subsampling],
                optimize=optimize, progressive=progressive)
    if not (optimize or progressive):
        return encode(img, "JPEG", **opts)
    # Pillow sizes the one-shot buffer of optimised/progressive JPEGs at ~1 byte per pixel,
    # too small for noisy (e.g. dithered) pictures at high quality: give it room.
    from PIL import ImageFile
    saved = ImageFile.MAXBLOCK
    ImageFile.MAXBLOCK = max(saved, 4 * px.shape[0] * px.shape[1] + 65536)
    try:
        return encode(img, "JPEG", **opts)
    finally:
        ImageFile.MAXBLOCK = saved


def to_webp(px: np.ndarray, quality: int, lossless: bool = False, method: int = 2) -> Encoded:
    return encode(Image.fromarray(px), "WEBP", quality=int(quality), lossless=lossless,
                  method=method)


def to_gif(px: np.ndarray, colors: int = 256, dither: bool = True) -> Encoded:
    return encode(quantize_image(px, colors, dither), "GIF")


def reencode_like(src: Encoded, px: np.ndarray, rng: np.random.Generator) -> Encoded:
    """Save new pixels in the source's format, as an editor keeping the format would."""
    if src.format == "JPEG":
        return to_jpeg(px, int(rng.integers(75, 96)), str(rng.choice(list(SUBSAMPLING))))
    if src.format == "WEBP":
        return to_webp(px, int(rng.integers(70, 95)))
    if src.format == "GIF":
        return to_gif(px, 256, bool(rng.integers(2)))
    return to_png(px)


# ---------------------------------------------------------------- pixel edits
def quantize_image(px: np.ndarray, colors: int, dither: bool) -> Image.Image:
    """Reduce to a palette of ``colors`` (median cut), with or without Floyd-Steinberg."""
    img = Image.fromarray(px)
    d = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    return img.quantize(colors=int(colors), method=Image.Quantize.MEDIANCUT, dither=d)


def quantize(px: np.ndarray, colors: int, dither: bool) -> np.ndarray:
    return np.asarray(quantize_image(px, colors, dither).convert("RGB"))


def crop(px: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop to (left, top, right, bottom)."""
    l, t, r, b = box
    if not (0 <= l < r <= px.shape[1] and 0 <= t < b <= px.shape[0]):
        raise ValueError(f"crop box {box} outside image {px.shape[1]}x{px.shape[0]}")
    return np.ascontiguousarray(px[t:b, l:r])


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = x / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    y = np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _resize_float(ch: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    return np.asarray(Image.fromarray(ch.astype(np.float32), "F").resize(size, resample))


def _gather(px: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    return px[np.clip(ys, 0, px.shape[0] - 1)[:, None], np.clip(xs, 0, px.shape[1] - 1)[None]]


def _nearest_offset(px: np.ndarray, size, offset: tuple[float, float]) -> np.ndarray:
    """Point sampling at src = floor((dst + offset) * scale): the repeated/missing rows of
    naive resizers, with the sampling phase as a parameter."""
    w, h = size
    sy, sx = px.shape[0] / h, px.shape[1] / w
    ys = np.floor((np.arange(h) + offset[1]) * sy).astype(np.int64)
    xs = np.floor((np.arange(w) + offset[0]) * sx).astype(np.int64)
    return _gather(px, ys, xs)


def _bilinear_noaa(px: np.ndarray, size) -> np.ndarray:
    """Bilinear interpolation with no prefilter (aliases when shrinking, like GPU samplers)."""
    w, h = size
    fy = (np.arange(h) + 0.5) * px.shape[0] / h - 0.5
    fx = (np.arange(w) + 0.5) * px.shape[1] / w - 0.5
    y0, x0 = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
    wy, wx = (fy - y0)[:, None, None], (fx - x0)[None, :, None]
    f = px.astype(np.float32)
    top = _gather(f, y0, x0) * (1 - wx) + _gather(f, y0, x0 + 1) * wx
    bot = _gather(f, y0 + 1, x0) * (1 - wx) + _gather(f, y0 + 1, x0 + 1) * wx
    return np.clip(top * (1 - wy) + bot * wy + 0.5, 0, 255).astype(np.uint8)


def resize(px: np.ndarray, size: tuple[int, int], method: str = "bicubic",
           linear_light: bool = False, gamma: float | None = None,
           offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Resize to ``size`` (w, h).  ``linear_light`` resamples in linear sRGB; ``gamma``
    wraps the resample in x**gamma / x**(1/gamma) (an approximate linearisation)."""
    w, h = int(size[0]), int(size[1])
    if w < 1 or h < 1:
        raise ValueError(f"resize target {size} is empty")
    if method == "nearest_offset":
        return _nearest_offset(px, (w, h), offset)
    if method == "bilinear_noaa":
        return _bilinear_noaa(px, (w, h))
    if method == "area":
        f = max(1, min(px.shape[1] // w, px.shape[0] // h))
        img = Image.fromarray(px)
        if f > 1:
            img = img.reduce(f)
        return np.asarray(img.resize((w, h), R.BOX))
    if method not in PIL_FILTERS:
        raise ValueError(f"unknown resize method {method!r}; one of {RESIZE_FILTERS}")
    resample = PIL_FILTERS[method]
    if not linear_light and gamma is None:
        return np.asarray(Image.fromarray(px).resize((w, h), resample))
    if linear_light:
        lin = _srgb_to_linear(px.astype(np.float32))
        out = np.stack([_resize_float(lin[..., c], (w, h), resample) for c in range(3)], -1)
        return _linear_to_srgb(out)
    lin = (px.astype(np.float32) / 255.0) ** gamma
    out = np.stack([_resize_float(lin[..., c], (w, h), resample) for c in range(3)], -1)
    out = np.clip(out, 0, 1) ** (1.0 / gamma)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def rotate90(px: np.ndarray, k: int = 1) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(px, k))


def same_pixels(a: Encoded, b: Encoded) -> bool:
    """True when two copies decode to identical pixels (a lossless re-save, not an edit)."""
    pa, pb = a.pixels, b.pixels
    return pa.shape == pb.shape and bool(np.array_equal(pa, pb))
