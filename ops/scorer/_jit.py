"""numba kernels for the scorer's per-image features: one pass where numpy needs many.

The tests hold them to plain definitions: the gradient pass to a numpy one (integer sums,
exactly equal), the quantisation fit to the network's ``model.quantisation_fit`` (float32
summed in another order, ~1e-7 relative).  They are here for time: the scoring benchmark
is held to 50% of decode-only throughput.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def gradient_pass(y, th, tw):  # pragma: no cover - compiled
    """Over the whole-block area (8th x 8tw) of the uint8 luma plane ``y``: the block
    entropies (|differences| of neighbours inside each block), the column profile (sum over
    rows of |y[:, j+1] - y[:, j]|) and the row profile; and the histogram of y[::2, ::2]
    over the whole plane.  Loops run block by block with fixed-length inner loops, so the
    block-edge test never sits in the innermost loop."""
    ent = np.zeros((th, tw), np.int32)
    if th == 0 or tw == 0:          # no whole block: nothing to profile
        th = tw = 0
    col = np.zeros(max(8 * tw - 1, 0), np.int64)
    row = np.zeros(max(8 * th - 1, 0), np.int64)
    h, w = 8 * th, 8 * tw
    for i in range(h):
        bi = i // 8
        inner = i % 8 != 7                      # pair (i, i+1) inside a block row
        last = i + 1 == h
        rs = 0
        for bj in range(tw):
            x0 = 8 * bj
            s = 0
            for c in range(7):                  # horizontal pairs inside the block
                d = abs(np.int32(y[i, x0 + c + 1]) - np.int32(y[i, x0 + c]))
                col[x0 + c] += d
                s += d
            if bj + 1 < tw:                     # the pair across the block edge
                col[x0 + 7] += abs(np.int32(y[i, x0 + 8]) - np.int32(y[i, x0 + 7]))
            if not last:
                v = 0
                for c in range(8):              # vertical pairs (i, i+1)
                    v += abs(np.int32(y[i + 1, x0 + c]) - np.int32(y[i, x0 + c]))
                rs += v
                if inner:
                    s += v
            ent[bi, bj] += s
        if not last:
            row[i] = rs
    hist = np.zeros(256, np.int64)
    for i in range(0, y.shape[0], 2):
        for j in range(0, y.shape[1], 2):
            hist[y[i, j]] += 1
    return ent, col, row, hist


@njit(cache=True, nogil=True)
def quantisation_fit_mean(c, inv):  # pragma: no cover - compiled
    """Mean over blocks of ``model.quantisation_fit``: (M, 64) float32 luma coefficients,
    (Q, 64) float32 reciprocal steps -> (2Q,) float32."""
    m, q = c.shape[0], inv.shape[0]
    out = np.zeros(2 * q, np.float64)
    for b in range(m):
        for t in range(q):
            off = np.float32(0.0)
            n = 0
            for u in range(64):
                r = c[b, u] * inv[t, u]
                if abs(r) >= 0.5:
                    n += 1
                    off += abs(r - np.float32(np.rint(r)))
            out[t] += 4.0 * off / (n + 1.0)
            out[q + t] += n / 64.0
    return (out / max(m, 1)).astype(np.float32)
