"""Drop samples whose images are exact or perceptual-hash duplicates of an earlier sample's."""
from __future__ import annotations

import hashlib
from typing import Literal

from ops.base import Deduplicator
from ops.fields import Fields, MetaKeys
from ops.image.io import load_image
from ops.registry import OPERATORS

METHODS = ("phash", "dhash", "whash", "ahash", "md5")


def image_key_hash(image, method: str) -> str:
    """``md5``: of the decoded pixels (mode, size, bytes), so the same picture saved twice with
    different metadata or lossless codecs still matches; otherwise imagehash's 64-bit hash of
    the whole image as 16 hex digits."""
    if method == "md5":
        h = hashlib.md5(f"{image.mode}:{image.width}x{image.height}:".encode())
        h.update(image.tobytes())
        return h.hexdigest()
    import imagehash
    fn = {"phash": imagehash.phash, "dhash": imagehash.dhash, "whash": imagehash.whash,
          "ahash": imagehash.average_hash}[method]
    return str(fn(image, hash_size=8))


def id_order(sample_id) -> tuple:
    """Dataset order of a sample id ("12", "12/3" for fan-out rows), whatever order the
    executor gathered the rows in."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in str(sample_id).split("/"))


@OPERATORS.register_module("image_deduplicator")
class ImageDeduplicator(Deduplicator):
    """Samples whose images (``image_key``, all of them, in order) have the same hash are
    duplicates: the first in dataset order is kept, the others are dropped with the kept one
    named in their reason.  ``method``: ``phash`` / ``dhash`` / ``whash`` / ``ahash``
    (perceptual: equal hashes, so re-encodes and resizes usually match) or ``md5`` (exact
    pixels).  ``consider_text``: the text (``text_key``) must match exactly too.  Samples
    without images are kept.  Writes ``meta.imagehash`` (and ``meta.texthash``); every member
    of a group of duplicates gets ``meta.image_deduplicator = {"group": <kept id>,
    "group_size": n}``."""

    group_columns = (Fields.meta,)

    def __init__(self, method: Literal["phash", "dhash", "whash", "ahash", "md5"] = "phash",
                 consider_text: bool = False, **kwargs):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
        self.method, self.consider_text = method, bool(consider_text)

    def compute_hash_single(self, sample: dict) -> dict:
        meta = sample[Fields.meta]
        if self.consider_text:
            text = sample.get(self.text_key)
            meta[MetaKeys.texthash] = hashlib.md5(str(text or "").encode()).hexdigest()
        paths = self.image_paths(sample) if sample.get(self.image_key) else []
        seen: dict[str, str] = {}
        for p in paths:
            if p not in seen:
                seen[p] = image_key_hash(load_image(p), self.method)
        meta[MetaKeys.imagehash] = "".join(seen[p] for p in paths)
        return sample

    def group(self, samples: list[dict]):
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(samples):
            meta = s.get(Fields.meta) or {}
            image_hash = meta.get(MetaKeys.imagehash) or ""
            if not image_hash:
                continue        # no image: nothing to compare, kept
            key = (image_hash, meta.get(MetaKeys.texthash) if self.consider_text else None)
            groups.setdefault(key, []).append(i)
        out: list = [(True, None)] * len(samples)
        for members in groups.values():
            if len(members) < 2:
                continue
            members.sort(key=lambda i: id_order(samples[i][Fields.id]))
            info = {"group": samples[members[0]][Fields.id], "group_size": len(members)}
            for rank, i in enumerate(members):
                out[i] = (rank == 0, info)
        return out
