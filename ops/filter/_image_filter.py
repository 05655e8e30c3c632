"""Shared base of the per-image header filters (shape, size, aspect ratio)."""
from __future__ import annotations

from typing import Literal

from ops.base import Filter
from ops.fields import Fields


class ImageHeaderFilter(Filter):
    """Keeps a sample when ``any`` (or ``all``) of its images lie within [min, max] of one
    stat (bounds closed or open, range reversed: see ``Filter.in_range``).  Samples without
    images are kept.  Subclasses set ``stat_key`` and implement ``measure(path) -> value``
    (headers only: no pixel is decoded) and ``bounds``."""

    stat_key: str = ""

    def __init__(self, any_or_all: Literal["any", "all"] = "any", **kwargs):
        super().__init__(**kwargs)
        self.any = any_or_all == "any"

    def measure(self, path: str):
        raise NotImplementedError

    def bounds(self) -> tuple:
        raise NotImplementedError

    def compute_stats_single(self, sample: dict) -> dict:
        stats = sample[Fields.stats]
        if self.stat_key not in stats:
            paths = self.image_paths(sample, none_ok=True)
            stats[self.stat_key] = [self.measure(p) for p in paths]
        return sample

    def process_single(self, sample: dict):
        values = sample[Fields.stats][self.stat_key]
        if not values:
            return True
        lo, hi = self.bounds()
        ok = [self.in_range(self.scalar(v), lo, hi) for v in values]
        keep = any(ok) if self.any else all(ok)
        if keep:
            return True
        return False, (f"{self.stat_key}={values} {self.range_miss(lo, hi)} "
                       f"({'any' if self.any else 'all'})")

    @staticmethod
    def scalar(v):
        return v

    # The batched hooks run the single ones: one call per batch instead of one per sample
    # (a sample that raises sends the batch through the per-sample path, which isolates it).
    def compute_stats_batched(self, samples: list[dict]) -> list[dict]:
        return [self.compute_stats_single(s) for s in samples]

    def process_batched(self, samples: list[dict]) -> list:
        return [self.process_single(s) for s in samples]
