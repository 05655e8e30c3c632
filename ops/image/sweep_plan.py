"""Study-grid expansion, crop / resize geometry, durations and the measurement cache of
``image_codec_sweep_mapper``."""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ops.image.codecs import CodecError, normalise_format, validate_params

MIN_FRAGMENT = 16          # smallest fragment side every metric can measure (SSIM needs 11)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])")


def parse_duration(value: Union[str, int, float, None]) -> Optional[float]:
    """'30m', '1h30m', '90s', '2.5h' or a number of seconds -> seconds (None stays None)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION.findall(text)
            if not parts or "".join(a + u for a, u in parts) != text:
                raise ValueError(f"time_budget: cannot parse {value!r}; use e.g. '30m', "
                                 "'1h30m', '90s' or a number of seconds")
            seconds = sum(float(a) * {"h": 3600, "m": 60, "s": 1}[u] for a, u in parts)
    else:
        raise ValueError(f"time_budget: expected a duration string or seconds, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"time_budget: must be positive, got {value!r}")
    return seconds


def expand_values(fmt: str, name: str, spec: Any) -> list:
    """A grid entry -> list of values: a scalar, a list, or {start, stop, step} (stop
    inclusive: {start: 50, stop: 100, step: 5} gives 50, 55, ..., 100)."""
    if isinstance(spec, dict):
        extra = set(spec) - {"start", "stop", "step"}
        if extra or not {"start", "stop"} <= set(spec):
            raise CodecError(f"{fmt}.{name}: a range needs 'start', 'stop' and optional "
                             f"'step', got keys {sorted(spec)}")
        start, stop, step = spec["start"], spec["stop"], spec.get("step", 1)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in (start, stop, step)) or step <= 0 or stop < start:
            raise CodecError(f"{fmt}.{name}: need numbers with start <= stop and step > 0, got "
                             f"{spec}")
        n = int((stop - start) / step + 1e-9)
        vals = [start + i * step for i in range(n + 1)]
        if all(isinstance(v, int) for v in (start, stop, step)):
            return vals
        return [round(v, 6) for v in vals]
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise CodecError(f"{fmt}.{name}: empty list")
        return list(spec)
    return [spec]


@dataclass(frozen=True)
class Setting:
    """One encoder configuration of the grid."""

    format: str
    params: dict = field(hash=False)          # complete, validated
    swept: tuple = ()                         # names of the params the grid varies

    def key(self) -> str:
        return json.dumps({"format": self.format, "params": self.params}, sort_keys=True)


def expand_grid(grid: dict) -> list[Setting]:
    """{format: {param: value | [values] | {start, stop, step}}} -> every combination, in
    the order given (formats, then params in their written order)."""
    if not isinstance(grid, dict) or not grid:
        raise CodecError("grid: give at least one format, e.g. {jpeg: {quality: [75, 90]}}")
    out: list[Setting] = []
    for raw_fmt, params in grid.items():
        fmt = normalise_format(raw_fmt)
        params = params or {}
        if not isinstance(params, dict):
            raise CodecError(f"grid.{raw_fmt}: expected a mapping of parameters, got {params!r}")
        names = list(params)
        lists = [expand_values(fmt, n, params[n]) for n in names]
        swept = tuple(n for n, vals in zip(names, lists) if len(vals) > 1)
        for combo in itertools.product(*lists):
            full = validate_params(fmt, dict(zip(names, combo)))
            out.append(Setting(fmt, full, swept))
    keys = [s.key() for s in out]
    if len(set(keys)) != len(keys):
        raise CodecError("grid: the same encoder setting appears twice")
    return out


def setting_of(s: Setting) -> dict:
    """The headline setting of a variant: {'name': 'quality', 'value': 75}."""
    p = s.params
    if s.format == "jxl" and p.get("lossless"):
        return {"name": "lossless", "value": True}
    if s.format == "jxl" and p.get("quality") is None:
        return {"name": "distance", "value": p["distance"]}
    if "quality" in s.swept or not s.swept:
        return {"name": "quality", "value": p["quality"]}
    return {"name": s.swept[0], "value": p[s.swept[0]]}


def parse_fragment(value, width: int, height: int) -> Optional[dict]:
    """[x, y, w, h] or {x, y, width|w, height|h} inside the image -> dict, None stays None."""
    if value is None:
        return None
    if isinstance(value, dict):
        try:
            x, y = value["x"], value["y"]
            w, h = value.get("width", value.get("w")), value.get("height", value.get("h"))
        except KeyError as exc:
            raise ValueError(f"fragment {value!r} lacks {exc}") from None
    elif isinstance(value, (list, tuple)) and len(value) == 4:
        x, y, w, h = value
    else:
        raise ValueError(f"fragment must be [x, y, width, height] or a dict, got {value!r}")
    try:
        x, y, w, h = (int(v) for v in (x, y, w, h))
    except (TypeError, ValueError):
        raise ValueError(f"fragment values must be integers, got {value!r}") from None
    if min(w, h) < MIN_FRAGMENT or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"fragment {[x, y, w, h]} must be at least {MIN_FRAGMENT}x"
                         f"{MIN_FRAGMENT} and lie inside the "
                         f"{width}x{height} image")
    return {"x": x, "y": y, "width": w, "height": h}


def crop_box(width: int, height: int, size: int, fragment: Optional[dict]) -> dict:
    """A size x size box (clipped to the image) centred on the fragment (or the image centre),
    shifted to stay inside the image and to contain the whole fragment when it fits."""
    cw, ch = min(size, width), min(size, height)
    if fragment is not None:
        cx = fragment["x"] + fragment["width"] / 2
        cy = fragment["y"] + fragment["height"] / 2
    else:
        cx, cy = width / 2, height / 2
    x = int(round(cx - cw / 2))
    y = int(round(cy - ch / 2))
    x = min(max(x, 0), width - cw)
    y = min(max(y, 0), height - ch)
    return {"size": size, "x": x, "y": y, "width": cw, "height": ch}


def scaled_size(width: int, height: int, kind: str, target: float) -> Optional[tuple]:
    """(w, h) for a 'scale' factor in (0, 1] or a 'long_side' in pixels; None when that would
    upscale."""
    scale = target if kind == "scale" else float(target) / max(width, height)
    if scale > 1.0 + 1e-9:
        return None
    return max(1, round(width * scale)), max(1, round(height * scale))


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class MeasurementCache:
    """One JSON file per (source image sha256, variant): written atomically, read on rerun."""

    def __init__(self, root: str):
        self.root = root

    @staticmethod
    def key(variant: dict) -> str:
        return hashlib.sha256(json.dumps(variant, sort_keys=True).encode()).hexdigest()[:24]

    def _path(self, sha: str, variant: dict) -> str:
        return os.path.join(self.root, sha[:2], sha, self.key(variant) + ".json")

    def get(self, sha: str, variant: dict) -> Optional[dict]:
        path = self._path(sha, variant)
        try:
            with open(path) as fh:
                rec = json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return rec if rec.get("variant") == json.loads(json.dumps(variant)) else None

    def put(self, sha: str, variant: dict, record: dict) -> None:
        path = self._path(sha, variant)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump({"variant": variant, **record}, fh, allow_nan=True)
        os.replace(tmp, path)
