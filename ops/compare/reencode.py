"""Re-encode a source view at the setting that reaches a metric target: interpolate from the
study's measurements, then refine with the re-encodes' own measurements (secant-like steps on
the same monotone curve)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ops.image.interpolate import setting_for_target

from .study import METRICS, StudyError

# |measured - target| at which refinement stops: absolute, or relative for bpp / Butteraugli
CLOSE = {"ssimulacra2": 0.5, "psnr": 0.1, "ssim": 0.002}
CLOSE_RELATIVE = {"bits_per_pixel": 0.02, "butteraugli": 0.02}


@dataclass
class Reached:
    """The encode chosen for one tile and target."""

    setting: float                  # the value given to the encoder
    interpolated: float             # the first estimate, from the study's measurements
    achieved: float                 # the target metric measured on the chosen encode
    encoded: object                 # ops.image.codecs.Encoded
    tries: list = field(default_factory=list)     # [(setting, achieved)] in order


def encode_setting(fmt: str, name: str, value: float):
    """An interpolated setting as the encoder takes it (clamped; rounded for integers)."""
    from ops.image.codecs import PARAMS
    p = PARAMS[fmt].get(name)
    if p is None:
        raise StudyError(f"{fmt}: the swept setting '{name}' is not an encoder parameter")
    v = min(max(float(value), p.lo), p.hi)
    return int(round(v)) if p.kind is int else round(v, 1)


def _close(metric: str, got: float, target: float) -> bool:
    if metric in CLOSE_RELATIVE:
        return abs(got - target) <= CLOSE_RELATIVE[metric] * abs(target)
    return abs(got - target) <= CLOSE[metric]


def linear_pair(own: Optional[tuple], enc) -> Optional[tuple]:
    """Float linear-sRGB (source, copy) of a colour-managed source, as the sweep measured
    SSIMULACRA2 and Butteraugli; None for untagged / sRGB sources."""
    if own is None:
        return None
    from ops.image.colour import linear_srgb
    copy = enc.raw if enc.raw is not None else enc.decoded
    return linear_srgb(own[0], own[1]), linear_srgb(copy, enc.icc_profile)


def target_value(view: np.ndarray, enc, metric: str, threads: int = 1,
                 own: Optional[tuple] = None) -> float:
    """The target metric of one encode (bits per pixel needs no decode comparison)."""
    if metric == "bits_per_pixel":
        return enc.bpp
    from ops.image.metrics import measure
    linear = linear_pair(own, enc) if metric in ("ssimulacra2", "butteraugli") else None
    return float(measure(view, enc.decoded, None, [metric], threads=threads,
                         linear=linear)[METRICS[metric][0]])


def reach_target(view: np.ndarray, fmt: str, params: dict, name: str, settings: list,
                 values: list, metric: str, target: float, refine: int = 2,
                 threads: int = 1, method: str = "pchip",
                 own: Optional[tuple] = None) -> Optional[Reached]:
    """Encode ``view`` at the setting whose interpolated ``metric`` equals ``target``; with
    ``refine`` > 0, add each re-encode's measurement to the curve and solve again while it
    misses by more than CLOSE.  Returns the closest encode, or None when the study's
    measurements do not reach the target (no extrapolation).  ``own`` = (the view's own
    numbers, their ICC profile, keep): the source is colour-managed; with keep those numbers
    are encoded with the profile embedded, as the sweep did (``view`` is the sRGB conversion
    measured against)."""
    from ops.image.codecs import encode
    first = setting_for_target(settings, values, target, method)
    if first is None:
        return None
    xs, ys = list(settings), list(values)
    s, tried = first, {}
    for step in range(refine + 1):
        value = encode_setting(fmt, name, s)
        if value in tried:
            break
        if own is not None and own[2]:
            enc = encode(own[0], fmt, threads=threads, icc_profile=own[1],
                         **{**params, name: value})
        else:
            enc = encode(view, fmt, threads=threads, **{**params, name: value})
        got = target_value(view, enc, metric, threads, own)
        tried[value] = (got, enc)
        if _close(metric, got, target) or step == refine:
            break
        xs.append(value)
        ys.append(got)
        nxt = setting_for_target(xs, ys, target, method)
        if nxt is None:
            break
        s = nxt
    best = min(tried, key=lambda v: abs(tried[v][0] - target))
    return Reached(best, first, tried[best][0], tried[best][1],
                   [(v, g) for v, (g, _) in tried.items()])
