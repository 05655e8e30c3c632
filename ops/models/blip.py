"""BLIP image-text matching (ITM) scores, batched: each image is encoded once however many texts
it is paired with; and image captioning (BLIP / BLIP-2 ``generate``).  One copy per process."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from .assets import normalise_device, resolve_hf, shared_model

if TYPE_CHECKING:
    import torch
    from PIL import Image

DEFAULT_BLIP = "Salesforce/blip-itm-base-coco"


class BlipItmModel:
    """A loaded BlipForImageTextRetrieval used through its ITM head.

    ``forward_passes`` counts calls of the vision encoder and of the text encoder (each batched
    call is one pass)."""

    def __init__(self, name: str, device: str, model, processor, max_batch_size: int = 32):
        self.name, self.device = name, device
        self._model, self._processor = model, processor
        self.max_batch_size = max_batch_size
        self.forward_passes = 0
        cfg = model.config.text_config
        self.max_text_tokens = int(getattr(cfg, "max_position_embeddings", 512) or 512)

    def _tokenize(self, texts: list[str]):
        return self._processor.tokenizer(texts, padding=True, truncation=True,
                                         max_length=self.max_text_tokens, return_tensors="pt")

    def _pixels(self, images: list["Image.Image"]):
        images = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        return self._processor.image_processor(images=images, return_tensors="pt",
                                               input_data_format="channels_last")["pixel_values"]

    def itm_scores(self, images: list["Image.Image"], texts: list[str],
                   batch_size: Optional[int] = None) -> "torch.Tensor":
        """(N,) P(match) = softmax(itm_logits)[:, 1] of each pair (images[i], texts[i]).  The same
        PIL object appearing in several pairs is encoded once."""
        import torch
        if len(images) != len(texts):
            raise ValueError(f"itm_scores needs one text per image, got {len(images)} images and "
                             f"{len(texts)} texts")
        bad = [t for t in texts if not isinstance(t, str) or not t.strip()]
        if bad:
            raise ValueError(f"itm_scores got an empty or non-string text: {bad[0]!r}")
        bs = int(batch_size or self.max_batch_size)
        if bs < 1:
            raise ValueError("batch_size must be >= 1")
        n = len(images)
        scores = torch.zeros(n, dtype=torch.float32)
        if n == 0:
            return scores
        # unique images (by identity) and texts, and which pair uses which
        img_index: dict[int, int] = {}
        uniq_imgs = []
        pair_img = []
        for im in images:
            k = id(im)
            if k not in img_index:
                img_index[k] = len(uniq_imgs)
                uniq_imgs.append(im)
            pair_img.append(img_index[k])
        uniq_texts = list(dict.fromkeys(texts))
        text_index = {t: i for i, t in enumerate(uniq_texts)}
        tokens = self._tokenize(uniq_texts)
        ids_all, mask_all = tokens["input_ids"], tokens["attention_mask"]
        pairs_of = [[] for _ in uniq_imgs]
        for p, u in enumerate(pair_img):
            pairs_of[u].append(p)
        m = self._model
        with torch.inference_mode():
            for start in range(0, len(uniq_imgs), bs):
                chunk = list(range(start, min(start + bs, len(uniq_imgs))))
                embeds = m.vision_model(pixel_values=self._pixels(
                    [uniq_imgs[u] for u in chunk]).to(self.device)).last_hidden_state
                self.forward_passes += 1
                pairs = [p for u in chunk for p in pairs_of[u]]
                for ps in range(0, len(pairs), bs):
                    sel = pairs[ps:ps + bs]
                    rows = torch.tensor([pair_img[p] - start for p in sel], device=self.device)
                    t = torch.tensor([text_index[texts[p]] for p in sel])
                    ids, mask = ids_all[t], mask_all[t]
                    width = int(mask.sum(1).max())  # trim padding beyond the longest text here
                    enc = embeds.index_select(0, rows)
                    hidden = m.text_encoder(
                        input_ids=ids[:, :width].to(self.device),
                        attention_mask=mask[:, :width].to(self.device),
                        encoder_hidden_states=enc,
                        encoder_attention_mask=torch.ones(enc.shape[:-1], dtype=torch.long,
                                                          device=self.device),
                    ).last_hidden_state
                    self.forward_passes += 1
                    logits = m.itm_head(hidden[:, 0, :]).float()
                    scores[torch.tensor(sel)] = logits.softmax(-1)[:, 1].cpu()
        return scores

    def itm_matrix(self, images: list["Image.Image"], texts: list[str],
                   batch_size: Optional[int] = None) -> "torch.Tensor":
        """(len(images), len(texts)) P(match) of every image against every text."""
        import torch
        if not images or not texts:
            return torch.zeros((len(images), len(texts)), dtype=torch.float32)
        flat_imgs = [im for im in images for _ in texts]
        flat_txts = [t for _ in images for t in texts]
        return self.itm_scores(flat_imgs, flat_txts, batch_size).view(len(images), len(texts))

    def __repr__(self):
        return f"<BlipItmModel {self.name!r} on {self.device}>"


def _load(name: str, where: str, device: str, trust_remote_code: bool = False) -> BlipItmModel:
    import torch
    from transformers import BlipForImageTextRetrieval, BlipProcessor
    local = os.path.isdir(where)
    model = BlipForImageTextRetrieval.from_pretrained(where, local_files_only=local,
                                                      trust_remote_code=trust_remote_code,
                                                      dtype=torch.float32)
    processor = BlipProcessor.from_pretrained(where, local_files_only=local)
    return BlipItmModel(name, device, model.eval().to(device), processor)


def load_blip_itm(name: str = DEFAULT_BLIP, device: str = "cpu",
                  trust_remote_code: bool = False) -> BlipItmModel:
    """The process-wide BLIP ITM model for ``name`` on ``device`` (loaded on first use)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"BLIP model name must be a non-empty string, got {name!r}")
    name, device = name.strip(), normalise_device(device)
    where = resolve_hf(name)
    return shared_model("blip_itm", where, device,
                        lambda: _load(name, where, device, trust_remote_code))


