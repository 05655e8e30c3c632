"""The one image decode path every op uses.

``read_header`` opens a file without decoding pixels (size, format, mode, frames, EXIF
orientation); ``load_image`` decodes it: decompression-bomb limit, EXIF transpose,
CMYK / 16-bit / palette+alpha / LA / I;16 normalised to RGB or RGBA, animated images ->
first frame.  Every failure is an ``ImageLoadError`` with a message naming the file.

Header facts are read once per file and process: ``read_header`` keeps its answers (and its
errors) keyed by path, byte size, mtime and pixel limit, so every op of a run that asks about
the same file gets them from memory (a changed file has another key; object-storage URLs are
not cached).  Decoded pixels are shared only inside ``shared_decodes()`` (a fused pass opens it
around each chunk of rows): ops of the pass that decode the same file with the same settings
decode it once and get copy-on-write views.
"""
from __future__ import annotations

import contextlib
import os
import stat
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

from PIL import Image, ImageOps, UnidentifiedImageError

from ..base import OpError
from .remote import RemoteError, is_url, open_file, stat_size

# Pillow's own default; ops can lower or raise it per call.
DEFAULT_MAX_PIXELS = 178_956_970
ORIENTATION_TAG = 0x0112


class ImageLoadError(OpError):
    """A file that cannot be read as an image, with the reason."""


def check_max_pixels(value: Optional[int]) -> Optional[int]:
    """An op's ``max_pixels`` parameter: a positive pixel count (None: no limit)."""
    if value is not None and value < 1:
        raise ValueError(f"max_pixels must be a positive number of pixels, got {value}")
    return value


HEADER_CACHE_ENTRIES = 200_000   # ~300 bytes each
DECODE_CACHE_BYTES = int(os.environ.get("IMGJUICER_DECODE_CACHE_MB", "512")) * 2 ** 20

# per process: how often headers were parsed and pixels decoded (tests, benchmarks)
counters = {"header_reads": 0, "decodes": 0, "decoded_bytes": 0}


class _LRU:
    """A bounded map, least recently used entries leave first (by count or by size).  With
    ``evict=False`` a full map takes nothing new instead: for scans that repeat in the same
    order (op after op over one chunk of rows), keeping the first entries beats LRU, which
    would drop each one just before it is asked for again."""

    def __init__(self, limit: int, evict: bool = True):
        self.limit, self.used, self.items, self.evict = limit, 0, OrderedDict(), evict

    def get(self, key):
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key, value, size: int = 1) -> None:
        if size > self.limit or (not self.evict and self.used + size > self.limit):
            return
        old = self.items.pop(key, None)
        if old is not None:
            self.used -= old[1]
        self.items[key] = (value, size)
        self.used += size
        while self.used > self.limit:
            _, (_, freed) = self.items.popitem(last=False)
            self.used -= freed

    def clear(self) -> None:
        self.items.clear()
        self.used = 0


_headers = _LRU(HEADER_CACHE_ENTRIES)
_decodes: Optional[_LRU] = None   # set while shared_decodes() is open
_stats: Optional[dict] = None


@dataclass(frozen=True)
class ImageHeader:
    path: str
    width: int            # as displayed, i.e. after the EXIF orientation is applied
    height: int
    raw_width: int        # as stored
    raw_height: int
    format: str
    mode: str
    frames: int
    orientation: int      # EXIF orientation, 1 when absent
    file_size: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _stat(path: str) -> os.stat_result:
    """``os.stat``, done once per file inside a ``shared_decodes()`` scope (one chunk of a
    fused pass), where every op asking about the file gets the same answer."""
    memo = _stats
    if memo is None:
        return os.stat(path)
    st = memo.get(path)
    if st is None:
        st = memo[path] = os.stat(path)
    return st


def file_size(path: str) -> int:
    """The file's size in bytes (its stat, shared like the header facts)."""
    return stat_size(path) if is_url(path) else _stat(path).st_size


