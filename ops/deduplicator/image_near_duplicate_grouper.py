"""Group near-duplicate images by perceptual hash; every row is kept and gets a group id."""
from __future__ import annotations

from typing import Literal

from ops.base import Deduplicator
from ops.fields import Fields, MetaKeys
from ops.image.io import load_image
from ops.registry import OPERATORS


@OPERATORS.register_module("image_near_duplicate_grouper")
class ImageNearDuplicateGrouper(Deduplicator):
    """Hashes the sample's first image (imagehash; robust to resizes and re-compression) and
    joins images within ``threshold`` bits, transitively.  Writes ``meta.phash`` and
    ``meta.image_near_duplicate_grouper = {"group": <id of the group's first sample>,
    "size": <members>}``.  Drops nothing: ``keep_best_copy_deduplicator`` builds on it."""

    group_columns = (Fields.meta,)

    def __init__(self, method: Literal["phash", "dhash", "ahash", "whash"] = "phash",
                 threshold: int = 10, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= threshold < 64:
            raise ValueError("threshold must be in [0, 63] bits")
        self.method, self.threshold = method, threshold

    def compute_hash_single(self, sample: dict) -> dict:
        from ops.image.phash import image_hash
        path = self.first_image(sample)
        sample[Fields.meta][MetaKeys.phash] = image_hash(load_image(path), self.method)
        return sample

    def group(self, samples: list[dict]):
        from ops.image.phash import group_by_hamming
        hashes = [s[Fields.meta].get(MetaKeys.phash) for s in samples]
        first = group_by_hamming(hashes, self.threshold)
        sizes: dict[int, int] = {}
        for g in first:
            sizes[g] = sizes.get(g, 0) + 1
        return [(True, {"group": samples[g][Fields.id], "size": sizes[g]}) for g in first]
