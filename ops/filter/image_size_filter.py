"""Keep samples whose image files' size in bytes lies in range (no decoding, just stat)."""
from __future__ import annotations

import re

from ops.base import OpError
from ops.fields import StatsKeys
from ops.image.io import file_size
from ops.image.remote import RemoteError, is_url, stat_size
from ops.registry import OPERATORS

from ._image_filter import ImageHeaderFilter

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024 ** 2, "MB": 1024 ** 2,
          "MIB": 1024 ** 2, "G": 1024 ** 3, "GB": 1024 ** 3, "GIB": 1024 ** 3,
          "T": 1024 ** 4, "TB": 1024 ** 4, "TIB": 1024 ** 4}


def size_to_bytes(size) -> int:
    """'5MB' -> 5 * 1024**2.  Like Data-Juicer, KB/MB/GB/TB are binary (1024-based)."""
    if isinstance(size, (int, float)):
        return int(size)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(size))
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"cannot read size {size!r}: use a number of bytes or e.g. '5MB', "
                         "'200KB', '1.5GB'")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


@OPERATORS.register_module("image_size_filter")
class ImageSizeFilter(ImageHeaderFilter):
    """File size in bytes within [min_size, max_size].  Stats: ``image_sizes``."""

    stat_key = StatsKeys.image_sizes

    def __init__(self, min_size: str = "0", max_size: str = "1TB", **kwargs):
        super().__init__(**kwargs)
        self.min_size, self.max_size = size_to_bytes(min_size), size_to_bytes(max_size)
        if self.min_size > self.max_size:
            raise ValueError("min_size must not exceed max_size")

    def measure(self, path: str):
        if is_url(path):
            try:
                return stat_size(path)
            except RemoteError as exc:
                raise OpError(str(exc)) from None
        try:
            return file_size(path)
        except FileNotFoundError:
            raise OpError(f"{path}: file not found") from None

    def bounds(self):
        return self.min_size, self.max_size
