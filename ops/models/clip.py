"""CLIP image embeddings from transformers or open_clip checkpoints, batched, one copy per process.

Model names:
  * a Hugging Face id or save_pretrained folder: ``openai/clip-vit-base-patch32``
  * open_clip: ``open_clip:<arch>/<pretrained tag>`` (``open_clip:ViT-B-32/laion2b_s34b_b79k``),
    ``open_clip:<arch>`` (weights in ``assets_cache/open_clip/<arch>/``), the same without the
    ``open_clip:`` prefix when ``<arch>`` is an open_clip architecture (``ViT-B-32``), or a
    folder holding ``open_clip_config.json`` plus weights (open_clip's ``local-dir`` layout).
open_clip weights are looked up in ``assets_cache/open_clip/<arch>/<tag>/`` (a weights file, or
a full local-dir folder), then in the Hugging Face cache under the tag's hub repo.
"""
from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from .assets import (ModelNotFoundError, assets_dir, hf_cache_dir, hf_cached_file,
                     is_explicit_path, is_offline, normalise_device, resolve_hf, shared_model)

if TYPE_CHECKING:
    import torch
    from PIL import Image

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
OPEN_CLIP_PREFIX = "open_clip:"
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin",
                     "open_clip_model.pt", "model.safetensors", "pytorch_model.bin")


class ClipModel:
    """A loaded CLIP image tower: ``embed_images`` -> L2-normalised (N, D) float32 on CPU."""

    def __init__(self, name: str, device: str, family: str, encode: Callable,
                 preprocess: Callable, dim: int, max_batch_size: int = 64):
        self.name, self.device, self.family = name, device, family
        self._encode, self._preprocess = encode, preprocess
        self.dim = dim
        self.max_batch_size = max_batch_size
        self.forward_passes = 0
        self._encode_text: Optional[Callable] = None   # texts -> (N, D), see attach_text

    @property
    def has_text(self) -> bool:
        return self._encode_text is not None

    def attach_text(self, encode_text: Callable) -> None:
        """Give the model its text tower: ``encode_text(list[str]) -> (N, D)`` features."""
        self._encode_text = encode_text

    def embed_texts(self, texts: list[str], batch_size: Optional[int] = None) -> "torch.Tensor":
        """L2-normalised (N, D) float32 text embeddings on CPU (texts longer than the model's
        context are truncated).  Needs a model loaded with ``load_clip(..., with_text=True)``."""
        import torch
        import torch.nn.functional as F
        if self._encode_text is None:
            raise RuntimeError(f"{self!r} was loaded without its text tower: use "
                               "load_clip(name, with_text=True)")
        bs = int(batch_size or self.max_batch_size)
        if bs < 1:
            raise ValueError("batch_size must be >= 1")
        if not texts:
            return torch.zeros((0, self.dim), dtype=torch.float32)
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), bs):
                feats = self._encode_text(list(texts[i:i + bs]))
                self.forward_passes += 1
                out.append(F.normalize(feats.float(), dim=-1).cpu())
        return torch.cat(out)

    def embed_images(self, images: list["Image.Image"],
                     batch_size: Optional[int] = None) -> "torch.Tensor":
        import torch
        import torch.nn.functional as F
        bs = int(batch_size or self.max_batch_size)
        if bs < 1:
            raise ValueError("batch_size must be >= 1")
        if not images:
            return torch.zeros((0, self.dim), dtype=torch.float32)
        out = []
        with torch.inference_mode():
            for i in range(0, len(images), bs):
                chunk = [im if im.mode == "RGB" else im.convert("RGB") for im in images[i:i + bs]]
                pixels = self._preprocess(chunk).to(self.device)
                feats = self._encode(pixels)
                self.forward_passes += 1
                out.append(F.normalize(feats.float(), dim=-1).cpu())
        return torch.cat(out)

    def pair_similarity(self, images_a: list["Image.Image"], images_b: list["Image.Image"],
                        batch_size: Optional[int] = None) -> "torch.Tensor":
        """(N,) cosine similarity of ``images_a[i]`` and ``images_b[i]`` (one embed call)."""
        if len(images_a) != len(images_b):
            raise ValueError(f"pair_similarity needs equal lists, got {len(images_a)} and "
                             f"{len(images_b)} images")
        emb = self.embed_images(list(images_a) + list(images_b), batch_size)
        n = len(images_a)
        return (emb[:n] * emb[n:]).sum(-1).clamp(-1.0, 1.0)  # rounding can pass 1 otherwise

    def __repr__(self):
        return f"<ClipModel {self.name!r} ({self.family}) on {self.device}>"