def _check_file(path: str) -> tuple[int, Optional[int]]:
    """(byte size, mtime in ns) of a readable, non-empty file; mtime is None for URLs."""
    if not isinstance(path, str) or not path:
        raise ImageLoadError(f"not an image path: {path!r}")
    if is_url(path):  # s3://bucket/key and other object-storage URLs
        try:
            size = stat_size(path)
        except RemoteError as exc:
            raise ImageLoadError(str(exc)) from None
        if size == 0:
            raise ImageLoadError(f"{path}: empty file (0 bytes)")
        return size, None
    try:
        st = _stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageLoadError(f"{path}: broken symlink (its target "
                                 f"'{os.readlink(path)}' does not exist)") from None
        raise ImageLoadError(f"{path}: file not found") from None
    except OSError as exc:
        raise ImageLoadError(f"{path}: cannot stat: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ImageLoadError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise ImageLoadError(f"{path}: empty file (0 bytes)")
    return st.st_size, st.st_mtime_ns


def _open(path: str, max_pixels: Optional[int]) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                img = Image.open(open_file(path) if is_url(path) else path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except RemoteError as exc:
        raise ImageLoadError(str(exc)) from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{path}: not an image Pillow can identify") from None
    except OSError as exc:
        raise ImageLoadError(f"{path}: cannot open: {exc}") from None
    w, h = img.size
    if w < 1 or h < 1:
        img.close()
        raise ImageLoadError(f"{path}: invalid dimensions {w}x{h}")
    if max_pixels is not None and w * h > max_pixels:
        img.close()
        raise ImageLoadError(f"{path}: {w}x{h} = {w * h:,} pixels exceeds the limit of "
                             f"{max_pixels:,} (possible decompression bomb; raise max_pixels "
                             "to allow it)")
    return img


def _orientation(img: Image.Image) -> int:
    try:
        if img.format == "PNG":
            # PngImageFile.getexif() decodes every pixel to look for an eXIf chunk after the
            # image data; headers-only readers take the chunk when it precedes IDAT.
            raw = img.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            value = exif.get(ORIENTATION_TAG, 1)
        else:
            value = img.getexif().get(ORIENTATION_TAG, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # malformed EXIF must not make a readable image unreadable
        return 1


def read_header(path: str, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """Size, format, mode, frame count and EXIF orientation, without decoding pixels; parsed
    once per file version and process, then answered from memory (errors too).  Inside a
    ``shared_decodes()`` scope, where a file's stat is taken once, a file's answer is also
    looked up once: every later op of the chunk gets it without checking the file again."""
    memo = _stats if type(path) is str else None
    if memo is not None:
        known = memo.get((path, max_pixels))
        if known is not None:
            if isinstance(known, ImageLoadError):
                raise ImageLoadError(str(known))
            return known
    size, mtime = _check_file(path)
    key = (path, size, mtime, max_pixels)
    hit = _headers.get(key) if mtime is not None else None
    if hit is not None:
        if isinstance(hit[0], ImageLoadError):
            raise ImageLoadError(str(hit[0]))
        if memo is not None:
            memo[(path, max_pixels)] = hit[0]
        return hit[0]
    try:
        header = _parse_header(path, size, max_pixels)
    except ImageLoadError as exc:
        if mtime is not None:
            _headers.put(key, ImageLoadError(str(exc)))  # the message, not the traceback
        if memo is not None:
            memo[(path, max_pixels)] = ImageLoadError(str(exc))
        raise
    if mtime is not None:
        _headers.put(key, header)
    if memo is not None:
        memo[(path, max_pixels)] = header
    return header


def _parse_header(path: str, size: int, max_pixels: Optional[int]) -> ImageHeader:
    counters["header_reads"] += 1
    img = _open(path, max_pixels)
    try:
        orientation = _orientation(img)
        w, h = img.size
        dw, dh = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
        return ImageHeader(path=path, width=dw, height=dh, raw_width=w, raw_height=h,
                           format=img.format or "", mode=img.mode,
                           frames=int(getattr(img, "n_frames", 1) or 1),
                           orientation=orientation, file_size=size)
    finally:
        img.close()


def normalise_mode(img: Image.Image, mode: Optional[str] = "RGB") -> Image.Image:
    """Convert any Pillow mode to RGB (``mode="RGB"``), RGB/RGBA keeping alpha
    (``mode=None``) or the given mode.  16-bit and float images are scaled to 8 bits."""
    m = img.mode
    if m in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        import numpy as np
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if m.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype("uint8"), "L")
    elif m == "F":
        import numpy as np
        arr = np.asarray(img, dtype=np.float64)
        hi = 1.0 if arr.max() <= 1.0 else 255.0
        img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype("uint8"), "L")
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (
        img.mode == "P" and "transparency" in img.info)
    if mode is None:
        target = "RGBA" if has_alpha else "RGB"
    else:
        target = mode
    if img.mode == target:
        return img
    if img.mode == "P":
        img = img.convert("RGBA" if has_alpha else "RGB")
        if img.mode == target:
            return img
    if img.mode == "CMYK" and target in ("RGB", "RGBA"):
        img = img.convert("RGB")
    if target == "RGB" and img.mode in ("RGBA", "LA"):
        # composite on white: alpha must not turn transparent pixels into arbitrary colours
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert(target)


def load_image(path: str, mode: Optional[str] = "RGB",
               max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
               to_srgb: bool = False) -> Image.Image:
    """Decode an image file: limits, EXIF transpose, first frame, mode normalised; with
    ``to_srgb`` an embedded ICC profile is applied (pixels converted to sRGB).  Inside
    ``shared_decodes()`` a file already decoded with the same settings is not decoded again
    (each caller gets a copy-on-write view: edit pixels through Pillow's methods, or
    ``img.copy()`` before writing through ``img.load()``)."""
    size, mtime = _check_file(path)
    cache = _decodes
    if cache is None or mtime is None:
        return decode_opened(_open(path, max_pixels), path, mode, to_srgb)
    key = (path, size, mtime, mode, max_pixels, to_srgb)
    hit = cache.get(key)
    if hit is not None:
        return _view(hit[0])
    img = decode_opened(_open(path, max_pixels), path, mode, to_srgb)
    nbytes = _image_bytes(img)
    counters["decoded_bytes"] += nbytes
    if nbytes > cache.limit - cache.used:
        return img
    cache.put(key, img, nbytes)
    return _view(img)


def _view(img: Image.Image) -> Image.Image:
    """A copy-on-write view of a shared decoded image: Pillow copies the pixels before any
    in-place change of a read-only image (paste, putpixel, ImageDraw ...), so no op sees
    another's edits and none pays for a copy it does not need."""
    view = img._new(img.im)
    view.readonly = 1
    return view


def _image_bytes(img: Image.Image) -> int:
    return img.width * img.height * max(1, len(img.getbands()))


@contextlib.contextmanager
def shared_decodes(max_bytes: Optional[int] = None):
    """While open, ``load_image`` decodes each (file, mode, limit) once and hands out views
    (the first ``max_bytes`` of decoded pixels are kept; beyond, images are decoded per
    call), and each file is stat'ed once.  Yields the byte budget; nested use shares the
    outer scope."""
    global _decodes, _stats
    if _decodes is not None:
        yield _decodes.limit
        return
    limit = DECODE_CACHE_BYTES if max_bytes is None else max_bytes
    _decodes, _stats = _LRU(limit, evict=False), {}
    try:
        yield limit
    finally:
        _decodes.clear()
        _decodes = _stats = None


def open_image(path: str, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file lazily (header read, limits checked, nothing decoded): read its
    format / tables, then ``decode_opened`` it -- one open instead of two."""
    _check_file(path)
    return _open(path, max_pixels)


def decode_opened(img: Image.Image, path: str, mode: Optional[str] = "RGB",
                  to_srgb: bool = False) -> Image.Image:
    """The rest of ``load_image`` on an image ``open_image`` returned.  Without ``to_srgb``
    the embedded ICC profile (if any) stays in ``info["icc_profile"]``."""
    counters["decodes"] += 1
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img.load()
        icc = img.info.get("icc_profile")
        ImageOps.exif_transpose(img, in_place=True)  # no copy when nothing to turn
        if to_srgb and icc:
            from .colour import ColourError, to_srgb as convert
            try:
                img = convert(img, bytes(icc), path)
            except ColourError as exc:
                raise ImageLoadError(str(exc)) from None
            icc = None
        elif img.mode not in ("RGB", "RGBA"):
            icc = None          # a CMYK / grey profile does not describe the RGB result
        out = normalise_mode(img, mode)
        if icc:
            out.info["icc_profile"] = icc
        return out
    except ImageLoadError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(f"{path}: cannot decode: {exc}") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{path}: {exc}") from None
