"""Among near-duplicate copies keep the one closest to the original: the root of their
reconstructed derivation tree."""
from __future__ import annotations

import logging
import os
from typing import Literal, Optional

from ops.base import Deduplicator
from ops.fields import Fields, StatsKeys
from ops.registry import OPERATORS

PHASHES = "phashes"      # meta key: the crop-robust hash set of the sample's first image
logger = logging.getLogger("imgjuicer")


@OPERATORS.register_module("keep_best_copy_deduplicator")
class KeepBestCopyDeduplicator(Deduplicator):
    """Groups samples whose first images are near-duplicates (perceptual-hash sets within
    ``threshold`` bits, transitively: robust to resizes, crops of a few percent and
    re-compression), scores every copy with the generation-loss model (reusing
    ``stats.generation_loss`` when a mapper already wrote it), reconstructs which copy was
    made from which (``ops.scorer.phylogeny``: fitted transforms + optimum branching, the
    scores deciding where the fits cannot) and keeps each tree's root.  Every row gets
    ``meta.keep_best_copy_deduplicator`` = ``{"group", "group_size", "rank", "score",
    "kept", "kept_image", "parent", "parent_image", "transform", "depth", "uncertain",
    "fit_error"}`` (rank 1 / depth 0 = kept root; a copy whose geometry matches no other is
    a group of its own); dropped rows report it as their reason.  ``sheets``: a ranked
    contact sheet with the tree's arrows per group of two or more copies, written to
    ``sheet_dir`` (default ``<work_dir>/keep_best_copy_sheets``)."""

    batched = True
    extra = "scorer"          # torch, numba, threadpoolctl: see ops/extras.py

    def __init__(self, threshold: int = 10,
                 method: Literal["phash", "dhash", "ahash", "whash"] = "phash",
                 weights: Optional[str] = None, threads: int = 0, sheets: bool = True,
                 sheet_dir: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= threshold < 64:
            raise ValueError("threshold must be in [0, 63] bits")
        self.threshold, self.method = threshold, method
        self.weights, self.threads = weights, threads
        self.sheets, self.sheet_dir = sheets, sheet_dir
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
        for idx in members.values():
            for fam in self._families(samples, idx):
                self._decide(samples, fam, out)
        return out

    def _families(self, samples: list[dict], idx: list[int]) -> list[list]:
        """The derivation trees of one hash group: lists of (row, Member) best first."""
        import numpy as np
        from ops.image.io import ImageLoadError
        from ops.scorer.phylogeny import Member, load_copy, reconstruct
        scores = [self._score(samples[i]) for i in idx]
        if len(idx) == 1:
            return [[(idx[0], Member(0, str(self._first_path(samples[idx[0]])), scores[0],
                                     rank=1))]]
        copies, rows, lone = [], [], []
        for i, sc in zip(idx, scores):
            try:
                if sc == float("inf"):
                    raise ImageLoadError("no generation-loss score")
                copies.append(load_copy(self._first_path(samples[i]))[0])
                rows.append(i)
            except ImageLoadError as exc:          # changed since hashing: ranked last, alone
                logger.warning("keep_best_copy_deduplicator: %s", exc)
                lone.append(i)
        fams = reconstruct(copies, np.array([self._score(samples[i]) for i in rows]))
        out = [[(rows[m.index], m) for m in f.members] for f in fams]
        if self.sheets:
            self._sheet(samples, rows, copies, fams)
        for i in lone:
            s = self._score(samples[i])
            out.append([(i, Member(0, str(self._first_path(samples[i])),
                                   None if s == float("inf") else s, rank=1))])
        return out

    def _decide(self, samples, fam: list, out: list) -> None:
        root_row = fam[0][0]
        kept = samples[root_row]
        for row, m in fam:
            parent_row = None
            if m.parent is not None:
                parent_row = next(r for r, mm in fam if mm.index == m.parent)
            out[row] = (m.rank == 1, {
                "group": kept[Fields.id], "group_size": len(fam), "rank": m.rank,
                "score": m.score, "kept": kept[Fields.id],
                "kept_image": self._first_path(kept),
                "parent": None if parent_row is None else samples[parent_row][Fields.id],
                "parent_image": (None if parent_row is None
                                 else self._first_path(samples[parent_row])),
                "transform": list(m.transform), "depth": m.depth,
                "uncertain": bool(m.uncertain),
                "fit_error": None if m.error is None else round(float(m.error), 4)})

    def _sheet(self, samples, rows, copies, fams) -> None:
        from ops.scorer.sheet import draw_families
        folder = self.sheet_dir or os.path.join(self.context.work_dir,
                                                "keep_best_copy_sheets")
        names = [str(self._first_path(samples[r])) for r in rows]
        for f in fams:
            if len(f.members) < 2:
                continue
            root_id = str(samples[rows[f.root.index]][Fields.id])
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in root_id)
            draw_families([f], {m.index: copies[m.index].pixels for m in f.members}, names,
                          os.path.join(folder, f"group_{safe}.png"))

    @staticmethod
    def _score(sample: dict) -> float:
        v = sample.get(Fields.stats, {}).get(StatsKeys.generation_loss)
        if isinstance(v, list):
            v = v[0] if v else None
        return float(v) if v is not None else float("inf")   # unscored copies rank last

    def _first_path(self, sample: dict):
        v = sample.get(self.image_key)
        return v if isinstance(v, str) or v is None else (list(v)[0] if v else None)
