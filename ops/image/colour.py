"""Colour management: embedded ICC profiles to sRGB with Pillow's ImageCms (littleCMS).

Metrics (SSIMULACRA2, Butteraugli, PSNR) assume sRGB pixels, as do viewers without colour
management.  A Display P3 or Adobe RGB photo measured as if its numbers were sRGB is measured
wrongly; the reference SSIMULACRA2 tool converts both images to sRGB first, and so does this
module (relative colorimetric intent, the only one matrix/TRC profiles define).
"""
from __future__ import annotations

import functools
import hashlib
import io
import logging
from typing import Optional

from PIL import Image, ImageCms

logger = logging.getLogger("imgjuicer")

INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
_SRGB_TOLERANCE = 0.002       # colorant xyY distance under which a profile counts as sRGB


class ColourError(ValueError):
    """An embedded profile that cannot be read or applied."""


@functools.lru_cache(maxsize=1)
def srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    return srgb_profile().tobytes()


@functools.lru_cache(maxsize=32)
def _profile(icc: bytes) -> ImageCms.ImageCmsProfile:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError) as exc:
        raise ColourError(f"unreadable ICC profile ({len(icc)} bytes): {exc}") from None


def _chromaticities(p: ImageCms.ImageCmsProfile):
    core = p.profile
    out = []
    for c in (core.red_colorant, core.green_colorant, core.blue_colorant):
        if not c:
            return None
        out.append(c[1][:2])       # (x, y) of the colorant
    return out


@functools.lru_cache(maxsize=32)
def describe(icc: Optional[bytes]) -> Optional[dict]:
    """{description, colour_space, is_srgb, sha256} of an ICC profile; None without one."""
    if not icc:
        return None
    p = _profile(icc)
    desc = (ImageCms.getProfileDescription(p) or "").strip()
    space = (p.profile.xcolor_space or "").strip()
    ours, ref = _chromaticities(p), _chromaticities(srgb_profile())
    same_primaries = ours is not None and all(
        abs(a[0] - b[0]) < _SRGB_TOLERANCE and abs(a[1] - b[1]) < _SRGB_TOLERANCE
        for a, b in zip(ours, ref))
    is_srgb = same_primaries and "srgb" in desc.lower().replace(" ", "")
    return {"description": desc, "colour_space": space, "is_srgb": bool(is_srgb),
            "sha256": hashlib.sha256(icc).hexdigest()[:16]}


def profile_of(img: Image.Image) -> Optional[bytes]:
    icc = img.info.get("icc_profile")
    return bytes(icc) if icc else None


def to_srgb(img: Image.Image, icc: Optional[bytes] = None, where: str = "image") -> Image.Image:
    """``img`` converted from its embedded (or the given) ICC profile to sRGB, as RGB / RGBA;
    unchanged when it has no profile or an sRGB one."""
    icc = icc if icc is not None else profile_of(img)
    info = describe(icc)
    if info is None or info["is_srgb"]:
        return img
    src = _profile(icc)
    alpha = None
    mode = img.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA" if mode != "LA" else "LA")
        alpha = rgba.getchannel("A")
        img = rgba.convert("RGB" if mode != "LA" else "L")
    elif mode == "P":
        img = img.convert("RGB")
    in_mode = img.mode
    if in_mode not in ("RGB", "L", "CMYK"):
        raise ColourError(f"{where}: cannot colour-manage mode {in_mode} with profile "
                          f"'{info['description']}'")
    try:
        out = ImageCms.profileToProfile(img, src, srgb_profile(), renderingIntent=INTENT,
                                        outputMode="RGB")
    except ImageCms.PyCMSError as exc:
        raise ColourError(f"{where}: cannot apply ICC profile '{info['description']}' "
                          f"({info['colour_space']}) to a {in_mode} image: {exc}") from None
    out.info.pop("icc_profile", None)
    if alpha is not None:
        out.putalpha(alpha)
    return out


@functools.lru_cache(maxsize=1)
def _linear_srgb_icc() -> bytes:
    import imagecodecs
    return imagecodecs.cms_profile("rgb", whitepoint=[0.3127, 0.3290, 1.0],
                                   primaries=[0.64, 0.33, 1.0, 0.30, 0.60, 1.0,
                                              0.15, 0.06, 1.0], gamma=1.0)


def linear_srgb(arr, icc: Optional[bytes] = None):
    """uint8 HxWx3 numbers in the space of ``icc`` -> float32 HxWx3 linear-light sRGB, in
    float (no 8-bit rounding; colours outside sRGB keep values below 0 or above 1), as the
    reference SSIMULACRA2 tool sees a colour-managed image.  Untagged / sRGB numbers go
    through the exact sRGB curve."""
    import numpy as np
    info = describe(icc)
    if info is None or info["is_srgb"]:
        from .metrics import _module       # the metric modules load on demand (numba optional)
        return _module("ssimulacra2").srgb_to_linear(np.asarray(arr, np.float32) /
                                                     np.float32(255.0))
    import imagecodecs
    try:
        return imagecodecs.cms_transform(np.ascontiguousarray(arr), icc, _linear_srgb_icc(),
                                         colorspace="rgb", outcolorspace="rgb",
                                         outdtype="float32", intent=0)
    except Exception as exc:      # imagecodecs.CmsError and friends
        raise ColourError(f"cannot apply ICC profile '{info['description']}': {exc}") from None


# encoders that embed a given ICC profile in the file (ops/image/codecs.py); the others drop it
KEEPS_PROFILE = {"jpeg": True, "webp": True, "avif": True, "jxl": False}


def check_kept(fmt: str, icc: Optional[bytes], where: str = "") -> bool:
    """Warn when encoding to ``fmt`` would drop a non-sRGB profile (the copy would then be
    shown with other colours than the source); True when it would be dropped."""
    info = describe(icc)
    if info is None or info["is_srgb"] or KEEPS_PROFILE.get(fmt, False):
        return False
    logger.warning("%s%s drops the ICC profile '%s': the copy is shown as sRGB and looks "
                   "different from the source; the metrics (against the sRGB-converted "
                   "source) measure that colour shift", f"{where}: " if where else "", fmt,
                   info["description"])
    return True