# ---------------------------------------------------------------------- name parsing
def _open_clip_spec(name: str) -> Optional[tuple[str, Optional[str]]]:
    """(arch, tag) when ``name`` names an open_clip model, else None."""
    if name.startswith(OPEN_CLIP_PREFIX):
        spec = name[len(OPEN_CLIP_PREFIX):].strip()
        if not spec:
            raise ValueError(f"empty open_clip model name {name!r}: use open_clip:<arch>[/<tag>]")
    elif is_explicit_path(name):
        return None
    else:
        spec = name
    arch, _, tag = spec.partition("/")
    if not name.startswith(OPEN_CLIP_PREFIX) and arch not in open_clip_archs():
        return None
    return arch, (tag or None)


@functools.lru_cache(maxsize=1)
def open_clip_archs() -> frozenset:
    """open_clip's built-in architecture names, read from its config folder (no import)."""
    import importlib.util
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.origin:
        return frozenset()
    return frozenset(p.stem for p in (Path(spec.origin).parent / "model_configs").glob("*.json"))


def _find_weights(d: Path) -> Optional[Path]:
    for f in OPEN_CLIP_WEIGHTS:
        if (d / f).is_file():
            return d / f
    if d.is_dir():  # a hub file saved under its own name
        found = sorted(f for f in d.iterdir()
                       if f.is_file() and f.suffix in (".safetensors", ".bin", ".pt"))
        if len(found) == 1:
            return found[0]
    return None


def _resolve_open_clip(name: str, arch: str, tag: Optional[str]) -> tuple[str, dict]:
    """-> (cache key, kwargs for open_clip.create_model_and_transforms)."""
    import open_clip
    folder = assets_dir() / "open_clip" / arch / (tag or "")
    searched = [f"{folder} (assets_cache: open_clip_config.json + weights, or a weights file)"]
    if (folder / "open_clip_config.json").is_file() and _find_weights(folder):
        return f"local-dir:{folder}", {"model_name": f"local-dir:{folder}"}
    weights = _find_weights(folder)
    if arch not in open_clip.list_models():
        raise ModelNotFoundError(name, searched, reason=(
            f"'{arch}' is not an open_clip architecture and {folder} has no "
            "open_clip_config.json to define it"))
    pre_cfg = open_clip.get_pretrained_cfg(arch, tag) if tag else {}
    force_pre = {k: pre_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode")
                 if k in pre_cfg}
    # weights trained with QuickGELU (the "openai" tags) need it switched on when loaded by file
    quick = {"force_quick_gelu": True} if pre_cfg.get("quick_gelu") else {}
    if weights is None and pre_cfg.get("hf_hub"):
        repo, fname = os.path.split(pre_cfg["hf_hub"])  # "org/repo/" or "org/repo/file"
        for f in ([fname] if fname else OPEN_CLIP_WEIGHTS[:2]):
            weights = hf_cached_file(repo, f)
            if weights:
                break
        searched.append(f"{hf_cache_dir()} (Hugging Face hub cache, repo {repo})")
    if weights is not None:
        return str(weights), {"model_name": arch, "pretrained": str(weights),
                              "force_preprocess_cfg": force_pre or None, **quick}
    if is_offline():
        raise ModelNotFoundError(name, searched)
    if not tag:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ModelNotFoundError(name, searched, reason=(
            f"no weights on disk and no pretrained tag to download; name one, e.g. "
            f"open_clip:{arch}/{tags[0] if tags else '<tag>'} (tags: {', '.join(tags) or 'none'})"))
    if not pre_cfg:
        raise ValueError(f"open_clip has no pretrained tag '{tag}' for {arch}; tags: "
                         f"{', '.join(open_clip.list_pretrained_tags_by_model(arch))}")
    return f"{arch}/{tag}", {"model_name": arch, "pretrained": tag}


# ---------------------------------------------------------------------- loaders
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


def _hf_text_encoder(model, where: str, device: str) -> Callable:
    from transformers import AutoTokenizer
    local = os.path.isdir(where)
    if local and not any((Path(where) / f).is_file() for f in TOKENIZER_FILES):
        raise ModelNotFoundError(where, [where], reason=(
            "the folder has no tokenizer (tokenizer.json or vocab.json + merges.txt), which "
            "the text tower needs; save the full model, e.g. with tools/fetch_models.py"))
    tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=local)
    text = model.text_model.eval().to(device)
    projection = model.text_projection.eval().to(device)
    max_len = int(model.config.text_config.max_position_embeddings)

    def encode_text(texts):
        tok = tokenizer(texts, padding=True, truncation=True, max_length=max_len,
                        return_tensors="pt").to(device)
        return projection(text(input_ids=tok["input_ids"],
                               attention_mask=tok["attention_mask"]).pooler_output)

    return encode_text


