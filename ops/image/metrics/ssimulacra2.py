"""SSIMULACRA 2.1, Cloudinary's perceptual image metric, matching the reference C++ tool.

Same algorithm as the reference C++ tool (github cloudinary/ssimulacra2, "SSIMULACRA 2.1"):
sRGB -> linear RGB; six scales (1:1 .. 1:32, 2x2 box downsampling in linear RGB); at each scale
libjxl's XYB (opsin absorbance matrix + bias, cube root) rescaled to about 0..1 with B-Y; a
Gaussian blur (libjxl's recursive Gaussian, sigma 1.5, see ``_blur``); per channel an SSIM map
without the luminance denominator and an edge-difference map split into "artifact" (ringing,
blocking) and "detail lost" (blurring); the mean and the 4-norm of each map; a weighted sum of
those 108 numbers mapped to a 100-is-lossless score by a cubic and a power.

Two engines.  With numba installed (the default path), ``_ssimulacra2_jit`` redoes the C++
tool's float32 arithmetic operation by operation, FMAs included, and the scores agree with the
tool to its 8 printed decimals; this matters because libjxl's recursive blur carries float32
noise that moves scores by up to ~0.4 on flat regions.  Without numba, a numpy float32 path
with the blur's exact FIR form runs (mathematically the same metric, same speed class) and
lands within ~0.5 of the tool.  docs/codec-studies.md (SSIMULACRA 2.1) has the validation, docs/benchmarks.md the benchmark.

Input: two PIL images or numpy arrays of equal size and mode, at least 8x8: RGB (HxWx3),
grey (HxW or PIL "L", scored as R=G=B like the tool) or RGBA (HxWx4 or PIL "RGBA"; blended
on dark and bright backgrounds, the lower score returned, as the C++ tool does).  Arrays are
uint8 or float on the 0..255 scale (the convention of every metric in ``ops.image.metrics``;
floats are expected in 0..255, not 0..1), sRGB-encoded.  Identical inputs return exactly 100.0.
"""
from __future__ import annotations

import numpy as np

from ._blur import blur
from ._inputs import MetricInputError, check_pair

VERSION = ("SSIMULACRA 2.1 (imgjuicer port of cloudinary/ssimulacra2 @81feacf; numba engine "
           "reproduces the C++ tool's float32 arithmetic, validated to 1e-8 on 28 pairs)")

NUM_SCALES = 6
MIN_SIZE = 8
_C2 = np.float32(0.0009)
_ALPHA_BACKGROUNDS = (0.1, 0.9)   # sRGB-encoded grey levels the C++ tool blends alpha onto

# 108 weights, one row per (channel X/Y/B, scale 1:1 .. 1:32); within a row:
# 1-norm of (ssim, artifact, detail lost), then 4-norm of (ssim, artifact, detail lost).
_WEIGHTS = np.array([
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0,
    0.0, 0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
    0.00015231632783718752,
    0.0, 0.0016406437456599754, 0.0, 1.8422455520539298, 11.441172603757666, 0.0,
    0.0007989109436015163, 0.000176816438078653, 0.0, 1.8787594979546387, 10.94906990605142, 0.0,
    0.0007289346991508072, 0.9677937080626833, 0.0, 0.00014003424285435884,
    0.9981766977854967, 0.00031949755934435053,
    0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398, 0.0, 0.0,
    0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
    0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296, 1.027889937768264,
    225.20515300849274, 0.0, 0.0, 19.213238186143016, 0.0011401524586618361,
    0.001237755635509985,
    176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757,
    0.0004485436923833408,
    0.0, 0.0, 0.0, 34.77906344483772, 44.835625328877896, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0008680556573291698, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0004179171803251336, 0.0017290828234722833, 0.0,
    0.0020827005846636437, 0.0, 0.0, 8.826982764996862, 23.19243343998926, 0.0,
    95.1080498811086, 0.9863978034400682, 0.9834382792465353, 0.0012286405048278493,
    171.2667255897307, 0.9807858872435379,
    0.0, 0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
]).reshape(3, NUM_SCALES, 2, 3)

