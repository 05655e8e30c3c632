"""Caption images with BLIP: new samples carrying the captions (Data-Juicer's way), or captions
written into columns, e.g. the caption1 / caption2 an ImgDiff pair needs."""
from __future__ import annotations

import copy
import random
from typing import Literal, Optional

from ops.base import Mapper, OpError, logger
from ops.fields import Fields
from ops.image.io import load_image
from ops.registry import OPERATORS
from ops.special_tokens import EOC, IMAGE, only_special_tokens, remove_special_tokens

MODES = ("random_any", "similar_one_simhash", "all")


def _simhash(text: str):
    from simhash import Simhash
    words = text.lower().split()
    return Simhash([" ".join(words[i:i + 2]) for i in range(max(len(words) - 1, 1))])


@OPERATORS.register_module("image_captioning_mapper")
class ImageCaptioningMapper(Mapper):
    """Generates ``caption_num`` candidate captions per image with an image-to-text model
    (``hf_img2seq``: BLIP, BLIP-2 or another ``AutoModelForImageTextToText`` checkpoint) and
    keeps ``keep_candidate_mode``: ``random_any`` one at random (fixed by ``seed`` and the
    sample), ``similar_one_simhash`` the one closest to the original text (SimHash of word
    bigrams), ``all`` every one.

    Without ``caption_keys`` (Data-Juicer's behaviour) each sample with images gets new
    samples whose text is the captions (one per candidate in ``all`` mode), placed after each
    ``<__dj__image>`` token chunk by chunk; a text without tokens becomes the captions of all
    its images, space-separated.  The original is kept unless ``keep_original_sample`` is
    false; a sample without images is always kept as is.

    With ``caption_keys`` no sample is added: the caption of the single image in column
    ``image_keys[i]`` (default ``image_key``) is written to column ``caption_keys[i]`` when
    that column is empty or missing (always, with ``overwrite``).  This makes uncaptioned
    pairs ready for ImgDiff: ``image_keys: [image_path1, image_path2]``,
    ``caption_keys: [caption1, caption2]``.

    ``prompt`` (or a per-sample prompt in column ``prompt_key``, which wins) starts every
    caption.  Decoding is greedy (the ``caption_num`` best beams) unless ``do_sample``;
    ``trust_remote_code`` goes to Hugging Face's ``from_pretrained``.  All images of a batch are
    captioned together, ``model_batch_size`` per ``generate`` call."""

    accelerator = "cuda"
    extra = "models"          # torch, transformers: see ops/extras.py
    model_params = {"hf_img2seq": "hf"}
    batched = True

    def __init__(self, hf_img2seq: str = "Salesforce/blip-image-captioning-base",
                 trust_remote_code: bool = False, caption_num: int = 1,
                 keep_candidate_mode: Literal["random_any", "similar_one_simhash", "all"] =
                 "random_any", keep_original_sample: bool = True, prompt: Optional[str] = None,
                 prompt_key: Optional[str] = None, caption_keys: Optional[list[str]] = None,
                 image_keys: Optional[list[str]] = None, overwrite: bool = False,
                 do_sample: bool = False, max_new_tokens: int = 128, seed: int = 0,
                 model_batch_size: int = 16, batch_size: int = 32, **kwargs):
        super().__init__(batch_size=batch_size, **kwargs)
        if caption_num < 1 or max_new_tokens < 1 or model_batch_size < 1:
            raise ValueError("caption_num, max_new_tokens and model_batch_size must be >= 1")
        if keep_candidate_mode not in MODES:
            raise ValueError(f"keep_candidate_mode must be one of {list(MODES)}, got "
                             f"{keep_candidate_mode!r}")
        if caption_keys is not None:
            image_keys = list(image_keys) if image_keys else [self.image_key]
            if len(image_keys) != len(caption_keys) or not caption_keys:
                raise ValueError(f"caption_keys {list(caption_keys)} and image_keys "
                                 f"{image_keys} must name the same number of columns")
            if keep_candidate_mode == "all":
                raise ValueError("keep_candidate_mode 'all' makes new samples; with "
                                 "caption_keys choose random_any or similar_one_simhash")
            if not keep_original_sample:
                raise ValueError("caption_keys fills columns in place: keep_original_sample "
                                 "must stay true")
        elif image_keys is not None:
            raise ValueError("image_keys goes with caption_keys (which column's image "
                             "captions which column)")
        if prompt and prompt_key:
            logger.warning("image_captioning_mapper: both prompt and prompt_key set; a "
                           "sample's own prompt (prompt_key) wins")
        self.hf_img2seq, self.trust_remote_code = hf_img2seq, trust_remote_code
        self.caption_num, self.keep_candidate_mode = int(caption_num), keep_candidate_mode
        self.keep_original_sample = keep_original_sample
        self.prompt, self.prompt_key = prompt, prompt_key
        self.caption_keys = list(caption_keys) if caption_keys is not None else None
        self.image_keys, self.overwrite = image_keys, overwrite
        self.do_sample, self.max_new_tokens, self.seed = do_sample, max_new_tokens, int(seed)
        self.model_batch_size = model_batch_size

    def setup(self):
        from ops.models.blip import load_blip_captioner
        self._m_captioner = load_blip_captioner(self.hf_img2seq, device=self.device,
                                                trust_remote_code=self.trust_remote_code)

    # ------------------------------------------------------------------ helpers
    def _prompt(self, sample: dict) -> Optional[str]:
        own = sample.get(self.prompt_key) if self.prompt_key else None
        return own if isinstance(own, str) and own else (self.prompt or None)

    def _pick(self, candidates: list[str], original: str, sample: dict, slot: int) -> list[str]:
        if self.keep_candidate_mode == "all":
            return candidates
        if self.keep_candidate_mode == "similar_one_simhash" and original.strip():
            ref = _simhash(original)
            return [min(candidates, key=lambda c: ref.distance(_simhash(c)))]
        rng = random.Random(f"{self.seed}:{sample.get(Fields.id)}:{slot}")
        return [rng.choice(candidates)]

    def _jobs(self, sample: dict) -> list[tuple]:
        """(slot, path) of every image this sample needs captioned."""
        if self.caption_keys is None:
            paths = self.image_paths(sample) if sample.get(self.image_key) else []
            text = sample.get(self.text_key)
            if isinstance(text, str) and text.count(IMAGE) > len(paths):
                raise OpError(f"the text has {text.count(IMAGE)} image tokens but the sample "
                              f"has {len(paths)} image(s)")
            return list(enumerate(paths))
        jobs = []
        for slot, (img_col, cap_col) in enumerate(zip(self.image_keys, self.caption_keys)):
            current = sample.get(cap_col)
            if isinstance(current, str) and current.strip() and not self.overwrite:
                continue
            paths = self.image_paths(sample, img_col)
            if len(paths) != 1:
                raise OpError(f"column '{img_col}' must hold one image to caption into "
                              f"'{cap_col}', got {len(paths)}")
            jobs.append((slot, paths[0]))
        return jobs

    # ------------------------------------------------------------------ the batch
    def process_batched(self, samples: list[dict]) -> list[dict]:
        plans, images, prompts = {}, [], []
        error: Optional[Exception] = None
        for i, s in enumerate(samples):
            if self.recall(s) is not None:      # captioned before this batch's retry
                continue
            try:
                jobs = self._jobs(s)
                loaded = {p: load_image(p) for p in dict.fromkeys(p for _, p in jobs)}
            except OpError as exc:
                error = error or exc
                continue
            plans[i] = jobs
            images += [loaded[p] for _, p in jobs]
            prompts += [self._prompt(s)] * len(jobs)
        caps = self._m_captioner.captions(
            images, prompts, self.caption_num, self.do_sample, self.max_new_tokens,
            self.model_batch_size, self.seed) if images else []
        pos = 0
        for i, jobs in plans.items():
            per_slot, empty = {}, None
            for k, (slot, path) in enumerate(jobs):
                per_slot[slot] = [c for c in caps[pos + k] if c]
                if not per_slot[slot]:
                    empty = OpError(f"{path}: the captioning model returned only empty captions")
            pos += len(jobs)
            if empty is not None:
                error = error or empty
            else:
                self.remember(samples[i], per_slot)
        if error is not None:
            # the executor retries each sample alone: the captioned ones get their captions back
            raise error
        out = []
        for s in samples:
            per_slot = self.recall(s)
            if self.caption_keys is not None:
                for slot, cands in per_slot.items():
                    original = s.get(self.caption_keys[slot]) or ""
                    s[self.caption_keys[slot]] = self._pick(cands, str(original), s, slot)[0]
                out.append(s)
            else:
                out += self._fan_out(s, [per_slot[k] for k in sorted(per_slot)])
        return out

    def _fan_out(self, sample: dict, candidates: list[list[str]]) -> list[dict]:
        if not candidates:
            return [sample]                     # no image: nothing to caption, kept as is
        text = sample.get(self.text_key) or ""
        if not isinstance(text, str):
            raise OpError(f"column '{self.text_key}' must hold text, got {type(text).__name__}")
        chunks = text.split(EOC) if IMAGE in text else [text]
        picked = [self._pick(c, remove_special_tokens(_chunk_of(chunks, j)), sample, j)
                  for j, c in enumerate(candidates)]
        n_new = min(len(p) for p in picked)     # 1 unless "all" (empty captions dropped)
        rows = [sample] if self.keep_original_sample else []
        for k in range(n_new):
            new = copy.deepcopy(sample)
            new[self.text_key] = _compose(text, [p[k] for p in picked])
            new[Fields.id] = f"{sample.get(Fields.id)}/{k + 1}"
            rows.append(new)
        return rows


def _chunk_of(chunks: list[str], image_index: int) -> str:
    """The chunk holding the image_index-th image token (the whole text without tokens)."""
    seen = 0
    for chunk in chunks:
        seen += chunk.count(IMAGE)
        if image_index < seen:
            return chunk
    return chunks[-1] if chunks else ""


def _compose(text: str, captions: list[str]) -> str:
    """The generated text: each chunk's special tokens with a caption after each image token;
    a text without image tokens becomes the captions, space-separated."""
    if IMAGE not in text:
        return " ".join(captions)
    out, it = [], iter(captions)
    for chunk in text.split(EOC):
        if not chunk.strip():
            continue
        tokens = only_special_tokens(chunk)
        parts = tokens.split(IMAGE)
        body = parts[0] + "".join(f"{IMAGE} {next(it, '')} {rest}" for rest in parts[1:])
        out.append(body + EOC)
    return "".join(out)
