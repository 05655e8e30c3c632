"""Keep image pairs whose CLIP image-image cosine similarity lies in [min_score, max_score]."""
from __future__ import annotations

from typing import Literal, Optional

from ops.base import Filter, OpError
from ops.fields import Fields, StatsKeys
from ops.image.io import load_image
from ops.pairs import check_pair_keys, pair_paths
from ops.registry import OPERATORS


@OPERATORS.register_module("image_pair_similarity_filter")
class ImagePairSimilarityFilter(Filter):
    """CLIP cosine similarity of the two images of each sample: the columns ``image_keys``,
    or (default, None) ``image_path1`` / ``image_path2`` when present, else Data-Juicer's
    ``images: [a, b]`` (the column ``image_key`` holding exactly two paths).

    ``hf_clip``: a Hugging Face CLIP id / folder (``openai/clip-vit-base-patch32``) or an
    open_clip name (``open_clip:ViT-B-32/laion2b_s34b_b79k``; see docs/models.md).
    Stats: ``image_pair_similarity`` (float in [-1, 1]).  All pairs of a batch are embedded
    together, ``model_batch_size`` images per forward pass.  ``any_or_all`` applies across
    the sample's similarity values; a pair has one, so both agree (as in Data-Juicer).
    ``trust_remote_code`` goes to Hugging Face's ``from_pretrained``."""

    accelerator = "cuda"
    extra = "models"          # torch, transformers, ultralytics, nltk: see ops/extras.py
    batched = True
    model_params = {"hf_clip": "clip"}

    def __init__(self, hf_clip: str = "openai/clip-vit-base-patch32", min_score: float = 0.1,
                 max_score: float = 1.0, any_or_all: Literal["any", "all"] = "any",
                 image_keys: Optional[tuple[str, str]] = None,
                 model_batch_size: int = 64, trust_remote_code: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not -1.0 <= min_score <= max_score <= 1.0:
            raise ValueError(f"need -1 <= min_score <= max_score <= 1, got [{min_score}, "
                             f"{max_score}]")
        if any_or_all not in ("any", "all"):
            raise ValueError(f"any_or_all must be 'any' or 'all', got {any_or_all!r}")
        if model_batch_size < 1:
            raise ValueError("model_batch_size must be >= 1")
        self.hf_clip = hf_clip
        self.min_score, self.max_score = float(min_score), float(max_score)
        self.any = any_or_all == "any"
        self.image_keys = check_pair_keys(image_keys)
        self.model_batch_size = model_batch_size
        self.trust_remote_code = trust_remote_code

    def setup(self):
        from ops.models.clip import load_clip
        self._m_clip = load_clip(self.hf_clip, device=self.device,
                                 trust_remote_code=self.trust_remote_code)

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
                p1, p2 = pair_paths(s, self.image_keys, self.image_key)
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
            ok = [self.in_range(x, self.min_score, self.max_score)
                  for x in (v if isinstance(v, list) else [v])]
            if any(ok) if self.any else all(ok):
                out.append(True)
            else:
                out.append((False, f"image_pair_similarity={v:.4f} "
                                   f"{self.range_miss(self.min_score, self.max_score)}"))
        return out
