"""Keep samples whose images' aspect ratio (width / height) lies in range (headers only)."""
from __future__ import annotations

from ops.fields import StatsKeys
from ops.image.io import read_header
from ops.registry import OPERATORS

from ._image_filter import ImageHeaderFilter


@OPERATORS.register_module("image_aspect_ratio_filter")
class ImageAspectRatioFilter(ImageHeaderFilter):
    """Aspect ratio = displayed width / displayed height.  Stats: ``aspect_ratios``."""

    stat_key = StatsKeys.aspect_ratios

    def __init__(self, min_ratio: float = 0.333, max_ratio: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        if min_ratio > max_ratio:
            raise ValueError("min_ratio must not exceed max_ratio")
        self.min_ratio, self.max_ratio = min_ratio, max_ratio

    def measure(self, path: str):
        h = read_header(path)
        return h.width / h.height

    def bounds(self):
        return self.min_ratio, self.max_ratio
