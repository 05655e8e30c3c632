"""Keep samples whose BLIP image-text matching probability lies in [min_score, max_score]."""
from __future__ import annotations

from typing import Literal, Optional

from PIL import Image

from ops.base import Filter, OpError
from ops.fields import Fields, StatsKeys
from ops.image.io import load_image
from ops.filter._image_text_scores import REDUCE, check_score_settings
from ops.registry import OPERATORS


_MISSING = object()


@OPERATORS.register_module("image_text_matching_filter")
class ImageTextMatchingFilter(Filter):
    """BLIP ITM score = softmax(itm_logits)[match] of every image of the sample (``image_key``)
    against the sample's text (``text_key``); with several images the scores are combined by
    ``reduce_mode`` (avg / max / min).  Images can be flipped before scoring.

    Stats: ``image_text_matching_score`` (float in [0, 1]; absent images -> kept, no score).
    All image-text pairs of a batch go through BLIP together.  The sample's text is one chunk,
    so there is one score per sample and ``any_or_all`` (across chunks in Data-Juicer) gives
    the same decision either way.  ``trust_remote_code`` goes to ``from_pretrained``."""

    accelerator = "cuda"
    model_params = {"hf_blip": "hf"}
    extra = "models"          # torch, transformers, ultralytics, nltk: see ops/extras.py
    batched = True

    def __init__(self, hf_blip: str = "Salesforce/blip-itm-base-coco",
                 min_score: float = 0.003, max_score: float = 1.0,
                 horizontal_flip: bool = False, vertical_flip: bool = False,
                 reduce_mode: Literal["avg", "max", "min"] = "avg",
                 any_or_all: Literal["any", "all"] = "any", trust_remote_code: bool = False,
                 model_batch_size: int = 32, **kwargs):
        super().__init__(**kwargs)
        check_score_settings(min_score, max_score, 0.0, reduce_mode, any_or_all,
                             model_batch_size)
        self.hf_blip = hf_blip
        self.min_score, self.max_score = float(min_score), float(max_score)
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.reduce_mode = reduce_mode
        self.any = any_or_all == "any"
        self.trust_remote_code = trust_remote_code
        self.model_batch_size = model_batch_size

    def setup(self):
        from ops.models.blip import load_blip_itm
        self._m_blip = load_blip_itm(self.hf_blip, device=self.device,
                                     trust_remote_code=self.trust_remote_code)

    def _prepare(self, sample: dict) -> tuple[list, str]:
        paths = self.image_paths(sample, none_ok=True)
        text = sample.get(self.text_key)
        if paths and (not isinstance(text, str) or not text.strip()):
            raise OpError(f"sample has no text in column '{self.text_key}' to match its images")
        images = []
        for p in paths:
            im = load_image(p)
            if self.horizontal_flip:
                im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if self.vertical_flip:
                im = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            images.append(im)
        return images, (text or "").strip()

    def compute_stats_batched(self, samples: list[dict]) -> list[dict]:
        key = StatsKeys.image_text_matching_score
        todo, images, texts, owner = [], [], [], []
        error: Optional[Exception] = None
        for s in samples:
            if key in s[Fields.stats]:
                continue  # computed by an earlier run of this op
            if self.recall(s, _MISSING) is not _MISSING:  # before this batch's per-sample retry
                s[Fields.stats][key] = self.recall(s)
                continue
            try:
                ims, text = self._prepare(s)
            except OpError as exc:
                error = error or exc
                continue
            if not ims:
                s[Fields.stats][key] = None
                continue
            owner += [len(todo)] * len(ims)
            todo.append(s)
            images += ims
            texts += [text] * len(ims)
        if images:
            scores = self._m_blip.itm_scores(images, texts, self.model_batch_size).tolist()
            per_sample = [[] for _ in todo]
            for o, v in zip(owner, scores):
                per_sample[o].append(v)
            for s, vals in zip(todo, per_sample):
                s[Fields.stats][key] = float(REDUCE[self.reduce_mode](vals))
                self.remember(s, s[Fields.stats][key])
        if error is not None:
            raise error  # the executor retries each sample alone; done ones are remembered
        return samples

    def process_batched(self, samples: list[dict]) -> list:
        out = []
        for s in samples:
            v = s[Fields.stats][StatsKeys.image_text_matching_score]
            ok = [self.in_range(x, self.min_score, self.max_score)
                  for x in ([] if v is None else v if isinstance(v, list) else [v])]
            if not ok or (any(ok) if self.any else all(ok)):
                out.append(True)
            else:
                out.append((False, f"image_text_matching_score={v:.4f} "
                                   f"{self.range_miss(self.min_score, self.max_score)}"))
        return out
