"""The Gaussian blur of SSIMULACRA 2: libjxl's recursive Gaussian (sigma 1.5) as its exact FIR.

libjxl blurs with Charalampidis' recursive filter ("Recursive Implementation of the Gaussian
Filter Using Truncated Cosine Functions", 2016): three second-order resonators
``y_k[n] = n2_k * (x[n-N-1] + x[n+N-1]) - d1_k * y_k[n-1] - y_k[n-2]`` (k = 1, 3, 5) summed,
with zero padding outside the image.  A resonator with ``d1_k = -2 cos(w_k)`` and
``w_k = k*pi/(2N)`` has the impulse response ``n2_k sin(w_k (i+1)) / sin(w_k)``; feeding it the
pair ``x[n-N-1] + x[n+N-1]`` makes the two copies cancel after ``2N`` samples
(``sin(a - k*pi) = -sin(a)`` for odd k), so the whole filter is a finite, symmetric kernel of
``2N - 1`` taps.  We derive the recursion's coefficients exactly as the paper does, turn them
into those taps, and apply the kernel separably.  This is the exact filter; the C++ tool's
float32 recursion carries rounding noise (~1e-6 absolute) that never decays, which in flat
regions moves its scores by up to ~0.4 points -- hence the numba engine
(``_ssimulacra2_jit``) that reproduces that recursion; this FIR is the no-numba fallback.

The separable pass is written as banded matrix products: the image is cut into blocks of
``B`` outputs, each block is ``window (B + 2R) @ band matrix (B + 2R, B)``, so BLAS does the
arithmetic on whole blocks of all planes at once instead of one shifted copy per tap.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

SIGMA = 1.5
_BLOCK = 32


def recursive_gaussian_coefficients(sigma: float = SIGMA) -> tuple[int, np.ndarray, np.ndarray]:
    """(N, n2[3], d1[3]) of Charalampidis' three-resonator recursive Gaussian, as libjxl."""
    radius = float(round(3.2795 * sigma + 0.2546))          # paper eq. (57)
    omega = np.array([1.0, 3.0, 5.0]) * math.pi / (2.0 * radius)
    p = np.array([1.0, -1.0, 1.0]) / np.tan(0.5 * omega)      # eq. (37)
    r = np.array([1.0, -1.0, 1.0]) * p * p / np.sin(omega)    # eq. (44)
    rho = np.exp(-0.5 * sigma * sigma * omega * omega) / radius  # eq. (50)
    d_13 = p[0] * r[1] - r[0] * p[1]                          # eq. (52)
    d_35 = p[1] * r[2] - r[1] * p[2]
    d_51 = p[2] * r[0] - r[2] * p[0]
    zeta_15, zeta_35 = d_35 / d_13, d_51 / d_13
    a = np.array([p, r, [zeta_15, zeta_35, 1.0]])             # eq. (56)
    gamma = np.array([1.0, radius * radius - sigma * sigma,  # eq. (55)
                      zeta_15 * rho[0] + zeta_35 * rho[1] + rho[2]])
    beta = np.linalg.solve(a, gamma)                          # eq. (53)
    if abs(float(beta @ p) - 1.0) > 1e-12:                    # eq. (39): weights normalised
        raise ArithmeticError(f"recursive Gaussian weights do not sum to 1 for sigma={sigma}")
    n2 = -beta * np.cos(omega * (radius + 1.0))               # eq. (33)
    d1 = -2.0 * np.cos(omega)
    return int(radius), n2, d1


@functools.lru_cache(maxsize=4)
def gaussian_taps(sigma: float = SIGMA) -> np.ndarray:
    """The ``2N - 1`` symmetric FIR taps (float64) equal to the recursive filter's response."""
    n, n2, d1 = recursive_gaussian_coefficients(sigma)
    omega = np.arccos(-0.5 * d1)
    offsets = np.arange(-(n - 1), n)  # output n reads x[n + offset]
    taps = (n2[None, :] * np.sin(omega[None, :] * (n - offsets[:, None]))
            / np.sin(omega[None, :])).sum(axis=1)
    taps.setflags(write=False)
    return taps


@functools.lru_cache(maxsize=16)
def _band(block: int, sigma: float) -> np.ndarray:
    """(block + 2R, block) float32 matrix: column j holds the taps at rows j .. j + 2R."""
    taps = gaussian_taps(sigma)
    m = np.zeros((block + taps.size - 1, block), np.float32)
    for j in range(block):
        m[j:j + taps.size, j] = taps
    m.setflags(write=False)
    return m


def blur(planes: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """Blur every (H, W) plane of a (P, H, W) float32 stack, zero padding, as libjxl does."""
    if planes.ndim != 3:
        raise ValueError(f"blur expects a (P, H, W) stack, got shape {planes.shape}")
    p, h, w = planes.shape
    pad = (gaussian_taps(sigma).size - 1) // 2
    bh, bw = min(_BLOCK, h), min(_BLOCK, w)
    nh, nw = -(-h // bh), -(-w // bw)
    # Zero-padded copy: `pad` on the leading side, enough trailing rows/cols to fill blocks.
    xp = np.zeros((p, nh * bh + 2 * pad, nw * bw + 2 * pad), np.float32)
    xp[:, pad:pad + h, pad:pad + w] = planes
    # Vertical pass: out rows [i*bh, (i+1)*bh) = band.T @ padded rows [i*bh, i*bh + bh + 2R).
    s = xp.strides
    win = as_strided(xp, (p, nh, bh + 2 * pad, xp.shape[2]), (s[0], bh * s[1], s[1], s[2]),
                     writeable=False)
    vert = np.matmul(_band(bh, sigma).T, win).reshape(p, nh * bh, xp.shape[2])
    # Horizontal pass over the first h rows; the padding columns stayed zero above.
    s = vert.strides
    win = as_strided(vert, (nw, p, h, bw + 2 * pad), (bw * s[2], s[0], s[1], s[2]),
                     writeable=False)
    out = np.matmul(win, _band(bw, sigma))                     # (nw, P, H, bw)
    out = out.transpose(1, 2, 0, 3).reshape(p, h, nw * bw)
    return out[:, :, :w]
