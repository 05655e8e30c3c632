"""The one definition of a study's figure settings.

``comparison_figure_aggregator`` takes these fields as its own parameters (its signature is
built from this dataclass, so recipe validation sees them typed) and ``dj-compare`` builds its
command-line flags from the same fields; both end in :class:`FigureOptions`.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from dataclasses import dataclass, field
from typing import Literal, Optional

from .study import DEFAULT_TARGETS, METRICS, StudyError, TargetGroup

MAX_AUTO_COLUMNS = 6


def _opt(default, help: str, **kw):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class FigureOptions:
    """Figure settings of a study (defaults are the documented ones)."""

    targets: Optional[list[dict]] = _opt(
        None, "target groups [{metric, values}]; metric one of " + ", ".join(METRICS) +
        " (default: SSIMULACRA2 60/70/80 and 0.5/1.0/1.5 bits per pixel)", yaml=True)
    tile_parameter: str = _opt(
        "format", "what differs between tiles: format, crop, resolution or an encoder "
        "parameter such as speed")
    exclude_images: list[str] = _opt(
        [], "source images never chosen for figures (file name, stem, path or sha256)",
        yaml=True)
    crop_size: int = _opt(128, "crop side before zoom (px)")
    zoom: int = _opt(3, "nearest-neighbour zoom factor")
    max_columns: Optional[int] = _opt(
        None, f"tiles per figure row (default: every tile on one row up to "
        f"{MAX_AUTO_COLUMNS}, else rows of equal length)")
    source_image: Optional[str] = _opt(
        None, "use this measured source image instead of the CV-based choice")
    threads: int = _opt(1, "encoder / Butteraugli threads")
    refine: int = _opt(2, "extra re-encodes per tile towards a missed target (0 = "
                          "interpolation only)")
    interpolation: Literal["pchip", "linear"] = _opt(
        "pchip", "setting that reaches a target: pchip (monotone cubic) or linear (straight "
        "line between the two bracketing points, as the reference tool)")
    report: bool = _opt(True, "write the interactive HTML report")
    index_dir: Optional[str] = _opt(
        None, "also write INDEX_DIR/index.html linking the report of every study in "
              "INDEX_DIR/*/comparison/ (the study recipes use outputs)")

    def __post_init__(self):
        self.target_groups = parse_targets(self.targets)
        if not isinstance(self.tile_parameter, str) or not self.tile_parameter:
            raise StudyError("tile_parameter must be a non-empty string")
        if not isinstance(self.exclude_images, list):
            raise StudyError("exclude_images must be a list")
        self.exclude_images = [str(e) for e in self.exclude_images]
        self.check()

    def check(self) -> None:
        if self.crop_size < 8:
            raise StudyError(f"crop_size must be >= 8, got {self.crop_size}")
        if not 1 <= self.zoom <= 16:
            raise StudyError(f"zoom must be in [1, 16], got {self.zoom}")
        if not 0 <= self.refine <= 5:
            raise StudyError(f"refine must be in [0, 5], got {self.refine}")
        if self.max_columns is not None and self.max_columns < 1:
            raise StudyError(f"max_columns must be >= 1, got {self.max_columns}")
        if self.threads < 1:
            raise StudyError(f"threads must be >= 1, got {self.threads}")
        if self.interpolation not in ("pchip", "linear"):
            raise StudyError(f"interpolation must be pchip or linear, got {self.interpolation!r}")

    def columns(self, n_tiles: int) -> int:
        """Tiles per row for a figure of ``n_tiles`` tiles (the original included)."""
        if self.max_columns is not None:
            return self.max_columns
        rows = -(-n_tiles // MAX_AUTO_COLUMNS)
        return max(1, -(-n_tiles // rows))


OPTION_FIELDS = tuple(f for f in dataclasses.fields(FigureOptions))
OPTION_NAMES = tuple(f.name for f in OPTION_FIELDS)


def parse_targets(raw) -> list[TargetGroup]:
    """Validate target groups ``[{metric, values}]`` (None -> the defaults)."""
    raw = list(DEFAULT_TARGETS) if raw is None or raw == [] else raw
    if not isinstance(raw, list):
        raise StudyError(f"targets: expected a list of {{metric, values}}, got {raw!r}")
    groups: list[TargetGroup] = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict) or set(t) != {"metric", "values"}:
            raise StudyError(f"targets[{i}]: expected {{metric, values}}, got {t!r}")
        if t["metric"] not in METRICS:
            raise StudyError(f"targets[{i}].metric: unknown '{t['metric']}'; known: "
                             f"{', '.join(METRICS)}")
        vals = t["values"] if isinstance(t["values"], list) else [t["values"]]
        if not vals or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                               and math.isfinite(v) for v in vals):
            raise StudyError(f"targets[{i}].values: need a list of numbers, got "
                             f"{t['values']!r}")
        if any(g.metric == t["metric"] for g in groups):
            raise StudyError(f"targets: metric '{t['metric']}' listed twice")
        groups.append(TargetGroup(t["metric"], list(vals)))
    return groups


def option_parameters(kind=inspect.Parameter.KEYWORD_ONLY) -> list[inspect.Parameter]:
    """The fields as ``inspect.Parameter`` objects (for an op's signature)."""
    hints = typing.get_type_hints(FigureOptions)
    out = []
    for f in OPTION_FIELDS:
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(inspect.Parameter(f.name, kind, default=default, annotation=hints[f.name]))
    return out


def with_option_parameters(init):
    """Give ``init(self, ..., **kwargs)`` a signature that lists the options before
    ``**kwargs``, so recipe validation and the operator reference see every option typed."""
    sig = inspect.signature(init)
    params = list(sig.parameters.values())
    var_kw = [p for p in params if p.kind is p.VAR_KEYWORD]
    fixed = [p.replace(kind=p.KEYWORD_ONLY) if i and p.kind is p.POSITIONAL_OR_KEYWORD else p
             for i, p in enumerate(params) if p.kind is not p.VAR_KEYWORD]
    init.__signature__ = sig.replace(parameters=fixed + option_parameters() + var_kw)
    hints = typing.get_type_hints(FigureOptions)
    init.__annotations__ = {**getattr(init, "__annotations__", {}),
                            **{n: hints[n] for n in OPTION_NAMES}}
    return init
