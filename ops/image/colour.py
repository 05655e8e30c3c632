"""Colour management: embedded ICC profiles to sRGB with Pillow's ImageCms (littleCMS).

Metrics (SSIMULACRA2, Butteraugli, PSNR) assume sRGB pixels, as do viewers without colour
management.  A Display P3 or Adobe RGB photo measured as if its numbers were sRGB is measured
wrongly; the reference tools convert both images to sRGB first, and so does this module
(relative colorimetric intent, the only one matrix/TRC profiles define): ``to_srgb`` to 8-bit
sRGB (decode, PSNR, SSIM, figures), ``linear_srgb`` to float linear sRGB exactly as the
reference SSIMULACRA2 / Butteraugli tools do (docs/codec-studies.md, Colour management).
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
# how tagged sources are measured; part of the measurement cache key of colour-managed sources
VERSION = ("2: littleCMS float into libjxl's linear-sRGB profile for SSIMULACRA2 and "
           "Butteraugli; sRGB by the reference tool's rule")
_SRGB_XY_TOLERANCE = 8e-5     # libjxl (littleCMS build): white point / primaries match sRGB
_SRGB_XYZ_TOLERANCE = 2e-4    # ... and the tone curve gives sRGB's XYZ on a 5x5x5 grid
_ICC_D50 = (0.96420288, 1.0, 0.8249054)   # the connection-space white, as stored in ICC


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


@functools.lru_cache(maxsize=32)
def describe(icc: Optional[bytes]) -> Optional[dict]:
    """{description, colour_space, is_srgb, sha256} of an ICC profile; None without one."""
    if not icc:
        return None
    p = _profile(icc)
    desc = (ImageCms.getProfileDescription(p) or "").strip()
    space = (p.profile.xcolor_space or "").strip()
    is_srgb = space == "RGB" and _reads_as_srgb(icc)
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


# The reference SSIMULACRA2 tool converts a tagged image with littleCMS to the linear-sRGB
# profile libjxl builds itself (relative colorimetric, black-point compensation, float in and
# out).  libjxl derives that profile's colorants from its own sRGB primaries, adapted (Bradford,
# with the 7-digit published inverse) to a D50 of (0.96422, 1, 0.82521) -- not the ICC
# connection space's (0.9642, 1, 0.8249) -- so a tagged white lands on linear (1.0001, 1.0000,
# 0.9996), not on 1.0.  SSIMULACRA 2 turns such 1e-4 offsets into score changes of up to 0.07
# on some pairs, so the reference's target profile is rebuilt here value for value.
_JXL_SRGB_PRIMARIES = ((0.639998686, 0.330010138), (0.300003784, 0.600003357),
                       (0.150002046, 0.059997204))
_D65 = (0.3127, 0.3290)
_JXL_D50 = (0.96422, 1.0, 0.82521)
_BRADFORD = ((0.8951, 0.2664, -0.1614), (-0.7502, 1.7135, 0.0367), (0.0389, -0.0685, 1.0296))
_BRADFORD_INV = ((0.9869929, -0.1470543, 0.1599627), (0.4323053, 0.5183603, 0.0492912),
                 (-0.0085287, 0.0400428, 0.9684867))
_CMS_FLAGS = ("BLACKPOINTCOMPENSATION", "HIGHRESPRECALC", "NOCACHE")


def _reference_colorants():
    """The 3x3 linear-sRGB -> D50 XYZ matrix (columns = the rXYZ, gXYZ, bXYZ tags) of the
    reference tool's linear-sRGB profile, as s15Fixed16 integers."""
    import numpy as np
    f32 = np.float32

    def xyz(x, y):
        return np.array([x / y, 1.0, (1.0 - x - y) / y])

    prim = np.array([[x, y, 1.0 - x - y] for x, y in _JXL_SRGB_PRIMARIES]).T
    to_xyz = prim * np.linalg.solve(prim, xyz(*_D65))
    brad = np.array(_BRADFORD, f32).astype(np.float64)
    brad_inv = np.array(_BRADFORD_INV, f32).astype(np.float64)
    gain = (brad @ np.array(_JXL_D50)) / (brad @ xyz(*_D65))
    m = (brad_inv @ np.diag(gain) @ brad @ to_xyz).astype(f32)
    return np.trunc(m * f32(65536.0) + f32(0.5)).astype(np.int64)


def _with_reference_colorants(icc: bytes) -> bytes:
    """``icc`` (a littleCMS sRGB-primaries profile) with the reference tool's colorants."""
    import struct
    out = bytearray(icc)
    cols = _reference_colorants()
    (count,) = struct.unpack_from(">I", out, 128)
    done = set()
    for k in range(count):
        sig, off, _ = struct.unpack_from(">4sII", out, 132 + 12 * k)
        if sig in (b"rXYZ", b"gXYZ", b"bXYZ") and out[off:off + 4] == b"XYZ ":
            struct.pack_into(">3i", out, off + 8, *cols[:, b"rgb".index(sig[:1])].tolist())
            done.add(sig)
    if len(done) != 3:
        raise ColourError("littleCMS's sRGB profile has no rXYZ/gXYZ/bXYZ tags")
    return bytes(out)


@functools.lru_cache(maxsize=1)
def _linear_srgb_icc() -> bytes:
    """The reference tool's target: linear-light sRGB with libjxl's colorants."""
    import imagecodecs
    return _with_reference_colorants(imagecodecs.cms_profile(
        "rgb", whitepoint=[*_D65, 1.0], gamma=1.0,
        primaries=[c for xy in _JXL_SRGB_PRIMARIES for c in (*xy, 1.0)]))


