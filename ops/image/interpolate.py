"""Encoder setting that reaches a metric target; never extrapolates.

Two methods: ``pchip`` (monotone cubic through the measured points + root finding, linear
fallback) and ``linear`` (straight line between the two bracketing points, exactly as the
reference tool web-image-formats-research interpolates: repeated settings averaged, the first
adjacent pair of settings whose values bracket the target, inclusive; a flat pair gives its
midpoint).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

METHODS = ("pchip", "linear")


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"interpolation must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def _clean(settings: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted by setting, non-finite values dropped, repeated settings averaged."""
    pairs: dict = {}
    for s, v in zip(settings, values):
        if s is None or v is None:
            continue
        s, v = float(s), float(v)
        if math.isfinite(s) and math.isfinite(v):
            pairs.setdefault(s, []).append(v)
    xs = np.array(sorted(pairs), dtype=float)
    ys = np.array([float(np.mean(pairs[s])) for s in xs], dtype=float)
    return xs, ys


def _curve(xs: np.ndarray, ys: np.ndarray, method: str = "pchip"):
    """A callable through the points: PCHIP with >= 3 points (monotone between points, so a
    sign change inside a bracket is a root inside it), else piecewise linear."""
    if method == "pchip" and len(xs) >= 3:
        from scipy.interpolate import PchipInterpolator
        return PchipInterpolator(xs, ys, extrapolate=False)
    return lambda x: np.interp(x, xs, ys)


def setting_for_target(settings: Sequence[float], values: Sequence[float],
                       target: float, method: str = "pchip") -> Optional[float]:
    """The setting (e.g. quality) at which the measured metric ``values`` reach ``target``.

    Works for increasing and decreasing metrics.  Where the measurements are not monotone the
    lowest setting reaching the target wins (the cheapest encode).  Returns None when the
    target lies outside the measured range (no extrapolation) or fewer than 2 points exist.
    """
    check_method(method)
    xs, ys = _clean(settings, values)
    if len(xs) < 2 or not math.isfinite(float(target)):
        return None
    target = float(target)
    if method == "linear":
        return _linear_setting(xs, ys, target)
    if target < ys.min() or target > ys.max():
        return None
    f = _curve(xs, ys)
    for i in range(len(xs) - 1):
        if ys[i] == target:
            return float(xs[i])
        if (ys[i] - target) * (ys[i + 1] - target) < 0:
            return _root(f, xs[i], xs[i + 1], ys[i], ys[i + 1], target)
    return float(xs[-1]) if ys[-1] == target else None


def _linear_setting(xs: np.ndarray, ys: np.ndarray, target: float) -> Optional[float]:
    for i in range(len(xs) - 1):
        y0, y1 = ys[i], ys[i + 1]
        if min(y0, y1) <= target <= max(y0, y1):
            if y1 == y0:
                return float((xs[i] + xs[i + 1]) / 2.0)
            return float(xs[i] + (xs[i + 1] - xs[i]) * (target - y0) / (y1 - y0))
    return None


def _root(f, x0: float, x1: float, y0: float, y1: float, target: float) -> float:
    from scipy.optimize import brentq
    linear = x0 + (target - y0) * (x1 - x0) / (y1 - y0) if y1 != y0 else x0
    try:
        g0, g1 = float(f(x0)) - target, float(f(x1)) - target
        if g0 == 0:
            return float(x0)
        if g1 == 0:
            return float(x1)
        if g0 * g1 > 0 or not (math.isfinite(g0) and math.isfinite(g1)):
            return float(linear)
        return float(brentq(lambda x: float(f(x)) - target, x0, x1, xtol=1e-6))
    except (ValueError, RuntimeError):
        return float(linear)


def value_at_setting(settings: Sequence[float], values: Sequence[float],
                     setting: float, method: str = "pchip") -> Optional[float]:
    """A metric interpolated at ``setting`` (same curve as above); None outside the range."""
    check_method(method)
    xs, ys = _clean(settings, values)
    if len(xs) < 2 or setting < xs[0] or setting > xs[-1]:
        return float(ys[0]) if len(xs) == 1 and setting == xs[0] else None
    v = float(_curve(xs, ys, method)(setting))
    return v if math.isfinite(v) else None