# libjxl's opsin absorbance (linear sRGB -> LMS-like mix), computed in float32 as libjxl does.
_F = np.float32
_OPSIN = np.array([
    [_F(0.30), _F(1.0) - _F(0.078) - _F(0.30), _F(0.078)],
    [_F(0.23), _F(1.0) - _F(0.078) - _F(0.23), _F(0.078)],
    [_F(0.24342268924547819), _F(0.20476744424496821),
     _F(1.0) - _F(0.24342268924547819) - _F(0.20476744424496821)],
], np.float32)
_OPSIN_BIAS = np.float32(0.0037930732552754493)
# XYB and SSIMULACRA 2's rescaling in one affine map of the cube roots (m0, m1, m2):
#   X' = 14 * (m0 - m1) / 2 + 0.42,  Y' = (m0 + m1) / 2 + 0.01,  B' = m2 - Y + 0.55,
# where each m is cbrt(mix) - cbrt(bias); the bias shift only survives in Y' (rows 0, 2 sum to 0).
_XYB_MIX = np.array([[7.0, -7.0, 0.0], [0.5, 0.5, 0.0], [-0.5, -0.5, 1.0]], np.float32)
_NEG_CBRT_BIAS = np.float32(-np.cbrt(_OPSIN_BIAS))
_XYB_OFFSET = np.array([0.42, 0.01 - np.cbrt(np.float64(_OPSIN_BIAS)), 0.55],
                       np.float32)[:, None]


# libjxl's TF_SRGB::DisplayFromEncoded: a rational polynomial in |x| (Horner, FMA), linear
# below 0.04045; we evaluate it with the same roundings (float64 FMA, one float32 rounding).
_SRGB_P = np.array([2.200248328e-04, 1.043637593e-02, 1.624820318e-01, 7.961564959e-01,
                    8.210152774e-01], np.float32)
_SRGB_Q = np.array([2.631846970e-01, 1.076976492e+00, 4.987528350e-01, -5.512498495e-02,
                    6.521209011e-03], np.float32)


def _fma32(a, b, c) -> np.ndarray:
    return (np.asarray(a, np.float64) * b + c).astype(np.float32)


