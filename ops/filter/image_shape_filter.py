"""Keep samples whose images' width and height lie in range (read from headers only)."""
from __future__ import annotations

import sys

from ops.fields import Fields, StatsKeys
from ops.image.io import read_header
from ops.registry import OPERATORS

from ._image_filter import ImageHeaderFilter


@OPERATORS.register_module("image_shape_filter")
class ImageShapeFilter(ImageHeaderFilter):
    """Width and height as displayed (after EXIF orientation) within the given bounds.
    Stats: ``image_width`` and ``image_height``, one value per image."""

    stat_key = StatsKeys.image_width

    def __init__(self, min_width: int = 1, max_width: int = sys.maxsize, min_height: int = 1,
                 max_height: int = sys.maxsize, **kwargs):
        super().__init__(**kwargs)
        if min_width > max_width or min_height > max_height:
            raise ValueError("min_width/min_height must not exceed max_width/max_height")
        self.min_width, self.max_width = min_width, max_width
        self.min_height, self.max_height = min_height, max_height

    def compute_stats_single(self, sample: dict) -> dict:
        stats = sample[Fields.stats]
        if StatsKeys.image_width in stats and StatsKeys.image_height in stats:
            return sample
        paths = self.image_paths(sample, none_ok=True)
        headers = [read_header(p) for p in paths]
        stats[StatsKeys.image_width] = [h.width for h in headers]
        stats[StatsKeys.image_height] = [h.height for h in headers]
        return sample

    def process_single(self, sample: dict):
        ws = sample[Fields.stats][StatsKeys.image_width]
        hs = sample[Fields.stats][StatsKeys.image_height]
        if not ws:
            return True
        # as in Data-Juicer, the interval settings apply to each dimension; both must pass
        ok = [self.in_range(w, self.min_width, self.max_width) and
              self.in_range(h, self.min_height, self.max_height) for w, h in zip(ws, hs)]
        if (any(ok) if self.any else all(ok)):
            return True
        shapes = ", ".join(f"{w}x{h}" for w, h in zip(ws, hs))
        return False, (f"shape {shapes} outside width {self._span(self.min_width, self.max_width)}"
                       f" / height {self._span(self.min_height, self.max_height)}")

    def _span(self, lo: int, hi: int) -> str:
        """The kept range as a reader wants it: an unset maximum is not printed as
        sys.maxsize."""
        if hi < sys.maxsize or self.reversed_range:
            return self.range_text(lo, hi if hi < sys.maxsize else None)
        return f"{'>=' if self.min_closed_interval else '>'} {lo}"
