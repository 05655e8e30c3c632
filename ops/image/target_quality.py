"""The smallest encoding of an image that reaches a perceptual-quality target.

For every candidate format: encode at a few probe settings, measure the metric against the
source, interpolate the setting that reaches the target (``ops.image.interpolate``), encode
there and step up until the measured value reaches it.  Only measured encodes count: the
returned encoding is guaranteed to reach the target.  The winner is the fewest bytes over all
formats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .codecs import CodecError, encode

METRIC_KEYS = {"ssimulacra2": "ssimulacra2", "butteraugli": "butteraugli_max"}
HIGHER_IS_BETTER = {"ssimulacra2": True, "butteraugli": False}
# Probe settings per format (quality scale of each encoder) and fixed encoder parameters.
DEFAULT_PROBES = {"jpeg": [40, 60, 75, 88, 97], "webp": [40, 60, 75, 88, 97],
                  "avif": [30, 50, 65, 80, 92], "jxl": [40, 60, 75, 88, 97]}
DEFAULT_PARAMS = {"jpeg": {"optimize": True, "subsampling": "4:2:0"}, "webp": {"method": 4},
                  "avif": {"speed": 6}, "jxl": {"effort": 7}}
EXTENSIONS = {"jpeg": ".jpg", "webp": ".webp", "avif": ".avif", "jxl": ".jxl"}
MAX_QUALITY = {"jpeg": 100, "webp": 100, "avif": 100, "jxl": 99}  # jxl 100 is lossless


@dataclass
class Trial:
    format: str
    quality: int
    nbytes: int
    value: float
    data: bytes = field(repr=False, default=b"")


@dataclass
class Choice:
    """The winning encoding, or None when no format reached the target."""

    best: Optional[Trial]
    trials: list          # every measured (format, quality, bytes, value)
    encodes: int


def measure_metric(reference: np.ndarray, decoded: np.ndarray, metric: str,
                   threads: int = 1, linear: Optional[tuple] = None) -> float:
    from .metrics import measure
    return float(measure(reference, decoded, metrics=(metric,), threads=threads,
                         linear=linear)[METRIC_KEYS[metric]])


@dataclass
class Source:
    """One image to transcode: its sRGB pixels and, for a file with a non-sRGB ICC profile
    (Display P3, Adobe RGB ...), its own numbers and profile.  Formats that embed a profile
    get the own numbers with the profile (wide gamut kept); the others (JPEG XL here) the
    sRGB conversion.  The metric compares float linear sRGB, as the reference tools do."""

    srgb: np.ndarray
    own: Optional[np.ndarray] = None
    icc: Optional[bytes] = None

    def __post_init__(self):
        self.linear = None
        if self.icc is not None:
            from .colour import linear_srgb
            self.linear = linear_srgb(self.own, self.icc)

    def keeps_profile(self, fmt: str) -> bool:
        from .colour import KEEPS_PROFILE
        return self.icc is not None and KEEPS_PROFILE.get(fmt, False)

    def encode(self, fmt: str, threads: int, **params):
        if self.keeps_profile(fmt):
            return encode(self.own, fmt, threads=threads, icc_profile=self.icc, **params)
        return encode(self.srgb, fmt, threads=threads, **params)

    def value(self, enc, metric: str, threads: int) -> float:
        linear = None
        if self.icc is not None:
            from .colour import linear_srgb
            copy = enc.raw if enc.raw is not None else enc.decoded
            linear = (self.linear, linear_srgb(copy, enc.icc_profile))
        return measure_metric(self.srgb, enc.decoded, metric, threads, linear)


def reaches(value: float, target: float, metric: str) -> bool:
    return value >= target if HIGHER_IS_BETTER[metric] else value <= target


class TargetSearch:
    """Search one image: ``run(reference) -> Choice``."""

    def __init__(self, metric: str, target: float, formats: list[str],
                 probes: Optional[dict] = None, params: Optional[dict] = None,
                 threads: int = 1):
        if metric not in METRIC_KEYS:
            raise ValueError(f"metric must be one of {', '.join(METRIC_KEYS)}, got {metric!r}")
        if not formats:
            raise ValueError("formats: name at least one of jpeg, webp, avif, jxl")
        unknown = [f for f in formats if f not in DEFAULT_PROBES]
        if unknown:
            raise ValueError(f"unknown format(s) {unknown}; known: {', '.join(DEFAULT_PROBES)}")
        self.metric, self.target, self.formats = metric, float(target), list(formats)
        self.probes = {f: sorted(int(q) for q in (probes or {}).get(f, DEFAULT_PROBES[f]))
                       for f in self.formats}
        for f, qs in self.probes.items():
            if len(qs) < 2 or qs[0] < 1 or qs[-1] > MAX_QUALITY[f]:
                raise ValueError(f"probes.{f}: give >= 2 qualities in [1, {MAX_QUALITY[f]}]")
        self.params = {f: dict(DEFAULT_PARAMS[f], **(params or {}).get(f, {}))
                       for f in self.formats}
        for f in self.formats:  # bad encoder parameters fail at recipe validation
            from .codecs import validate_params
            validate_params(f, dict(self.params[f], quality=self.probes[f][-1]))
        self.threads = threads

    def _trial(self, ref: Source, fmt: str, q: int, seen: dict) -> Trial:
        if (fmt, q) not in seen:
            enc = ref.encode(fmt, self.threads, quality=q, **self.params[fmt])
            value = ref.value(enc, self.metric, self.threads)
            seen[(fmt, q)] = Trial(fmt, q, enc.nbytes, value, enc.data)
        return seen[(fmt, q)]

    def _search_format(self, ref: Source, fmt: str, seen: dict) -> Optional[Trial]:
        from .interpolate import setting_for_target
        probes = [self._trial(ref, fmt, q, seen) for q in self.probes[fmt]]
        passing = [t for t in probes if reaches(t.value, self.target, self.metric)]
        if not passing:
            return None
        upper = min(t.quality for t in passing)   # the lowest probe known to pass
        q = setting_for_target([t.quality for t in probes], [t.value for t in probes],
                               self.target)
        if q is not None and math.ceil(q) < upper:
            for cand in range(max(1, math.ceil(q)), upper):  # step up to the first that passes
                t = self._trial(ref, fmt, cand, seen)
                if reaches(t.value, self.target, self.metric):
                    passing.append(t)
                    break
        return min(passing, key=lambda t: (t.nbytes, t.quality))

    def run(self, reference) -> Choice:
        """``reference``: sRGB pixels (uint8 HxWx3) or a :class:`Source`."""
        if not isinstance(reference, Source):
            reference = Source(np.asarray(reference))
        seen: dict = {}
        winners = []
        for fmt in self.formats:
            try:
                t = self._search_format(reference, fmt, seen)
            except CodecError:
                t = None  # e.g. an image size a codec refuses: the other formats still count
            if t is not None:
                winners.append(t)
        best = min(winners, key=lambda t: (t.nbytes, self.formats.index(t.format))) \
            if winners else None
        trials = [{"format": t.format, "quality": t.quality, "bytes": t.nbytes,
                   "value": round(t.value, 4)} for t in seen.values()]
        return Choice(best, trials, len(seen))