@functools.lru_cache(maxsize=1)
def _reference_srgb_icc() -> bytes:
    """sRGB (littleCMS's parametric curve) with libjxl's colorants: what the reference tool
    compares a profile with to decide that it is sRGB."""
    import imagecodecs
    return _with_reference_colorants(imagecodecs.cms_profile("srgb"))


def _tags(icc: bytes) -> dict:
    """{signature: tag bytes} of an ICC profile."""
    import struct
    (count,) = struct.unpack_from(">I", icc, 128)
    out = {}
    for k in range(count):
        sig, off, size = struct.unpack_from(">4sII", icc, 132 + 12 * k)
        out[sig] = icc[off:off + size]
    return out


def _s15(tag: bytes, n: int):
    import numpy as np
    return np.frombuffer(tag, ">i4", n, 8) / 65536.0


def _cms_xyz(icc: bytes, rgb, flags: int = 0):
    """D50 XYZ (relative colorimetric, float64) of RGB values 0..1 through ``icc``."""
    import imagecodecs
    import numpy as np
    return imagecodecs.cms_transform(
        np.asarray(rgb, np.float64).reshape(1, -1, 3), icc, _xyz_icc(), colorspace="rgb",
        outcolorspace="xyz", outdtype="float64", flags=flags,
        intent=int(imagecodecs.CMS.INTENT.RELATIVE_COLORIMETRIC)).reshape(-1, 3)


@functools.lru_cache(maxsize=1)
def _xyz_icc() -> bytes:
    import imagecodecs
    return imagecodecs.cms_profile("xyz")


@functools.lru_cache(maxsize=64)
def _reads_as_srgb(icc: bytes) -> bool:
    """Whether the reference tool (libjxl) reads the profile as sRGB and so applies the exact
    sRGB curve without littleCMS: white point and primaries, un-adapted from D50, within
    8e-5 (xy) of D65 / sRGB's, and littleCMS giving sRGB's XYZ within 2e-4 on a 5x5x5 grid."""
    import imagecodecs
    import numpy as np
    try:
        tags = _tags(icc)
        ones = _cms_xyz(icc, [1.0, 1.0, 1.0])[0]
        if b"wtpt" in tags and b"chad" not in tags:
            white = _s15(tags[b"wtpt"], 3)
        elif b"chad" in tags:
            white = np.linalg.solve(_s15(tags[b"chad"], 9).reshape(3, 3), ones)
        else:
            white = ones
        if all(t in tags for t in (b"rXYZ", b"gXYZ", b"bXYZ")):
            prim = np.stack([_s15(tags[t], 3) for t in (b"rXYZ", b"gXYZ", b"bXYZ")])
        else:
            prim = _cms_xyz(icc, np.eye(3))
    except Exception:         # not a matrix/TRC RGB profile littleCMS can read
        return False
    brad = np.array(_BRADFORD)
    adapt = np.linalg.inv(brad) @ np.diag((brad @ white) / (brad @ np.array(_ICC_D50))) @ brad
    xy = [(v[0] / v.sum(), v[1] / v.sum()) for v in [white, *(prim @ adapt.T)]]
    want = [_D65, (0.64, 0.33), (0.30, 0.60), (0.15, 0.06)]
    if any(abs(a - b) > _SRGB_XY_TOLERANCE for p, q in zip(xy, want) for a, b in zip(p, q)):
        return False
    grid = np.stack(np.meshgrid(*[0.001 + 0.2 * np.arange(5)] * 3, indexing="ij"), -1)
    flags = 0
    for name in ("NOOPTIMIZE", "BLACKPOINTCOMPENSATION", "HIGHRESPRECALC"):
        flags |= int(getattr(imagecodecs.CMS.FLAGS, name))
    ours, srgb = (_cms_xyz(p, grid, flags) for p in (icc, _reference_srgb_icc()))
    return bool(np.abs(ours - srgb).max() <= _SRGB_XYZ_TOLERANCE)


def linear_srgb(arr, icc: Optional[bytes] = None):
    """uint8 HxWx3 numbers in the space of ``icc`` -> float32 HxWx3 linear-light sRGB exactly
    as the reference SSIMULACRA2 tool computes it: numbers * (1/255) in float32, then
    littleCMS float to float (relative colorimetric, black-point compensation) into libjxl's
    linear-sRGB profile; no clipping (colours outside sRGB keep values below 0 or above 1),
    no 8-bit rounding.  Untagged / sRGB numbers go through libjxl's sRGB curve, as the tool
    does for them."""
    import numpy as np
    info = describe(icc)
    if info is None or info["is_srgb"]:
        from .metrics import _module       # the metric modules load on demand (numba optional)
        mod = _module("ssimulacra2")
        arr = np.asarray(arr)
        if arr.dtype == np.uint8:             # bit-identical to the untagged SSIMULACRA2 path
            return np.take(mod._SRGB_LUT, arr)
        return mod.srgb_to_linear(arr.astype(np.float32) * np.float32(1.0 / 255.0))
    import imagecodecs
    numbers = np.asarray(arr)
    if numbers.dtype != np.uint8 or numbers.ndim != 3 or numbers.shape[2] != 3:
        raise ColourError(f"colour management takes uint8 HxWx3 numbers, not "
                          f"{numbers.dtype} {numbers.shape}")
    flags = 0
    for name in _CMS_FLAGS:
        flags |= int(getattr(imagecodecs.CMS.FLAGS, name))
    try:
        return imagecodecs.cms_transform(
            numbers.astype(np.float32) * np.float32(1.0 / 255.0), icc, _linear_srgb_icc(),
            colorspace="rgb", outcolorspace="rgb", outdtype="float32",
            intent=int(imagecodecs.CMS.INTENT.RELATIVE_COLORIMETRIC), flags=flags)
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
