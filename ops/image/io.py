"""The one image decode path every op uses.

``read_header`` opens a file without decoding pixels (size, format, mode, frames, EXIF
orientation); ``load_image`` decodes it: decompression-bomb limit, EXIF transpose,
CMYK / 16-bit / palette+alpha / LA / I;16 normalised to RGB or RGBA, animated images ->
first frame.  Every failure is an ``ImageLoadError`` with a message naming the file.
"""
from __future__ import annotations

import os
import warnings
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


@dataclass
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


def _check_file(path: str) -> int:
    if not isinstance(path, str) or not path:
        raise ImageLoadError(f"not an image path: {path!r}")
    if is_url(path):  # s3://bucket/key and other object-storage URLs
        try:
            size = stat_size(path)
        except RemoteError as exc:
            raise ImageLoadError(str(exc)) from None
        if size == 0:
            raise ImageLoadError(f"{path}: empty file (0 bytes)")
        return size
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageLoadError(f"{path}: broken symlink (its target "
                                 f"'{os.readlink(path)}' does not exist)") from None
        raise ImageLoadError(f"{path}: file not found") from None
    except OSError as exc:
        raise ImageLoadError(f"{path}: cannot stat: {exc.strerror or exc}") from None
    if not os.path.isfile(path):
        raise ImageLoadError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise ImageLoadError(f"{path}: empty file (0 bytes)")
    return st.st_size


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
    """Size, format, mode, frame count and EXIF orientation, without decoding pixels."""
    size = _check_file(path)
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
    ``to_srgb`` an embedded ICC profile is applied (pixels converted to sRGB)."""
    _check_file(path)
    return decode_opened(_open(path, max_pixels), path, mode, to_srgb)


def open_image(path: str, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file lazily (header read, limits checked, nothing decoded): read its
    format / tables, then ``decode_opened`` it -- one open instead of two."""
    _check_file(path)
    return _open(path, max_pixels)


def decode_opened(img: Image.Image, path: str, mode: Optional[str] = "RGB",
                  to_srgb: bool = False) -> Image.Image:
    """The rest of ``load_image`` on an image ``open_image`` returned.  Without ``to_srgb``
    the embedded ICC profile (if any) stays in ``info["icc_profile"]``."""
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img.load()
        icc = img.info.get("icc_profile")
        img = ImageOps.exif_transpose(img)
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
