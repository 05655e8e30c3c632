"""Encode and decode JPEG, WebP, AVIF and JPEG XL in memory, with validated parameters.

``encode(img, "avif", quality=60, speed=6)`` returns an :class:`Encoded`: the compressed
bytes, the decoded image (uint8 HxWx3), the full parameter set used (defaults filled in)
and the encode / decode wall times.  JPEG, WebP and AVIF go through Pillow (libjpeg-turbo,
libwebp, libavif with aom / dav1d); JPEG XL through imagecodecs (libjxl).  All are
BSD-style licensed.  ``codec_versions()`` names every library involved.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
from PIL import Image

FORMATS = ("jpeg", "webp", "avif", "jxl")
ALIASES = {"jpg": "jpeg", "jpegxl": "jxl", "jpeg-xl": "jxl", "jpeg_xl": "jxl"}
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")


class CodecError(ValueError):
    """An unknown format, a bad parameter or an image a codec cannot take."""


@dataclass(frozen=True)
class Param:
    """One encoder setting: its type, default, allowed range / choices and meaning."""

    kind: type
    default: Any
    lo: Optional[float] = None
    hi: Optional[float] = None
    choices: Optional[tuple] = None
    doc: str = ""

    def check(self, fmt: str, name: str, value):
        if value is None and self.default is None:
            return None
        if self.kind is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise CodecError(f"{fmt}: '{name}' must be true or false, got {value!r}")
            return bool(value)
        if self.kind in (int, float):
            ok = isinstance(value, (int, float, np.integer, np.floating)) \
                and not isinstance(value, (bool, np.bool_))
            if not ok or (self.kind is int and float(value) != int(value)):
                what = "an integer" if self.kind is int else "a number"
                raise CodecError(f"{fmt}: '{name}' must be {what}, got {value!r}")
            # integral values stay ints so reports say "quality 80", not "80.0"
            value = int(value) if float(value).is_integer() else float(value)
            if not np.isfinite(value) or not (self.lo <= value <= self.hi):
                raise CodecError(f"{fmt}: '{name}' must lie in [{self.lo:g}, {self.hi:g}], "
                                 f"got {value!r}")
            return value
        if value not in self.choices:
            raise CodecError(f"{fmt}: '{name}' must be one of {list(self.choices)}, got {value!r}")
        return value


PARAMS: dict[str, dict[str, Param]] = {
    "jpeg": {
        "quality": Param(int, 75, 1, 100, doc="libjpeg quality scale"),
        "subsampling": Param(str, "4:2:0", choices=SUBSAMPLINGS, doc="chroma subsampling"),
        "progressive": Param(bool, False, doc="progressive scan script"),
        "optimize": Param(bool, False, doc="optimised Huffman tables"),
    },
    "webp": {
        "quality": Param(float, 75, 0, 100, doc="lossy quality (effort when lossless)"),
        "method": Param(int, 4, 0, 6, doc="speed/size trade-off, 6 = slowest, smallest"),
        "lossless": Param(bool, False, doc="lossless VP8L instead of lossy VP8"),
    },
    "avif": {
        "quality": Param(int, 75, 0, 100, doc="libavif quality (maps to the AV1 quantiser)"),
        "speed": Param(int, 6, 0, 10, doc="aom encoder speed, 0 = slowest"),
        "subsampling": Param(str, "4:2:0", choices=SUBSAMPLINGS, doc="chroma subsampling"),
    },
    "jxl": {
        "quality": Param(float, None, 0, 100, doc="libjxl quality; JxlEncoderDistanceFromQuality "
                         "maps it to a distance (90 -> 1.0); 100 = lossless, as in cjxl"),
        "distance": Param(float, None, 0, 25, doc="Butteraugli target distance (default 1.0; "
                          "0 = lossless, as in cjxl)"),
        "effort": Param(int, 7, 1, 10, doc="encoder effort, 1 = fastest"),
        "lossless": Param(bool, False, doc="mathematically lossless modular mode"),
    },
}


def normalise_format(fmt: str) -> str:
    """'JPG' -> 'jpeg', 'jpegxl' -> 'jxl'; unknown names raise CodecError."""
    if not isinstance(fmt, str):
        raise CodecError(f"format must be a string, got {fmt!r}")
    key = ALIASES.get(fmt.strip().lower(), fmt.strip().lower())
    if key not in FORMATS:
        raise CodecError(f"unknown format '{fmt}'; supported: {', '.join(FORMATS)} "
                         f"(aliases: {', '.join(sorted(ALIASES))})")
    return key


def validate_params(fmt: str, params: Optional[dict] = None) -> dict:
    """The complete, checked parameter set for ``fmt`` (defaults filled in)."""
    fmt = normalise_format(fmt)
    spec = PARAMS[fmt]
    params = dict(params or {})
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise CodecError(f"{fmt}: unknown parameter(s) {unknown}; allowed: {sorted(spec)}")
    out = {}
    for name, p in spec.items():
        value = params.get(name)
        value = p.default if value is None else value      # explicit None = the default
        out[name] = p.check(fmt, name, value) if value is not None else None
    if fmt == "jxl":
        if out["quality"] is not None and out["distance"] is not None:
            raise CodecError("jxl: give 'quality' or 'distance', not both")
        if out["lossless"]:
            if out["quality"] is not None or out["distance"] is not None:
                raise CodecError("jxl: 'lossless' excludes 'quality' and 'distance'")
        elif out["quality"] is None and out["distance"] is None:
            out["distance"] = 1
    return out


def as_rgb_array(img) -> np.ndarray:
    """PIL image or numpy array -> C-contiguous uint8 HxWx3 (L is expanded, alpha refused)."""
    if isinstance(img, Image.Image):
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            raise CodecError(f"image has an alpha channel (mode {img.mode}); composite it on a "
                             "background or convert to RGB first")
        if img.mode != "RGB":
            img = img.convert("RGB")
        arr = np.asarray(img)
    elif isinstance(img, np.ndarray):
        arr = img
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise CodecError(f"expected an HxWx3 RGB array, got shape {img.shape}")
        if arr.dtype != np.uint8:
            raise CodecError(f"expected a uint8 array, got {arr.dtype}")
    else:
        raise CodecError(f"expected a PIL image or numpy array, got {type(img).__name__}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise CodecError(f"empty image {arr.shape[1]}x{arr.shape[0]}")
    return np.ascontiguousarray(arr)


@dataclass
class Encoded:
    """One encode + decode round trip."""

    format: str
    data: bytes
    decoded: np.ndarray          # uint8 HxWx3, what a viewer shows
    params: dict                 # complete parameter set (defaults filled in)
    encode_seconds: float
    decode_seconds: float
    extra: dict = field(default_factory=dict)
    icc_profile: Optional[bytes] = None     # the profile the file carries (None: sRGB implied)
    raw: Optional[np.ndarray] = None        # decoded numbers before that profile was applied

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        h, w = self.decoded.shape[:2]
        return bits_per_pixel(len(self.data), w, h)


def bits_per_pixel(nbytes: int, width: int, height: int) -> float:
    """8 x bytes / (width x height)."""
    if width < 1 or height < 1:
        raise ValueError(f"invalid image size {width}x{height}")
    return 8.0 * nbytes / (width * height)


# ---------------------------------------------------------------------------- encoders
def _pil_encode(arr: np.ndarray, fmt: str, icc: Optional[bytes] = None, **save) -> bytes:
    buf = io.BytesIO()
    if icc:
        save["icc_profile"] = icc
    Image.fromarray(arr, "RGB").save(buf, format=fmt, **save)
    return buf.getvalue()


def _enc_jpeg(arr, p, threads, icc=None):
    return _pil_encode(arr, "JPEG", icc, quality=p["quality"], subsampling=p["subsampling"],
                       progressive=p["progressive"], optimize=p["optimize"])


def _enc_webp(arr, p, threads, icc=None):
    return _pil_encode(arr, "WEBP", icc, quality=p["quality"], method=p["method"],
                       lossless=p["lossless"], exact=False)


def _enc_avif(arr, p, threads, icc=None):
    return _pil_encode(arr, "AVIF", icc, quality=p["quality"], speed=p["speed"],
                       subsampling=p["subsampling"], max_threads=threads, codec="aom")


def _enc_jxl(arr, p, threads, icc=None):
    # imagecodecs' jpegxl_encode has no ICC argument: the profile is dropped (see
    # ops/image/colour.py KEEPS_PROFILE, which warns)
    import imagecodecs
    kw: dict = {"effort": p["effort"], "numthreads": threads}
    # like cjxl: quality 100 / distance 0 mean lossless (libjxl's VarDCT at distance 0 is
    # neither lossless nor small)
    if p["lossless"] or p["quality"] == 100 or p["distance"] == 0:
        kw["lossless"] = True
    elif p["quality"] is not None:
        kw["level"] = float(p["quality"])
    else:
        kw["distance"] = float(p["distance"])
    return bytes(imagecodecs.jpegxl_encode(arr, **kw))


def _dec_pil(data: bytes, threads: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode != "RGB":
            im = im.convert("RGB")
        return np.asarray(im)


def _dec_jxl(data: bytes, threads: int) -> np.ndarray:
    import imagecodecs
    arr = imagecodecs.jpegxl_decode(data, numthreads=threads)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return arr[:, :, :3]


ENCODERS: dict[str, Callable] = {"jpeg": _enc_jpeg, "webp": _enc_webp, "avif": _enc_avif,
                                 "jxl": _enc_jxl}
DECODERS: dict[str, Callable] = {"jpeg": _dec_pil, "webp": _dec_pil, "avif": _dec_pil,
                                 "jxl": _dec_jxl}


def decode(data: bytes, fmt: str, threads: int = 1) -> np.ndarray:
    """Compressed bytes -> uint8 HxWx3."""
    fmt = normalise_format(fmt)
    try:
        arr = DECODERS[fmt](data, threads)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"{fmt}: cannot decode {len(data)} bytes: {exc}") from exc
    return np.ascontiguousarray(arr, dtype=np.uint8)


def encode(img, fmt: str, threads: int = 1, icc_profile: Optional[bytes] = None,
           **params) -> Encoded:
    """Encode ``img`` (PIL or uint8 HxWx3) as ``fmt`` with ``params``, decode it back, time both.

    ``threads`` caps the encoder/decoder threads of AVIF and JPEG XL (1 = comparable timings).
    ``icc_profile``: the colour profile of ``img``'s numbers, embedded in the file by the
    formats that can (not JPEG XL here); the decoded copy is then converted with the profile
    the file carries to sRGB (outside the timings), as a colour-managed viewer shows it.
    """
    fmt = normalise_format(fmt)
    full = validate_params(fmt, params)
    arr = as_rgb_array(img)
    t0 = time.perf_counter()
    try:
        data = ENCODERS[fmt](arr, full, threads, icc_profile)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"{fmt}: encoding a {arr.shape[1]}x{arr.shape[0]} image with {full} "
                         f"failed: {exc}") from exc
    t1 = time.perf_counter()
    decoded = decode(data, fmt, threads)
    t2 = time.perf_counter()
    if decoded.shape != arr.shape:
        raise CodecError(f"{fmt}: decoded shape {decoded.shape} differs from the source "
                         f"{arr.shape}")
    kept, raw = None, None
    if icc_profile and fmt != "jxl":
        with Image.open(io.BytesIO(data)) as im:
            kept = im.info.get("icc_profile") or None
        if kept:
            from .colour import to_srgb
            raw = decoded
            decoded = np.asarray(to_srgb(Image.fromarray(decoded, "RGB"), kept, fmt))
    return Encoded(fmt, data, decoded, full, t1 - t0, t2 - t1, icc_profile=kept, raw=raw)


_VERSIONS: Optional[dict] = None


def codec_versions() -> dict:
    """Versions of every library the codecs use (for reports)."""
    global _VERSIONS
    if _VERSIONS is None:
        import PIL
        from PIL import features
        v = {"pillow": PIL.__version__,
             "libjpeg-turbo": features.version("libjpeg_turbo") or features.version("jpg"),
             "libwebp": features.version("webp"),
             "libavif": features.version("avif")}
        try:
            from PIL import _avif
            for part in _avif.codec_versions().split(","):
                name, _, ver = part.strip().partition(":")
                v[name.split(" ")[0]] = ver          # aom, dav1d
        except Exception:
            pass
        try:
            import imagecodecs
            v["imagecodecs"] = imagecodecs.__version__
            v["libjxl"] = imagecodecs.jpegxl_version().replace("libjxl", "").strip()
        except Exception as exc:
            v["libjxl"] = f"unavailable ({exc})"
        _VERSIONS = v
    return dict(_VERSIONS)
