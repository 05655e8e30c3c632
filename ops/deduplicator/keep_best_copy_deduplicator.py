"""Among near-duplicate copies keep the one closest to the original (lowest generation loss)."""
from __future__ import annotations

from typing import Literal, Optional

from ops.base import Deduplicator
from ops.fields import Fields, StatsKeys
from ops.registry import OPERATORS

PHASHES = "phashes"      # meta key: the crop-robust hash set of the sample's first image


@OPERATORS.register_module("keep_best_copy_deduplicator")
class KeepBestCopyDeduplicator(Deduplicator):
    """Groups samples whose first images are near-duplicates (perceptual-hash sets within
    ``threshold`` bits, transitively: robust to resizes, crops of a few percent and
    re-compression), scores every copy with the generation-loss model (reusing
    ``stats.generation_loss`` when a mapper already wrote it) and keeps the lowest-scoring
    copy of each group.  Every row gets ``meta.keep_best_copy_deduplicator`` =
    ``{"group", "group_size", "rank", "score", "kept", "kept_image"}`` (rank 0 = kept);
    dropped rows report it as their reason, so nothing vanishes without a trace."""

    batched = True
    extra = "scorer"          # torch, numba, threadpoolctl: see ops/extras.py

    def __init__(self, threshold: int = 10,
                 method: Literal["phash", "dhash", "ahash", "whash"] = "phash",
                 weights: Optional[str] = None, threads: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= threshold < 64:
            raise ValueError("threshold must be in [0, 63] bits")
        self.threshold, self.method = threshold, method
        self.weights, self.threads = weights, threads
        self.group_columns = (Fields.meta, Fields.stats, self.image_key)

    def setup(self) -> None:
        from ops.scorer.weights import Scorer
        self._m_scorer = Scorer(self.weights, device=self.device, threads=self.threads)

    def compute_hash_batched(self, samples: list[dict]) -> list[dict]:
        from ops.image.phash import image_hashes
        from ops.scorer.features import blas_one_thread, extract_image
        from ops.scorer.weights import load_with_info
        feats, owner, hashes = [], [], []
        with blas_one_thread():
            for i, s in enumerate(samples):
                img, info = load_with_info(self.first_image(s))   # ImageLoadError -> error
                hashes.append(image_hashes(img, self.method))
                if StatsKeys.generation_loss not in s.get(Fields.stats, {}):
                    feats.append(extract_image(img, info, self._m_scorer.k))
                    owner.append(i)
        scores = dict(zip(owner, self._m_scorer.score_features(feats)))
        for i, s in enumerate(samples):
            s.setdefault(Fields.meta, {})[PHASHES] = hashes[i]
            if i in scores:
                s.setdefault(Fields.stats, {})[StatsKeys.generation_loss] = [float(scores[i])]
        return samples

    def group(self, samples: list[dict]):
        from ops.image.phash import group_by_hamming
        first = group_by_hamming([s[Fields.meta].get(PHASHES) for s in samples],
                                 self.threshold)
        members: dict[int, list[int]] = {}
        for i, g in enumerate(first):
            members.setdefault(g, []).append(i)
        out: list = [None] * len(samples)
        for g, idx in members.items():
            ranked = sorted(idx, key=lambda i: (self._score(samples[i]), i))
            kept = samples[ranked[0]]
            for rank, i in enumerate(ranked):
                score = self._score(samples[i])
                out[i] = (rank == 0, {
                    "group": samples[g][Fields.id], "group_size": len(idx), "rank": rank,
                    "score": None if score == float("inf") else score,
                    "kept": kept[Fields.id], "kept_image": self._first_path(kept)})
        return out

    @staticmethod
    def _score(sample: dict) -> float:
        v = sample.get(Fields.stats, {}).get(StatsKeys.generation_loss)
        if isinstance(v, list):
            v = v[0] if v else None
        return float(v) if v is not None else float("inf")   # unscored copies rank last

    def _first_path(self, sample: dict):
        v = sample.get(self.image_key)
        return v if isinstance(v, str) or v is None else (list(v)[0] if v else None)
