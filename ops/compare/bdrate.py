"""Bjøntegaard-delta rate (VCEG-M33) and its piecewise-cubic variant, and bootstrap intervals.

``bd_rate(rate_a, dist_a, rate_t, dist_t, "cubic")`` is the average rate difference of the test
curve against the anchor, in percent, over the overlap of their quality ranges: log10 rate as a
function of quality, fitted by a cubic polynomial (VCEG-M33) or interpolated piecewise-cubic
and monotone (``"pchip"``, as in the 2017 update / JVET's Excel sheet), integrated over the
overlap.  Negative = the test needs fewer bits for the same quality.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

BD_METHODS = ("cubic", "pchip")
MIN_POINTS = {"cubic": 4, "pchip": 2}


def rd_frontier(rates: Sequence[float], quality: Sequence[float], higher_is_better: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
    """Finite points sorted by rate, keeping only those that improve quality over every
    cheaper point (a codec never benefits from a costlier, worse setting); quality is returned
    ascending in 'better' order for higher_is_better, else descending."""
    pts = sorted((float(r), float(q)) for r, q in zip(rates, quality)
                 if r is not None and q is not None and math.isfinite(r) and r > 0
                 and math.isfinite(q))
    sign = 1.0 if higher_is_better else -1.0
    keep: list = []
    for r, q in pts:
        if not keep or sign * q > sign * keep[-1][1]:
            keep.append((r, q))
    return np.array([p[0] for p in keep]), np.array([p[1] for p in keep])


def _fit(q: np.ndarray, logr: np.ndarray, method: str):
    if method == "cubic":
        coeffs = np.polyfit(q, logr, 3)
        integral = np.polyint(coeffs)
        return lambda lo, hi: float(np.polyval(integral, hi) - np.polyval(integral, lo))
    from scipy.interpolate import PchipInterpolator
    f = PchipInterpolator(q, logr)
    return lambda lo, hi: float(f.integrate(lo, hi))


def bd_rate(rate_anchor, dist_anchor, rate_test, dist_test, method: str = "cubic",
            higher_is_better: bool = True) -> Optional[float]:
    """BD-rate in percent; None when a curve has too few frontier points or the quality
    ranges do not overlap."""
    if method not in BD_METHODS:
        raise ValueError(f"BD method must be one of {BD_METHODS}, got {method!r}")
    ra, qa = rd_frontier(rate_anchor, dist_anchor, higher_is_better)
    rt, qt = rd_frontier(rate_test, dist_test, higher_is_better)
    if len(ra) < MIN_POINTS[method] or len(rt) < MIN_POINTS[method]:
        return None
    if not higher_is_better:               # integrate over ascending quality values
        ra, qa, rt, qt = ra[::-1], qa[::-1], rt[::-1], qt[::-1]
    lo, hi = max(qa[0], qt[0]), min(qa[-1], qt[-1])
    if not hi > lo:
        return None
    ia = _fit(qa, np.log10(ra), method)(lo, hi)
    it = _fit(qt, np.log10(rt), method)(lo, hi)
    return float((10 ** ((it - ia) / (hi - lo)) - 1) * 100)


def bootstrap_interval(values: Sequence[float], statistic=np.mean, n: int = 1000,
                       level: float = 0.95, seed: int = 0) -> Optional[tuple[float, float]]:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (resampled with
    replacement, ``n`` times, fixed seed so reports are reproducible); None for < 2 values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size < 2 or n < 1:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n, v.size))
    stats = np.apply_along_axis(statistic, 1, v[idx]) if statistic is not np.mean \
        else v[idx].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def summary(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> dict:
    """n, mean, median, p05/p25/p75/p95, min, max and the bootstrap 95 % interval of the
    mean of the finite ``values``."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"n": 0}
    q = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])
    ci = bootstrap_interval(v, n=n_boot, seed=seed)
    return {"n": int(v.size), "mean": float(v.mean()), "median": float(q[2]),
            "p05": float(q[0]), "p25": float(q[1]), "p75": float(q[3]), "p95": float(q[4]),
            "min": float(v.min()), "max": float(v.max()),
            "ci95": [ci[0], ci[1]] if ci else None}
