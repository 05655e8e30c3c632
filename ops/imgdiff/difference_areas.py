"""The ImgDiff eight steps on decoded image pairs, every model call batched across samples.

The models come in as three scorer objects (the real loaders from ``ops.models`` or, in tests,
deterministic stand-ins):

- ``clip.embed_images(images: list[PIL], batch_size) -> (N, D)`` L2-normalised embeddings;
- ``blip.itm_scores(images: list[PIL], texts: list[str], batch_size) -> (N,)`` ITM match
  probabilities of (images[i], texts[i]) (the same PIL object repeated is encoded once);
- ``segmenter.segment(images, imgsz, conf, iou, max_det, batch_size) -> list[(K, 4)]`` xyxy boxes
  per image, in that image's pixels.
Each scorer splits its input into forward passes of at most ``batch_size``.

Steps 5 (BLIP) and 6 (CLIP on crops) are both filters on the same candidate boxes, so they
commute; we run the cheap one first (CLIP: one embedding per crop) and send BLIP only the
boxes that survive it (BLIP needs one pass per crop and query).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .boxes import align_pair, clamp_boxes, crop, nms, scale_boxes
from .caption_diff import CaptionDiff


@dataclass(frozen=True)
class DiffParams:
    """Thresholds of the eight steps (fixed for a run: never changed per sample)."""

    min_score_1: float = 0.9      # step 1: whole-pair CLIP similarity range
    max_score_1: float = 0.99
    min_score_2: float = 0.0      # step 6: crop-pair CLIP similarity range
    max_score_2: float = 0.85
    imgsz: int = 1024             # step 3: FastSAM
    conf: float = 0.05
    iou: float = 0.5
    max_det: int = 300            # FastSAM boxes per image at most
    itm_min_score: float = 0.4    # step 5: BLIP ITM probability range
    itm_max_score: float = 1.0
    nms_iou_threshold: float = 0.5  # step 7
    attribute_changes: bool = True  # also match "red car" / "blue car" style changes
    model_batch_size: int = 32    # CLIP images / BLIP image-text pairs per forward pass
    segment_batch_size: int = 4   # FastSAM images per forward pass

    def __post_init__(self):
        for lo, hi, what in ((self.min_score_1, self.max_score_1, "min_score_1/max_score_1"),
                             (self.min_score_2, self.max_score_2, "min_score_2/max_score_2"),
                             (self.itm_min_score, self.itm_max_score, "min_score/max_score")):
            if lo > hi:
                raise ValueError(f"{what}: minimum {lo} is above maximum {hi}")
        if not (0.0 <= self.conf <= 1.0 and 0.0 <= self.iou <= 1.0):
            raise ValueError(f"conf and iou must lie in [0, 1], got {self.conf}, {self.iou}")
        if not 0.0 <= self.nms_iou_threshold <= 1.0:
            raise ValueError(f"nms_iou_threshold must be in [0, 1], got {self.nms_iou_threshold}")
        if self.model_batch_size < 1 or self.segment_batch_size < 1:
            raise ValueError("model_batch_size and segment_batch_size must be >= 1")
        if self.imgsz < 32:
            raise ValueError("imgsz must be >= 32")
        if self.max_det < 1:
            raise ValueError("max_det must be >= 1")


@dataclass
class PairInput:
    image1: Any  # PIL images, already decoded
    image2: Any
    caption1: str
    caption2: str


@dataclass
class PairResult:
    """What one pair yields: boxes (image-1 pixels, xyxy) and why there are none, if so."""

    bbox: list = field(default_factory=list)
    boxes: list = field(default_factory=list)  # per box: nouns and scores, aligned with bbox
    pair_similarity: Optional[float] = None
    diff: Optional[CaptionDiff] = None
    candidates: int = 0
    reason: Optional[str] = None

    def meta(self) -> dict:
        d = self.diff
        return {
            "pair_similarity": self.pair_similarity,
            "objects1": list(d.objects1) if d else [],
            "objects2": list(d.objects2) if d else [],
            "attributes1": list(d.attributes1) if d else [],
            "attributes2": list(d.attributes2) if d else [],
            "candidate_boxes": self.candidates,
            "boxes": self.boxes,
            "reason": self.reason,
        }


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


class DifferenceAreaFinder:
    """Runs steps 1-8 for a batch of pairs with the given scorers and differ."""

    def __init__(self, clip, blip, segmenter, differ, params: DiffParams):
        self.clip, self.blip, self.segmenter, self.differ = clip, blip, segmenter, differ
        self.p = params

    # ------------------------------------------------------------------ batched model calls
    def _embed(self, images: list) -> np.ndarray:
        if not images:
            return np.zeros((0, 1))
        emb = _to_numpy(self.clip.embed_images(images, batch_size=self.p.model_batch_size))
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    def _itm(self, images: list, texts: list[str]) -> np.ndarray:
        if not images:
            return np.zeros(0)
        scores = self.blip.itm_scores(images, texts, batch_size=self.p.model_batch_size)
        return _to_numpy(scores).reshape(-1)

    def _segment(self, images: list) -> list[np.ndarray]:
        boxes = self.segmenter.segment(images, imgsz=self.p.imgsz, conf=self.p.conf,
                                       iou=self.p.iou, max_det=self.p.max_det,
                                       batch_size=self.p.segment_batch_size)
        if len(boxes) != len(images):
            raise RuntimeError(f"segmenter returned {len(boxes)} box sets for {len(images)} images")
        return [_to_numpy(b).reshape(-1, 4) for b in boxes]

    # ------------------------------------------------------------------ steps
    def run(self, pairs: list[PairInput]) -> list[PairResult]:
        p = self.p
        n = len(pairs)
        results = [PairResult() for _ in range(n)]
        if n == 0:
            return results
        # (1) whole-pair similarity: both images of every pair in one batched pass
        emb = self._embed([x.image1 for x in pairs] + [x.image2 for x in pairs])
        sims = np.sum(emb[:n] * emb[n:], axis=1)
        active = []
        for i, s in enumerate(sims):
            results[i].pair_similarity = float(s)
            if p.min_score_1 <= s <= p.max_score_1:
                active.append(i)
            else:
                results[i].reason = (f"pair similarity {s:.4f} outside "
                                     f"[{p.min_score_1}, {p.max_score_1}]")
        # (2) caption diff -> texts to look for on each side
        queries: dict[int, tuple[list[str], list[str]]] = {}
        for i in list(active):
            d = self.differ.diff(pairs[i].caption1, pairs[i].caption2)
            results[i].diff = d
            q1, q2 = d.queries(1, p.attribute_changes), d.queries(2, p.attribute_changes)
            if not q1 and not q2:
                results[i].reason = "the captions name no differing object"
                active.remove(i)
            else:
                queries[i] = (q1, q2)
        if not active:
            return results
        # (3) FastSAM on both images of every remaining pair
        seg = self._segment([pairs[i].image1 for i in active] + [pairs[i].image2 for i in active])
        # (4) candidate boxes in image-1 pixels, clamped; crops of both images in memory
        cands: dict[int, np.ndarray] = {}
        crops1, crops2, owner = [], [], []
        for k, i in enumerate(active):
            img1, img2 = pairs[i].image1, pairs[i].image2
            b2 = scale_boxes(seg[len(active) + k], img2.size, img1.size)
            boxes, keep = clamp_boxes(np.concatenate([seg[k], b2], axis=0), img1.size)
            boxes = np.unique(np.round(boxes[keep], 3), axis=0) if keep.any() else boxes[:0]
            cands[i] = boxes
            results[i].candidates = len(boxes)
            aligned = align_pair(img1, img2)
            for j, box in enumerate(boxes):
                crops1.append(crop(img1, box))
                crops2.append(crop(aligned, box))
                owner.append((i, j))
        if not owner:
            for i in active:
                results[i].reason = "segmentation found no regions"
            return results
        # (6) crop-pair CLIP similarity: all crops of the batch in one series of passes
        m = len(owner)
        cemb = self._embed(crops1 + crops2)
        csim = np.sum(cemb[:m] * cemb[m:], axis=1)
        alive = [c for c in range(m) if p.min_score_2 <= csim[c] <= p.max_score_2]
        # (5) BLIP ITM on the survivors: every (crop, query) pair of the batch at once
        itm_imgs, itm_txts, itm_ref = [], [], []
        for c in alive:
            i = owner[c][0]
            for side, crops in ((0, crops1), (1, crops2)):
                for q in queries[i][side]:
                    itm_imgs.append(crops[c])
                    itm_txts.append(q)
                    itm_ref.append((c, side, q))
        scores = self._itm(itm_imgs, itm_txts)
        best: dict[tuple[int, int], tuple[str, float]] = {}
        for (c, side, q), s in zip(itm_ref, scores):
            if p.itm_min_score <= s <= p.itm_max_score and s > best.get((c, side), ("", -1.0))[1]:
                best[(c, side)] = (q, float(s))
        per_pair: dict[int, list[int]] = {i: [] for i in active}
        for c in alive:
            i = owner[c][0]
            if all(not queries[i][side] or (c, side) in best for side in (0, 1)):
                per_pair[i].append(c)
        # (7) NMS per pair: the most different crop pair wins an overlap
        for i in active:
            kept = per_pair[i]
            if not kept:
                results[i].reason = ("segmentation found no regions" if not results[i].candidates
                                     else "no segment matched the differing objects and differed")
                continue
            boxes = np.stack([cands[i][owner[c][1]] for c in kept])
            order = nms(boxes, [1.0 - csim[c] for c in kept], p.nms_iou_threshold)
            for o in order:
                c = kept[o]
                results[i].bbox.append([float(v) for v in boxes[o]])
                results[i].boxes.append({
                    "object1": best.get((c, 0), (None, None))[0],
                    "object2": best.get((c, 1), (None, None))[0],
                    "itm_score1": best.get((c, 0), (None, None))[1],
                    "itm_score2": best.get((c, 1), (None, None))[1],
                    "crop_similarity": float(csim[c]),
                })
        # (8) nothing was written anywhere: crops lived in memory only
        return results
