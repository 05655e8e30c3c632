"""Perceptual hashes and near-duplicate grouping by Hamming distance (union-find).

``image_hash`` returns 64-bit hashes as 16 hex characters.  ``group_by_hamming`` joins every
two hashes within ``threshold`` bits, transitively.  Candidate pairs come from the pigeonhole
principle: split the bits into threshold + 1 bands; two hashes within ``threshold`` bits agree
exactly on at least one band, so bucketing by each band finds every close pair without
comparing all pairs.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence, Union

import numpy as np
from PIL import Image

METHODS = ("phash", "dhash", "ahash", "whash")
BORDER = 0.03          # trimmed off each side before hashing (crop robustness)


CROP_VARIANT = 0.06    # each extra hash sees the image with this much cut off one side / all


def _hash_fn(method: str):
    import imagehash
    if method not in METHODS:
        raise ValueError(f"unknown hash method {method!r}; one of {METHODS}")
    return {"phash": imagehash.phash, "dhash": imagehash.dhash,
            "ahash": imagehash.average_hash, "whash": imagehash.whash}[method]


def _trimmed(g: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """Crop the fractional box (l, t, r, b), then trim BORDER off each side."""
    w, h = g.size
    l, t, r, b = box
    l, r = l + (r - l) * BORDER, r - (r - l) * BORDER
    t, b = t + (b - t) * BORDER, b - (b - t) * BORDER
    x0, y0, x1, y1 = int(round(l * w)), int(round(t * h)), int(round(r * w)), int(round(b * h))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return g
    return g.crop((x0, y0, x1, y1))


def image_hash(img: Image.Image, method: str = "phash") -> str:
    """64-bit perceptual hash of a PIL image (3% border trimmed) as 16 hex characters."""
    fn = _hash_fn(method)
    return str(fn(_trimmed(_grey_small(img), (0, 0, 1, 1)), hash_size=8))


def image_hashes(img: Image.Image, method: str = "phash") -> list[str]:
    """The primary hash, then hashes of the image with CROP_VARIANT cut off the left, right,
    top, bottom and all sides: two copies whose hash *sets* come within the threshold are
    near-duplicates even when one is a crop of a few percent of the other."""
    fn = _hash_fn(method)
    g = _grey_small(img)
    c = CROP_VARIANT
    boxes = [(0, 0, 1, 1), (c, 0, 1, 1), (0, 0, 1 - c, 1), (0, c, 1, 1), (0, 0, 1, 1 - c),
             (c / 2, c / 2, 1 - c / 2, 1 - c / 2)]
    return [str(fn(_trimmed(g, box), hash_size=8)) for box in boxes]


def _grey_small(img: Image.Image, side: int = 256) -> Image.Image:
    """Greyscale copy at most ``side`` pixels on the long side (hashing needs no more)."""
    g = img.convert("L")
    f = max(g.size) // side
    return g.reduce(f) if f >= 2 else g


def _to_int(h: str) -> int:
    try:
        return int(h, 16)
    except (TypeError, ValueError):
        raise ValueError(f"not a hex hash: {h!r}") from None


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes of the same length."""
    if len(a) != len(b):
        raise ValueError(f"hashes of different lengths: {len(a)} vs {len(b)} hex digits")
    return (_to_int(a) ^ _to_int(b)).bit_count()


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        p = self.parent
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:                       # smaller index becomes the root: stable group ids
            self.parent[max(ra, rb)] = min(ra, rb)


def _bands(bits: int, n_bands: int) -> list[tuple[int, int]]:
    """(shift, mask) of n_bands contiguous bit ranges covering ``bits`` bits."""
    edges = np.linspace(0, bits, n_bands + 1).round().astype(int)
    return [(int(lo), (1 << int(hi - lo)) - 1) for lo, hi in zip(edges[:-1], edges[1:])
            if hi > lo]


def group_by_hamming(hashes: Sequence[Union[str, Sequence[str], None]],
                     threshold: int = 10) -> list[int]:
    """Group id per item: the index of its group's first member.  An item is one hex hash
    or a list of them (``image_hashes``); two items join when any hash of one is within
    ``threshold`` bits of any hash of the other, transitively.  ``None`` -> singleton."""
    if threshold < 0:
        raise ValueError("threshold must be >= 0")
    n = len(hashes)
    uf = _UnionFind(n)
    entries = []                       # (item, value)
    bits = None
    for i, h in enumerate(hashes):
        if h is None:
            continue
        for one in ([h] if isinstance(h, str) else list(h)):
            if bits is None:
                bits = len(one) * 4
            elif len(one) * 4 != bits:
                raise ValueError("all hashes must have the same length")
            entries.append((i, _to_int(one)))
    if not entries:
        return list(range(n))
    if threshold >= bits:
        for i, _ in entries[1:]:
            uf.union(entries[0][0], i)
        return [uf.find(i) for i in range(n)]
    checked = set()
    for shift, mask in _bands(bits, threshold + 1):
        buckets: dict[int, list[int]] = defaultdict(list)
        for e, (_, v) in enumerate(entries):
            buckets[(v >> shift) & mask].append(e)
        for members in buckets.values():
            for x, ea in enumerate(members):
                ia, va = entries[ea]
                for eb in members[x + 1:]:
                    ib, vb = entries[eb]
                    if ia == ib or (ea, eb) in checked:
                        continue
                    checked.add((ea, eb))
                    if (va ^ vb).bit_count() <= threshold:
                        uf.union(ia, ib)
    return [uf.find(i) for i in range(n)]