def _load_hf(name: str, where: str, device: str, with_text: bool = False,
             trust_remote_code: bool = False) -> ClipModel:
    import torch
    from transformers import AutoImageProcessor, CLIPModel
    local = os.path.isdir(where)
    model = CLIPModel.from_pretrained(where, local_files_only=local, dtype=torch.float32,
                                      trust_remote_code=trust_remote_code)
    processor = AutoImageProcessor.from_pretrained(where, local_files_only=local,
                                                   trust_remote_code=trust_remote_code)
    vision = model.vision_model.eval().to(device)
    projection = model.visual_projection.eval().to(device)
    dim = int(model.config.projection_dim)
    text = _hf_text_encoder(model, where, device) if with_text else None
    del model  # without with_text the text tower is never used: let it go

    def encode(pixels):
        return projection(vision(pixel_values=pixels).pooler_output)

    def preprocess(images):
        return processor(images=images, return_tensors="pt",
                         input_data_format="channels_last")["pixel_values"]

    clip = ClipModel(name, device, "hf", encode, preprocess, dim)
    if text is not None:
        clip.attach_text(text)
    return clip


def _hf_text_only(where: str, device: str) -> Callable:
    import torch
    from transformers import CLIPModel
    model = CLIPModel.from_pretrained(where, local_files_only=os.path.isdir(where),
                                      dtype=torch.float32)
    return _hf_text_encoder(model, where, device)


def _open_clip_text_encoder(model, kwargs: dict, device: str) -> Callable:
    import open_clip
    import torch
    tokenizer = open_clip.get_tokenizer(kwargs["model_name"])
    model.visual = torch.nn.Identity()      # only the text tower is kept
    model = model.eval().to(device)

    def encode_text(texts):
        return model.encode_text(tokenizer(texts).to(device))

    return encode_text


def _create_open_clip(kwargs: dict):
    import open_clip
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return open_clip.create_model_and_transforms(**kwargs, device="cpu", weights_only=True)


def _load_open_clip(name: str, kwargs: dict, device: str, with_text: bool = False) -> ClipModel:
    import torch
    model, _, preprocess_one = _create_open_clip(kwargs)
    visual = model.visual.eval().to(device)
    dim = int(getattr(visual, "output_dim", 0) or 0)
    text = _open_clip_text_encoder(model, kwargs, device) if with_text else None
    del model

    def preprocess(images):
        return torch.stack([preprocess_one(im) for im in images])

    clip = ClipModel(name, device, "open_clip", visual, preprocess, dim)
    if text is not None:
        clip.attach_text(text)
    return clip


_TEXT_LOCK = threading.Lock()


def load_clip(name: str = DEFAULT_CLIP, device: str = "cpu", with_text: bool = False,
              trust_remote_code: bool = False) -> ClipModel:
    """The process-wide ClipModel for ``name`` on ``device`` (loaded on first use).  With
    ``with_text`` it also has its text tower (``embed_texts``); a copy loaded earlier without
    one gets it attached, so image and text ops share one vision tower.
    ``trust_remote_code`` goes to Hugging Face's ``from_pretrained`` (HF models)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"CLIP model name must be a non-empty string, got {name!r}")
    name, device = name.strip(), normalise_device(device)
    if is_explicit_path(name) and (Path(name).expanduser() / "open_clip_config.json").is_file():
        folder = Path(name).expanduser().resolve()
        key, kwargs = f"local-dir:{folder}", {"model_name": f"local-dir:{folder}"}
        is_open_clip = True
    else:
        spec = _open_clip_spec(name)
        is_open_clip = spec is not None
        if is_open_clip:
            key, kwargs = _resolve_open_clip(name, *spec)
    if is_open_clip:
        model = shared_model("clip", key, device,
                             lambda: _load_open_clip(name, kwargs, device, with_text))

        def text_tower():
            return _open_clip_text_encoder(_create_open_clip(kwargs)[0], kwargs, device)
    else:
        where = resolve_hf(name)
        model = shared_model("clip", where, device,
                             lambda: _load_hf(name, where, device, with_text,
                                              trust_remote_code))

        def text_tower():
            return _hf_text_only(where, device)
    if with_text and not model.has_text:
        with _TEXT_LOCK:
            if not model.has_text:
                model.attach_text(text_tower())
    return model
