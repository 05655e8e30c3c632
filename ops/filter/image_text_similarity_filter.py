"""Keep samples whose CLIP image-text similarity lies in [min_score, max_score]."""
from __future__ import annotations

from typing import Literal, Optional

from PIL import Image

from ops.base import Filter, OpError
from ops.fields import Fields, StatsKeys
from ops.image.io import load_image
from ops.filter._image_text_scores import REDUCE, check_score_settings
from ops.registry import OPERATORS
from ops.special_tokens import image_chunks

_MISSING = object()


@OPERATORS.register_module("image_text_similarity_filter")
class ImageTextSimilarityFilter(Filter):
    """CLIP cosine similarity between the sample's text (``text_key``) and its images
    (``image_key``), one value per chunk: a text with Data-Juicer's ``<__dj__image>`` tokens is
    split into chunks at ``<|__dj__eoc|>`` and each chunk's text is compared with the images
    its tokens stand for; a text without tokens is one chunk with all the images.  Several
    images in a chunk are combined by ``reduce_mode``; the sample is kept when ``any`` (or
    ``all``) chunk lies in [min_score, max_score].  Samples without images are kept.

    ``hf_clip``: a Hugging Face CLIP id / folder or an open_clip name (as
    ``image_pair_similarity_filter``).  ``trust_remote_code`` goes to Hugging Face's
    ``from_pretrained``.  Stats:
    ``image_text_similarity`` (list of floats in [-1, 1]).  All images and texts of a batch
    are embedded together, ``model_batch_size`` per forward pass."""

    accelerator = "cuda"
    extra = "models"          # torch, transformers: see ops/extras.py
    model_params = {"hf_clip": "clip"}
    batched = True

    def __init__(self, hf_clip: str = "openai/clip-vit-base-patch32",
                 trust_remote_code: bool = False, min_score: float = 0.1,
                 max_score: float = 1.0, horizontal_flip: bool = False,
                 vertical_flip: bool = False, any_or_all: Literal["any", "all"] = "any",
                 reduce_mode: Literal["avg", "max", "min"] = "avg", model_batch_size: int = 64,
                 **kwargs):
        super().__init__(**kwargs)
        check_score_settings(min_score, max_score, -1.0, reduce_mode, any_or_all,
                             model_batch_size)
        self.hf_clip, self.trust_remote_code = hf_clip, trust_remote_code
        self.min_score, self.max_score = float(min_score), float(max_score)
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.any, self.reduce_mode = any_or_all == "any", reduce_mode
        self.model_batch_size = model_batch_size

    def setup(self):
        from ops.models.clip import load_clip
        self._m_clip = load_clip(self.hf_clip, device=self.device, with_text=True,
                                 trust_remote_code=self.trust_remote_code)

    def _prepare(self, sample: dict) -> tuple[list, list]:
        """-> (images, chunks) of one sample; raises OpError for a bad one."""
        paths = self.image_paths(sample) if sample.get(self.image_key) else []
        if not paths:
            return [], []
        text = sample.get(self.text_key)
        if not isinstance(text, str):
            raise OpError(f"sample has no text in column '{self.text_key}' to compare its "
                          "images with")
        chunks = image_chunks(text, len(paths))
        images = []
        for p in paths:
            im = load_image(p)
            if self.horizontal_flip:
                im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if self.vertical_flip:
                im = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            images.append(im)
        return images, chunks

    def compute_stats_batched(self, samples: list[dict]) -> list[dict]:
        key = StatsKeys.image_text_similarity
        todo, images, texts = [], [], {}
        error: Optional[Exception] = None
        for s in samples:
            if key in s[Fields.stats]:
                continue
            if self.recall(s, _MISSING) is not _MISSING:
                s[Fields.stats][key] = self.recall(s)
                continue
            try:
                ims, chunks = self._prepare(s)
            except OpError as exc:
                error = error or exc
                continue
            todo.append((s, len(images), chunks))
            images += ims
            for chunk_text, _, _ in chunks:
                texts.setdefault(chunk_text, len(texts))
        if todo:
            img = self._m_clip.embed_images(images, self.model_batch_size)
            txt = self._m_clip.embed_texts(list(texts), self.model_batch_size)
            sims = (img @ txt.T).clamp(-1.0, 1.0)
            for s, first, chunks in todo:
                values = [float(REDUCE[self.reduce_mode](
                    [float(sims[first + i, texts[t]]) for i in idx])) for t, idx, _ in chunks]
                s[Fields.stats][key] = values
                self.remember(s, values)
        if error is not None:
            raise error     # the executor retries each sample alone; done ones are remembered
        return samples

    def process_batched(self, samples: list[dict]) -> list:
        out = []
        for s in samples:
            values = s[Fields.stats][StatsKeys.image_text_similarity]
            ok = [self.in_range(v, self.min_score, self.max_score) for v in values]
            if not values or (any(ok) if self.any else all(ok)):
                out.append(True)
            else:
                out.append((False, f"image_text_similarity={[round(v, 4) for v in values]} "
                                   f"{self.range_miss(self.min_score, self.max_score)} "
                                   f"({'any' if self.any else 'all'})"))
        return out
