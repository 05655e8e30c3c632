"""Perceptual hashes: near-duplicates group, distinct pictures do not; grouping is exact."""
import numpy as np
import pytest
from PIL import Image

from ops.image.phash import group_by_hamming, hamming, image_hash, image_hashes
from ops.scorer_training import transforms as T
from tests.scorer.synth import photo_like


def test_group_by_hamming_matches_brute_force():
    rng = np.random.default_rng(0)
    base = [int(x) for x in rng.integers(0, 2 ** 63, 30)]
    vals = []
    for b in base:                                   # clusters of noisy copies
        for _ in range(3):
            flips = rng.choice(64, int(rng.integers(0, 7)), replace=False)
            vals.append(b ^ sum(1 << int(f) for f in flips))
    hashes = [f"{v:016x}" for v in vals] + [None]
    got = group_by_hamming(hashes, threshold=6)
    n = len(vals)
    parent = list(range(n))                          # reference: all pairs, transitive

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x
    for i in range(n):
        for j in range(i + 1, n):
            if bin(vals[i] ^ vals[j]).count("1") <= 6:
                parent[max(find(i), find(j))] = min(find(i), find(j))
    assert got[:n] == [find(i) for i in range(n)]
    assert got[n] == n                               # None -> its own group


def test_hamming_and_errors():
    assert hamming("00ff", "00fe") == 1
    with pytest.raises(ValueError):
        hamming("00ff", "0ff")
    with pytest.raises(ValueError):
        group_by_hamming(["zz"], 3)
    with pytest.raises(ValueError):
        image_hash(Image.new("RGB", (32, 32)), "sha1")


def test_copies_join_distinct_pictures_do_not():
    a, b = photo_like(240, 320, 21), photo_like(240, 320, 22)
    h, w = a.shape[:2]
    copies = [a, T.to_jpeg(a, 20).pixels, T.resize(a, (160, 120), "bilinear"),
              T.crop(a, (10, 0, w, h)), T.crop(a, (8, 6, w - 8, h - 6)), T.to_gif(a).pixels]
    hs = [image_hashes(Image.fromarray(x)) for x in copies + [b]]
    g = group_by_hamming(hs, threshold=10)
    assert g[:len(copies)] == [0] * len(copies)
    assert g[-1] == len(copies)
