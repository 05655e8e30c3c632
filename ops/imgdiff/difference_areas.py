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
        """Steps 1-8 (docs/imgdiff.md numbers them) over a batch of pairs; each step works on
        the pairs the previous ones kept, with one batched call per model."""
        b = _Batch(pairs, [PairResult() for _ in pairs])
        if not pairs:
            return b.results
        self.step1_pair_similarity(b)
        self.step2_caption_diff(b)
        if not b.active:
            return b.results
        self.step3_segment(b)
        if not self.step4_crops(b):
            return b.results
        self.step6_crop_similarity(b)      # before step 5: the cheap filter first (they commute)
        self.step5_itm(b)
        self.step7_nms(b)
        # (8) nothing was written anywhere: crops lived in memory only
        return b.results

    def step1_pair_similarity(self, b: "_Batch") -> None:
        """(1) CLIP similarity of the two whole images: both images of every pair in one
        batched pass; pairs outside [min_score_1, max_score_1] stop here."""
        p, n = self.p, len(b.pairs)
        emb = self._embed([x.image1 for x in b.pairs] + [x.image2 for x in b.pairs])
        for i, s in enumerate(np.sum(emb[:n] * emb[n:], axis=1)):
            b.results[i].pair_similarity = float(s)
            if p.min_score_1 <= s <= p.max_score_1:
                b.active.append(i)
            else:
                b.results[i].reason = (f"pair similarity {s:.4f} outside "
                                       f"[{p.min_score_1}, {p.max_score_1}]")

    def step2_caption_diff(self, b: "_Batch") -> None:
        """(2) The objects (and attribute phrases) that differ between the captions: the texts
        to look for on each side; pairs whose captions name none stop here."""
        for i in list(b.active):
            d = self.differ.diff(b.pairs[i].caption1, b.pairs[i].caption2)
            b.results[i].diff = d
            q1 = d.queries(1, self.p.attribute_changes)
            q2 = d.queries(2, self.p.attribute_changes)
            if not q1 and not q2:
                b.results[i].reason = "the captions name no differing object"
                b.active.remove(i)
            else:
                b.queries[i] = (q1, q2)

    def step3_segment(self, b: "_Batch") -> None:
        """(3) FastSAM on both images of every remaining pair, in one batched call."""
        b.segments = self._segment([b.pairs[i].image1 for i in b.active] +
                                   [b.pairs[i].image2 for i in b.active])

    def step4_crops(self, b: "_Batch") -> bool:
        """(4) Candidate boxes of both images in image-1 pixels, clamped and deduplicated, and
        the crops of both images at every box, in memory.  False when there is no box."""
        na = len(b.active)
        for k, i in enumerate(b.active):
            img1, img2 = b.pairs[i].image1, b.pairs[i].image2
            b2 = scale_boxes(b.segments[na + k], img2.size, img1.size)
            boxes, keep = clamp_boxes(np.concatenate([b.segments[k], b2], axis=0), img1.size)
            boxes = np.unique(np.round(boxes[keep], 3), axis=0) if keep.any() else boxes[:0]
            b.cands[i] = boxes
            b.results[i].candidates = len(boxes)
            aligned = align_pair(img1, img2)
            for j, box in enumerate(boxes):
                b.crops1.append(crop(img1, box))
                b.crops2.append(crop(aligned, box))
                b.owner.append((i, j))
        if not b.owner:
            for i in b.active:
                b.results[i].reason = "segmentation found no regions"
            return False
        return True

    def step6_crop_similarity(self, b: "_Batch") -> None:
        """(6) CLIP similarity of each box's two crops (all crops of the batch in one series
        of passes); boxes outside [min_score_2, max_score_2] are dropped: they do not differ."""
        m = len(b.owner)
        cemb = self._embed(b.crops1 + b.crops2)
        b.csim = np.sum(cemb[:m] * cemb[m:], axis=1)
        b.alive = [c for c in range(m) if self.p.min_score_2 <= b.csim[c] <= self.p.max_score_2]

    def step5_itm(self, b: "_Batch") -> None:
        """(5) BLIP ITM of every surviving (crop, differing text) of the batch at once; a box
        stays when each side that names an object matches one within the ITM range."""
        p = self.p
        itm_imgs, itm_txts, itm_ref = [], [], []
        for c in b.alive:
            i = b.owner[c][0]
            for side, crops in ((0, b.crops1), (1, b.crops2)):
                for q in b.queries[i][side]:
                    itm_imgs.append(crops[c])
                    itm_txts.append(q)
                    itm_ref.append((c, side, q))
        for (c, side, q), s in zip(itm_ref, self._itm(itm_imgs, itm_txts)):
            if p.itm_min_score <= s <= p.itm_max_score and s > b.best.get((c, side), ("", -1.0))[1]:
                b.best[(c, side)] = (q, float(s))
        b.matched = {i: [] for i in b.active}
        for c in b.alive:
            i = b.owner[c][0]
            if all(not b.queries[i][side] or (c, side) in b.best for side in (0, 1)):
                b.matched[i].append(c)

    def step7_nms(self, b: "_Batch") -> None:
        """(7) NMS per pair: the most different crop pair (1 - crop similarity) wins an
        overlap; the kept boxes, best first, with what each side matched."""
        for i in b.active:
            kept = b.matched[i]
            res = b.results[i]
            if not kept:
                res.reason = ("segmentation found no regions" if not res.candidates
                              else "no segment matched the differing objects and differed")
                continue
            boxes = np.stack([b.cands[i][b.owner[c][1]] for c in kept])
            order = nms(boxes, [1.0 - b.csim[c] for c in kept], self.p.nms_iou_threshold)
            for o in order:
                c = kept[o]
                res.bbox.append([float(v) for v in boxes[o]])
                res.boxes.append({
                    "object1": b.best.get((c, 0), (None, None))[0],
                    "object2": b.best.get((c, 1), (None, None))[0],
                    "itm_score1": b.best.get((c, 0), (None, None))[1],
                    "itm_score2": b.best.get((c, 1), (None, None))[1],
                    "crop_similarity": float(b.csim[c]),
                })


@dataclass
class _Batch:
    """What the steps hand on to each other for one batch of pairs."""

    pairs: list
    results: list
    active: list = field(default_factory=list)       # pairs still in play
    queries: dict = field(default_factory=dict)      # pair -> (texts side 1, texts side 2)
    segments: list = field(default_factory=list)     # FastSAM boxes: images 1, then images 2
    cands: dict = field(default_factory=dict)        # pair -> candidate boxes (image-1 pixels)
    crops1: list = field(default_factory=list)       # crop c of image 1 / aligned image 2
    crops2: list = field(default_factory=list)
    owner: list = field(default_factory=list)        # crop c -> (pair, candidate index)
    csim: Any = None                                 # crop c -> CLIP similarity of its crops
    alive: list = field(default_factory=list)        # crops within the step-6 range
    best: dict = field(default_factory=dict)         # (crop, side) -> (text, ITM score)
    matched: dict = field(default_factory=dict)      # pair -> crops that passed step 5
