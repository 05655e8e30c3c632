"""Image selection by cross-tile coefficient of variation, the anisotropic distortion map and
the most informative crop window (largest window sum via an integral image)."""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np

from ops.image.interpolate import setting_for_target, value_at_setting


def coefficient_of_variation(values: Sequence[float]) -> Optional[float]:
    """Population std / |mean|; None for fewer than 2 values or a zero mean."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size < 2:
        return None
    mean = float(np.mean(v))
    if abs(mean) < 1e-12:
        return None
    return float(np.std(v)) / abs(mean)


def predicted_outputs(curves: dict, target: float, method: str = "pchip") -> dict:
    """{tile: output metric predicted at the setting reaching ``target``} for every tile whose
    measurements reach it.  ``curves`` maps tile -> (settings, target-metric values,
    output-metric values)."""
    out = {}
    for tile, (settings, tvals, ovals) in curves.items():
        s = setting_for_target(settings, tvals, target, method)
        if s is None:
            continue
        v = value_at_setting(settings, ovals, s, method)
        if v is not None:
            out[tile] = v
    return out


def image_score(curves: dict, targets: Sequence[float], method: str = "pchip"
                ) -> Optional[float]:
    """Mean over the targets of the cross-tile CV of the output metric (targets no two tiles
    reach are left out); None when no target has two tiles."""
    cvs = [coefficient_of_variation(list(predicted_outputs(curves, t, method).values()))
           for t in targets]
    cvs = [c for c in cvs if c is not None]
    return float(np.mean(cvs)) if cvs else None


def select_image(candidates: Sequence, curves_of: Callable, targets: Sequence[float],
                 method: str = "pchip"):
    """The candidate with the highest score (first one on ties) and every candidate's score.

    ``curves_of(candidate)`` returns that candidate's curves (see ``predicted_outputs``).
    Returns ``(best or None, [score | None per candidate])``."""
    scores = [image_score(curves_of(c), targets, method) for c in candidates]
    best, best_score = None, -math.inf
    for c, s in zip(candidates, scores):
        if s is not None and s > best_score:
            best, best_score = c, s
    return best, scores


def anisotropic_map(maps_per_target: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """Mean over targets of the pixel-wise std across the variants of each target.

    Targets with fewer than two variants carry no disagreement and are left out; when no target
    has two, the mean distortion of all variants stands in."""
    stds = [np.std(np.stack(ms), axis=0) for ms in maps_per_target if len(ms) >= 2]
    if stds:
        return np.mean(np.stack(stds), axis=0).astype(np.float32)
    every = [m for ms in maps_per_target for m in ms]
    if not every:
        raise ValueError("anisotropic_map: no distortion maps")
    return np.mean(np.stack(every), axis=0).astype(np.float32)


def best_window(score: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the window (clipped to the map) with the largest sum of ``score``,
    found with an integral image; the first (top-most, then left-most) wins ties."""
    if score.ndim != 2 or score.size == 0:
        raise ValueError(f"best_window: need a non-empty 2-D map, got shape {score.shape}")
    H, W = score.shape
    w, h = min(int(width), W), min(int(height), H)
    if w < 1 or h < 1:
        raise ValueError(f"best_window: window {width}x{height} is empty")
    s = np.nan_to_num(score.astype(np.float64), nan=0.0)
    ii = np.zeros((H + 1, W + 1), dtype=np.float64)
    ii[1:, 1:] = s.cumsum(0).cumsum(1)
    sums = ii[h:, w:] - ii[:-h, w:] - ii[h:, :-w] + ii[:-h, :-w]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(x), int(y), w, h


def centred_window(cx: float, cy: float, size: int, region: tuple[int, int, int, int]):
    """A size x size window centred on (cx, cy), shifted (and clipped) to lie in ``region``
    (x, y, w, h)."""
    rx, ry, rw, rh = region
    w, h = min(size, rw), min(size, rh)
    x = int(round(cx - w / 2))
    y = int(round(cy - h / 2))
    x = min(max(x, rx), rx + rw - w)
    y = min(max(y, ry), ry + rh - h)
    return x, y, w, h