# ---------------------------------------------------------------------- captioning
DEFAULT_CAPTIONER = "Salesforce/blip-image-captioning-base"


class CaptionModel:
    """A loaded image-to-text model (BLIP, BLIP-2 or any ``AutoModelForImageTextToText``
    checkpoint).  ``forward_passes`` counts ``generate`` calls."""

    def __init__(self, name: str, device: str, model, processor, max_batch_size: int = 16):
        self.name, self.device = name, device
        self._model, self._processor = model, processor
        self.max_batch_size = max_batch_size
        self.forward_passes = 0

    def captions(self, images: list["Image.Image"], prompts: Optional[list] = None,
                 num: int = 1, do_sample: bool = False, max_new_tokens: int = 128,
                 batch_size: Optional[int] = None, seed: int = 0) -> list[list[str]]:
        """``num`` captions per image (prompted images continue their prompt).  Without
        sampling, ``num > 1`` returns the ``num`` best beams; with it, draws are reproducible
        for a given ``seed`` and batch."""
        import torch
        if prompts is not None and len(prompts) != len(images):
            raise ValueError(f"captions needs one prompt per image, got {len(prompts)} for "
                             f"{len(images)}")
        bs = int(batch_size or self.max_batch_size)
        if bs < 1 or num < 1 or max_new_tokens < 1:
            raise ValueError("batch_size, num and max_new_tokens must be >= 1")
        prompts = list(prompts) if prompts is not None else [None] * len(images)
        out: list[list[str]] = [[] for _ in images]
        by_prompt: dict = {}
        for i, p in enumerate(prompts):       # a batch shares its prompt: no padded prompts
            by_prompt.setdefault(p, []).append(i)
        gen = {"max_new_tokens": int(max_new_tokens), "do_sample": bool(do_sample),
               "num_return_sequences": int(num)}
        if num > 1 and not do_sample:
            gen["num_beams"] = int(num)
        with torch.inference_mode(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for prompt, idx in by_prompt.items():
                for start in range(0, len(idx), bs):
                    sel = idx[start:start + bs]
                    ims = [images[i] if images[i].mode == "RGB" else images[i].convert("RGB")
                           for i in sel]
                    kwargs = {"text": [prompt] * len(ims)} if prompt else {}
                    inputs = self._processor(images=ims, return_tensors="pt", **kwargs)
                    limit = self._max_new_tokens(inputs, gen["max_new_tokens"])
                    ids = self._model.generate(**inputs.to(self.device),
                                               **{**gen, "max_new_tokens": limit})
                    self.forward_passes += 1
                    texts = self._processor.batch_decode(ids, skip_special_tokens=True)
                    for k, i in enumerate(sel):
                        out[i] = [t.strip() for t in texts[k * num:(k + 1) * num]]
        return out

    def _max_new_tokens(self, inputs, wanted: int) -> int:
        """No more new tokens than the text decoder has positions left after the prompt."""
        cfg = getattr(self._model.config, "text_config", None)
        positions = getattr(cfg, "max_position_embeddings", None)
        if not positions:
            return wanted
        prompt = inputs["input_ids"].shape[1] if "input_ids" in inputs else 1
        return max(1, min(wanted, int(positions) - prompt))

    def __repr__(self):
        return f"<CaptionModel {self.name!r} on {self.device}>"


def _load_captioner(name: str, where: str, device: str,
                    trust_remote_code: bool = False) -> CaptionModel:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    local = os.path.isdir(where)
    model = AutoModelForImageTextToText.from_pretrained(
        where, local_files_only=local, dtype=torch.float32, trust_remote_code=trust_remote_code)
    processor = AutoProcessor.from_pretrained(where, local_files_only=local,
                                              trust_remote_code=trust_remote_code)
    return CaptionModel(name, device, model.eval().to(device), processor)


def load_blip_captioner(name: str = DEFAULT_CAPTIONER, device: str = "cpu",
                        trust_remote_code: bool = False) -> CaptionModel:
    """The process-wide captioning model for ``name`` on ``device`` (loaded on first use).
    ``trust_remote_code`` goes to Hugging Face's ``from_pretrained``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"captioning model name must be a non-empty string, got {name!r}")
    name, device = name.strip(), normalise_device(device)
    where = resolve_hf(name)
    return shared_model("captioner", where, device,
                        lambda: _load_captioner(name, where, device, trust_remote_code))
