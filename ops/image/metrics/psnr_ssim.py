"""PSNR and SSIM between a reference and a distorted image.

PSNR: 10 log10(data_range^2 / MSE), the MSE taken over every pixel and every channel together
(``channels="rgb"``) or over BT.601 luma only (``channels="y"``); identical images give +inf.

SSIM: Wang, Bovik, Sheikh & Simoncelli (2004) with their reference settings -- an 11x11
Gaussian window (sigma 1.5, truncated at 3.5 sigma), K1 = 0.01, K2 = 0.03, population
(not sample) covariances, data range 255 for uint8 -- computed per colour channel and
averaged over R, G and B (``channels="rgb"``, the default) or on BT.601 luma Y = 0.299 R +
0.587 G + 0.114 B (``channels="y"``).  Only windows lying fully inside the image are averaged
(a 5-pixel border is left out).  This equals scikit-image's
``structural_similarity(..., channel_axis=2, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)``.
"""
from __future__ import annotations

import numpy as np

from ._inputs import MetricInputError, check_pair

SIGMA = 1.5
TRUNCATE = 3.5
K1, K2 = 0.01, 0.03
LUMA = (0.299, 0.587, 0.114)


def _channels(arr: np.ndarray, channels: str) -> np.ndarray:
    """HxW or HxWx3 -> stack of planes (C, H, W) in float64."""
    a = arr.astype(np.float64, copy=False)
    if a.ndim == 2:
        return a[None]
    if channels == "rgb":
        return np.ascontiguousarray(np.moveaxis(a, 2, 0))
    if channels == "y":
        return (a @ np.asarray(LUMA))[None]
    raise ValueError(f"channels must be 'rgb' or 'y', got {channels!r}")


def _data_range(ref: np.ndarray, data_range) -> float:
    if data_range is None:
        if ref.dtype != np.uint8:
            raise MetricInputError("float images need an explicit data_range (e.g. 255 or 1)")
        return 255.0
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range!r}")
    return float(data_range)


def psnr(reference, distorted, data_range=None, channels: str = "rgb") -> float:
    """Peak signal-to-noise ratio in dB (+inf for identical images)."""
    ref, dis = check_pair(reference, distorted, "psnr")
    peak = _data_range(ref, data_range)
    if channels == "rgb" or ref.ndim == 2:
        diff = (ref.astype(np.float64) - dis.astype(np.float64)).ravel()
        mse = float(np.dot(diff, diff)) / diff.size      # exact for uint8: integers < 2^53
    else:
        diff = _channels(ref, channels) - _channels(dis, channels)
        mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak * peak / mse))


def _kernel() -> np.ndarray:
    radius = int(TRUNCATE * SIGMA + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / SIGMA) ** 2)
    return k / k.sum()


def _blur_valid(plane: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of one HxW plane with the 1-D kernel k."""
    from scipy.ndimage import correlate1d
    r = len(k) // 2
    out = correlate1d(plane, k, axis=0, mode="constant")
    return correlate1d(out, k, axis=1, mode="constant")[r:-r, r:-r]


def ssim_map(reference, distorted, data_range=None, channels: str = "rgb") -> np.ndarray:
    """Per-window SSIM, shape (C, H - 10, W - 10)."""
    ref, dis = check_pair(reference, distorted, "ssim")
    k = _kernel()
    if min(ref.shape[:2]) < len(k):
        raise MetricInputError(f"ssim: images must be at least {len(k)}x{len(k)} pixels, got "
                               f"{ref.shape[1]}x{ref.shape[0]}")
    peak = _data_range(ref, data_range)
    c1, c2 = (K1 * peak) ** 2, (K2 * peak) ** 2
    maps = []
    for x, y in zip(_channels(ref, channels), _channels(dis, channels)):
        mx, my = _blur_valid(x, k), _blur_valid(y, k)
        mx2, my2, mxy = mx * mx, my * my, mx * my
        vx = _blur_valid(x * x, k) - mx2
        vy = _blur_valid(y * y, k) - my2
        cxy = _blur_valid(x * y, k) - mxy
        maps.append(((2 * mxy + c1) * (2 * cxy + c2)) / ((mx2 + my2 + c1) * (vx + vy + c2)))
    return np.stack(maps)


def ssim(reference, distorted, data_range=None, channels: str = "rgb") -> float:
    """Mean SSIM (1.0 for identical images); see the module docstring for the exact variant."""
    return float(ssim_map(reference, distorted, data_range, channels).mean(axis=(1, 2)).mean())