def srgb_to_linear(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded float 0..1 -> float32 linear light, as libjxl computes it (mirrored < 0)."""
    x = np.asarray(encoded, np.float32)
    ax = np.abs(x)
    yp = np.full_like(ax, _SRGB_P[4])
    yq = np.full_like(ax, _SRGB_Q[4])
    for i in (3, 2, 1, 0):
        yp = _fma32(yp, ax, _SRGB_P[i])
        yq = _fma32(yq, ax, _SRGB_Q[i])
    lin = np.where(ax > np.float32(0.04045), yp / yq, ax * np.float32(1 / 12.92))
    return np.copysign(lin, x).astype(np.float32, copy=False)


_INV255 = np.float32(1.0 / 255.0)
_SRGB_LUT = srgb_to_linear(np.arange(256, dtype=np.float32) * _INV255)


def _linear_planes(img: np.ndarray, out: np.ndarray) -> None:
    """HxW / HxWx3 uint8 or 0..255 float -> ``out``, (3, H, W) float32 linear RGB."""
    planes = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
    if img.dtype == np.uint8:
        np.take(_SRGB_LUT, planes, out=out if img.ndim == 3 else out[:1])
    else:
        out[:planes.shape[0]] = srgb_to_linear(planes.astype(np.float32) * _INV255)
    if img.ndim == 2:
        out[1:] = out[0]


def _linear_pair(ref: np.ndarray, dis: np.ndarray) -> np.ndarray:
    """(2, 3, H, W) float32 linear RGB of a validated (reference, distorted) pair."""
    out = np.empty((2, 3) + ref.shape[:2], np.float32)
    _linear_planes(ref, out[0])
    _linear_planes(dis, out[1])
    return out


def positive_xyb(linear: np.ndarray) -> np.ndarray:
    """(..., 3, H, W) linear RGB -> SSIMULACRA 2's positive XYB (X*14+.42, Y+.01, B-Y+.55)."""
    shape = linear.shape
    flat = np.ascontiguousarray(linear, np.float32).reshape(-1, 3, shape[-2] * shape[-1])
    mixed = np.matmul(_OPSIN, flat)
    mixed += _OPSIN_BIAS
    np.maximum(mixed, 0.0, out=mixed)
    np.cbrt(mixed, out=mixed)
    out = np.matmul(_XYB_MIX, mixed)
    out += _XYB_OFFSET
    return out.reshape(shape)


def downsample2(linear: np.ndarray) -> np.ndarray:
    """2x2 box average of (..., H, W); an odd last row/column is averaged with itself."""
    h, w = linear.shape[-2:]
    if h % 2 or w % 2:
        linear = np.pad(linear, [(0, 0)] * (linear.ndim - 2) + [(0, h % 2), (0, w % 2)],
                        mode="edge")
    out = linear[..., 0::2, 0::2] + linear[..., 0::2, 1::2]
    out += linear[..., 1::2, 0::2]
    out += linear[..., 1::2, 1::2]
    out *= np.float32(0.25)
    return out


def _norms(err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and 4-norm (mean of err^4, to the 1/4) of a (3, H, W) map >= 0."""
    flat = err.reshape(3, -1)
    sq = flat * flat
    np.multiply(sq, sq, out=sq)
    n = flat.shape[1]
    return flat.sum(axis=1, dtype=np.float64) / n, np.sqrt(np.sqrt(sq.sum(axis=1) / n))


def scale_norms(xyb: np.ndarray) -> np.ndarray:
    """(2, 3, H, W) positive XYB of (reference, distorted) -> (3, 2, 3) norms at one scale:
    [channel, 1-norm/4-norm, ssim/artifact/detail-lost]."""
    x1, x2 = xyb[0], xyb[1]
    _, c, h, w = xyb.shape
    stack = np.empty((4, c, h, w), np.float32)
    stack[:2] = xyb
    np.multiply(x1, x1, out=stack[2])
    stack[2] += x2 * x2                       # blur is linear: one blur gives sigma11 + sigma22
    np.multiply(x1, x2, out=stack[3])
    mu1, mu2, s11_22, s12 = blur(stack.reshape(4 * c, h, w)).reshape(4, c, h, -1)
    out = np.empty((3, 2, 3))

    # SSIM without the luminance denominator: 1 - (1 - (mu1-mu2)^2) * num_s / denom_s.
    mu12 = mu1 * mu2
    num_s = s12 - mu12
    num_s *= 2.0
    num_s += _C2
    den_s = mu1 * mu1
    den_s += mu2 * mu2
    np.subtract(s11_22, den_s, out=den_s)
    den_s += _C2
    num_m = mu1 - mu2
    np.multiply(num_m, num_m, out=num_m)
    np.subtract(1.0, num_m, out=num_m)
    num_m *= num_s
    num_m /= den_s
    np.subtract(1.0, num_m, out=num_m)
    np.maximum(num_m, 0.0, out=num_m)
    out[:, 0, 0], out[:, 1, 0] = _norms(num_m)

    # Edge difference: (1 + |x2 - mu2|) / (1 + |x1 - mu1|) - 1; > 0 artifact, < 0 detail lost.
    e1 = x1 - mu1
    np.abs(e1, out=e1)
    e1 += 1.0
    d = x2 - mu2
    np.abs(d, out=d)
    d += 1.0
    d /= e1
    d -= 1.0
    pos = np.maximum(d, 0.0)
    neg = np.subtract(pos, d, out=d)          # max(-d, 0) = max(d, 0) - d
    out[:, 0, 1], out[:, 1, 1] = _norms(pos)
    out[:, 0, 2], out[:, 1, 2] = _norms(neg)
    return out


def score_from_norms(norms: np.ndarray) -> float:
    """(3, scales, 2, 3) norms (scales <= 6) -> the SSIMULACRA 2.1 score.

    Like the C++ tool, the weights are consumed in order over the scales that exist: an image
    under 113 px on a side has fewer than 6 scales, and then its Y and B norms meet the weights
    written for later X/Y scales (the tool's quirk, kept so that scores agree)."""
    weights = _WEIGHTS.ravel()[:norms.size]
    s = float(weights @ np.abs(norms).ravel()) * 0.9562382616834844
    s = 2.326765642916932 * s - 0.020884521182843837 * s * s + 6.248496625763138e-05 * s ** 3
    return 100.0 - 10.0 * s ** 0.6276336467831387 if s > 0 else 100.0


def _jit():
    """The numba kernels module, or None when numba is not installed."""
    try:
        from . import _ssimulacra2_jit
    except ImportError as exc:
        if exc.name != "numba":
            raise
        return None
    return _ssimulacra2_jit


def scale_norms_exact(linear: np.ndarray) -> np.ndarray:
    """Like ``scale_norms(positive_xyb(linear))`` but with the C++ tool's float32 arithmetic
    (numba kernels): five separate recursive blurs, libjxl's cube root, its map formulas."""
    jit = _jit()
    _, c, h, w = linear.shape
    xyb = np.empty((2, c, h, w), np.float32)
    mixed = np.empty((c, h, w), np.float32)
    guess = np.empty((c, h, w), np.float32)
    for i in range(2):
        jit.opsin_mix(np.ascontiguousarray(linear[i]), mixed, _OPSIN, _OPSIN_BIAS)
        jit.cube_root_guess(mixed.view(np.int32), guess.view(np.int32))
        jit.positive_xyb(mixed, guess, xyb[i], _NEG_CBRT_BIAS)
    x1, x2 = xyb
    planes = (x1, x2, x1 * x1, x2 * x2, x1 * x2)
    blurred = np.empty((5, c, h, w), np.float32)
    tmp = np.empty((h, w), np.float32)
    for i, plane in enumerate(planes):
        for ch in range(c):
            jit.blur_plane(plane[ch], tmp, blurred[i, ch])
    sums = np.empty((c, 6))
    jit.map_sums(x1, x2, *blurred, _C2, sums)
    sums /= h * w
    sums[:, 1::2] = np.sqrt(np.sqrt(sums[:, 1::2]))
    return sums.reshape(c, 3, 2).transpose(0, 2, 1)


def score_linear(linear: np.ndarray, exact: bool | None = None) -> float:
    """SSIMULACRA 2.1 of a (2, 3, H, W) float32 stack of linear-RGB (reference, distorted).
    ``exact`` (default: when numba is installed) reproduces the C++ tool's float32 rounding;
    otherwise the exact-math FIR path runs (docs/codec-studies.md, SSIMULACRA 2.1, says how far apart)."""
    if exact is None:
        exact = _jit() is not None
    norms = []
    for scale in range(NUM_SCALES):
        if linear.shape[-1] < MIN_SIZE or linear.shape[-2] < MIN_SIZE:
            break               # the C++ tool tests the previous scale's size, so keeps 4..7
        if scale:
            linear = downsample2(linear)
        norms.append(scale_norms_exact(linear) if exact else
                     scale_norms(positive_xyb(linear)))
    return score_from_norms(np.stack(norms, axis=1))


def _split_alpha(img):
    """(colour part, alpha or None) of an RGBA PIL image / HxWx4 array; others unchanged."""
    from PIL import Image
    if isinstance(img, Image.Image) and img.mode == "RGBA":
        img = np.asarray(img)
    if isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 4:
        return img[..., :3], img[..., 3]
    return img, None


def _blend(colour: np.ndarray, alpha: np.ndarray, background: float) -> np.ndarray:
    """(3, H, W) linear RGB of sRGB colour alpha-blended on a grey (blend in encoded values,
    float32, as the C++ tool)."""
    a = (alpha.astype(np.float32) * _INV255)[..., None]
    enc = colour.astype(np.float32) * _INV255
    blended = a * enc + (np.float32(1.0) - a) * np.float32(background)
    if blended.ndim == 2:
        blended = np.repeat(blended[..., None], 3, axis=2)
    return srgb_to_linear(blended).transpose(2, 0, 1)


def ssimulacra2(reference, distorted) -> float:
    """SSIMULACRA 2.1 score of ``distorted`` against ``reference`` (100 = identical; 90
    visually lossless, 70 high, 50 medium, 30 low quality; can go negative)."""
    ref_c, ref_a = _split_alpha(reference)
    dis_c, dis_a = _split_alpha(distorted)
    if (ref_a is None) != (dis_a is None):
        raise MetricInputError(
            "ssimulacra2: mode mismatch: reference is " + ("RGBA" if ref_a is not None else
                                                           "not RGBA") +
            ", distorted is " + ("RGBA" if dis_a is not None else "not RGBA"))
    ref, dis = check_pair(ref_c, dis_c, "ssimulacra2")
    if ref_a is not None:
        check_pair(ref_a, dis_a, "ssimulacra2 (alpha)")
    h, w = ref.shape[:2]
    if h < MIN_SIZE or w < MIN_SIZE:
        raise MetricInputError(f"ssimulacra2: image is {w}x{h}; the minimum is "
                               f"{MIN_SIZE}x{MIN_SIZE} pixels")
    if ref_a is None:
        if np.array_equal(ref, dis):
            return 100.0
        return score_linear(_linear_pair(ref, dis))
    if np.array_equal(ref, dis) and np.array_equal(ref_a, dis_a):
        return 100.0
    return min(score_linear(np.stack([_blend(ref, ref_a, bg), _blend(dis, dis_a, bg)]))
               for bg in _ALPHA_BACKGROUNDS)
