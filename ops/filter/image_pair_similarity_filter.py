"""Keep image pairs whose CLIP image-image cosine similarity lies in [min_score, max_score]."""
from __future__ import annotations

from typing import Optional

from ops.base import Filter, OpError
from ops.fields import Fields, StatsKeys
from ops.image.io import load_image
from ops.registry import OPERATORS


def pair_paths(sample: dict, keys: tuple) -> tuple[str, str]:
    """The two image paths of a pair sample: one column per image (a path, or a 1-item list)."""
    out = []
    for k in keys:
        v = sample.get(k)
        if isinstance(v, (list, tuple)):
            if len(v) != 1:
                raise OpError(f"column '{k}' must hold one image path, got {len(v)}")
            v = v[0]
        if not isinstance(v, str) or not v:
            raise OpError(f"sample has no image path in column '{k}'")
        out.append(v)
    return out[0], out[1]


@OPERATORS.register_module("image_pair_similarity_filter")
class ImagePairSimilarityFilter(Filter):
    """CLIP cosine similarity of the two images of each sample (``image_keys``).

    ``hf_clip``: a Hugging Face CLIP id / folder (``openai/clip-vit-base-patch32``) or an
    open_clip name (``open_clip:ViT-B-32/laion2b_s34b_b79k``; see docs/models.md).
    Stats: ``image_pair_similarity`` (float in [-1, 1]).  All pairs of a batch are embedded
    together, ``model_batch_size`` images per forward pass."""

    accelerator = "cuda"
    extra = "models"          # torch, transformers, ultralytics, nltk: see ops/extras.py
    batched = True
    model_params = {"hf_clip": "clip"}

    def __init__(self, hf_clip: str = "openai/clip-vit-base-patch32", min_score: float = 0.1,
                 max_score: float = 1.0,
                 image_keys: tuple[str, str] = ("image_path1", "image_path2"),
                 model_batch_size: int = 64, **kwargs):
        super().__init__(**kwargs)
        if not -1.0 <= min_score <= max_score <= 1.0:
            raise ValueError(f"need -1 <= min_score <= max_score <= 1, got [{min_score}, "
                             f"{max_score}]")
        if len(image_keys) != 2:
            raise ValueError(f"image_keys must name two columns, got {list(image_keys)}")
        if model_batch_size < 1:
            raise ValueError("model_batch_size must be >= 1")
        self.hf_clip = hf_clip
        self.min_score, self.max_score = float(min_score), float(max_score)
        self.image_keys = tuple(image_keys)
        self.model_batch_size = model_batch_size

    def setup(self):
        from ops.models.clip import load_clip
        self._m_clip = load_clip(self.hf_clip, device=self.device)

    def compute_stats_batched(self, samples: list[dict]) -> list[dict]:
        key = StatsKeys.image_pair_similarity
        todo, firsts, seconds = [], [], []
        error: Optional[Exception] = None
        for s in samples:
            if key in s[Fields.stats]:
                continue  # computed by an earlier run of this op
            if self.recall(s) is not None:   # computed before this batch's per-sample retry
                s[Fields.stats][key] = self.recall(s)
                continue
            try:
                p1, p2 = pair_paths(s, self.image_keys)
                a, b = load_image(p1), load_image(p2)
            except OpError as exc:
                error = error or exc
                continue
            todo.append(s)
            firsts.append(a)
            seconds.append(b)
        if todo:
            sims = self._m_clip.pair_similarity(firsts, seconds, self.model_batch_size)
            for s, v in zip(todo, sims.tolist()):
                s[Fields.stats][key] = float(v)
                self.remember(s, float(v))
        if error is not None:
            # the good samples keep their stats; the executor retries each sample alone, so
            # only the broken ones end up as errors and nothing is embedded twice
            raise error
        return samples

    def process_batched(self, samples: list[dict]) -> list:
        out = []
        for s in samples:
            v = s[Fields.stats][StatsKeys.image_pair_similarity]
            if self.min_score <= v <= self.max_score:
                out.append(True)
            else:
                out.append((False, f"image_pair_similarity={v:.4f} outside "
                                   f"[{self.min_score}, {self.max_score}]"))
        return out
