"""Download model weights into assets_cache/: the library behind ``tools/fetch_models.py``
(its command line: ``pipelines/cli/fetch_models.py``) and the model check's download on first use.

    python tools/fetch_models.py                 # defaults: CLIP, BLIP ITM, FastSAM-x, FastSAM-s,
                                                 # BLIP captioning, YOLO11n
    python tools/fetch_models.py FastSAM-s.pt openai/clip-vit-base-patch32
    python tools/fetch_models.py --recipe recipes/imgdiff-dataset.yaml   # what a recipe needs
    python tools/fetch_models.py --list          # what is known and what is already on disk
    python tools/fetch_models.py --dry-run NAME  # where NAME would go, without downloading

Names are what the loaders accept: a Hugging Face id (saved under assets_cache/<id>/), an
open_clip name ``open_clip:<arch>/<tag>`` (assets_cache/open_clip/<arch>/<tag>/), or an
ultralytics asset file ``FastSAM-x.pt`` (assets_cache/FastSAM-x.pt).  Short aliases: clip,
blip, fastsam-x, fastsam-s, blip-caption, yolo.  The same code downloads a recipe's missing
models on first use (``ops/models/requirements.py``); ``--recipe`` reads the same declarations.
"""
from __future__ import annotations

import logging
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .assets import HF_WEIGHT_FILES, has_hf_weights

logger = logging.getLogger("imgjuicer")

ALIASES = {
    "clip": "openai/clip-vit-base-patch32",
    "blip": "Salesforce/blip-itm-base-coco",
    "fastsam-x": "FastSAM-x.pt",
    "fastsam-s": "FastSAM-s.pt",
    "blip-caption": "Salesforce/blip-image-captioning-base",   # image_captioning_mapper
    "yolo": "yolo11n.pt",                                      # image_detection_yolo_mapper
}
DEFAULTS = ALIASES
ULTRALYTICS_RELEASE = "v8.4.0"
ULTRALYTICS_URL = "https://github.com/ultralytics/assets/releases/download/{release}/{name}"
HF_FILES = ["*.json", "*.txt", "*.model", "*.safetensors"]   # configs, vocabularies, weights
HOSTS = {"hf": "https://huggingface.co", "open_clip": "https://huggingface.co",
         "ultralytics": "https://github.com"}


class FetchError(Exception):
    """A name we cannot fetch, or a download that failed; the message says why."""


@dataclass
class Plan:
    name: str          # as the loaders will be given it
    kind: str          # "hf" | "open_clip" | "ultralytics"
    target: Path       # file or folder under the assets dir

    def present(self) -> bool:
        if self.kind == "hf":
            return has_hf_weights(self.target)
        if self.kind == "open_clip":
            return self.target.is_dir() and any(
                f.suffix in (".safetensors", ".bin", ".pt") for f in self.target.iterdir())
        return self.target.is_file()

    @property
    def host(self) -> str:
        if self.kind in ("hf", "open_clip"):
            return os.environ.get("HF_ENDPOINT", "").strip() or HOSTS[self.kind]
        return HOSTS[self.kind]


def plan_for(name: str, root: Path) -> Plan:
    """Which kind of model ``name`` is and where it goes; raises FetchError for nonsense."""
    from .clip import OPEN_CLIP_PREFIX, open_clip_archs

    name = ALIASES.get(name.lower(), name).strip()
    if name.startswith(OPEN_CLIP_PREFIX):
        arch, _, tag = name[len(OPEN_CLIP_PREFIX):].partition("/")
        if not arch or not tag:
            raise FetchError(f"{name!r}: open_clip names to fetch need a pretrained tag: "
                             "open_clip:<arch>/<tag>, e.g. open_clip:ViT-B-32/laion2b_s34b_b79k")
        return Plan(name, "open_clip", root / "open_clip" / arch / tag)
    if name.endswith(".pt"):
        if "/" in name or os.sep in name:
            raise FetchError(f"{name!r}: give the ultralytics asset file name only, e.g. "
                             "FastSAM-x.pt")
        return Plan(name, "ultralytics", root / name)
    parts = name.split("/")
    if len(parts) == 2 and parts[0] in open_clip_archs():   # ViT-B-32/laion2b_s34b_b79k
        return plan_for(OPEN_CLIP_PREFIX + name, root)
    if len(parts) == 2 and all(parts) and not name.startswith("."):
        return Plan(name, "hf", root / name)
    raise FetchError(f"{name!r} is not a Hugging Face id (org/name), an open_clip name "
                     f"(open_clip:<arch>/<tag>) or an ultralytics .pt file; known aliases: "
                     f"{', '.join(ALIASES)}")


def fetch_hf(plan: Plan) -> None:
    from huggingface_hub import snapshot_download
    plan.target.mkdir(parents=True, exist_ok=True)
    snapshot_download(plan.name, local_dir=plan.target, allow_patterns=HF_FILES)
    if not has_hf_weights(plan.target):  # an older repo with .bin weights only
        snapshot_download(plan.name, local_dir=plan.target,
                          allow_patterns=["pytorch_model.bin", "pytorch_model*.bin",
                                          "pytorch_model.bin.index.json"])
    if not has_hf_weights(plan.target):
        raise FetchError(f"{plan.name}: downloaded, but found none of {', '.join(HF_WEIGHT_FILES)}"
                         f" in {plan.target}")


def fetch_open_clip(plan: Plan) -> None:
    import open_clip
    from huggingface_hub import hf_hub_download
    arch, tag = plan.name.split(":", 1)[1].split("/", 1)
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise FetchError(f"{plan.name}: open_clip knows no tag '{tag}' for '{arch}'"
                         + (f"; tags: {', '.join(tags)}" if tags else " (unknown architecture)"))
    if not cfg.get("hf_hub"):
        raise FetchError(f"{plan.name}: this tag is not hosted on the Hugging Face hub")
    repo, filename = os.path.split(cfg["hf_hub"])
    plan.target.mkdir(parents=True, exist_ok=True)
    errors = []
    for f in ([filename] if filename else ["open_clip_model.safetensors",
                                           "open_clip_pytorch_model.bin"]):
        try:
            hf_hub_download(repo, f, local_dir=plan.target)
            return
        except Exception as exc:  # try the next file name
            errors.append(f"{f}: {exc}")
    raise FetchError(f"{plan.name}: no weights file in {repo}: {'; '.join(errors)}")


def fetch_ultralytics(plan: Plan, release: str = ULTRALYTICS_RELEASE) -> None:
    """One release asset, streamed with a progress bar into a temp file, then renamed."""
    from tqdm.auto import tqdm
    url = ULTRALYTICS_URL.format(release=release, name=plan.name)
    plan.target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=plan.target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=plan.name) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        if os.path.getsize(tmp) < 100_000:
            raise FetchError(f"{plan.name}: {url} returned only {os.path.getsize(tmp)} bytes")
        os.replace(tmp, plan.target)
    except OSError as exc:
        raise FetchError(f"{plan.name}: downloading {url} failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch(plan: Plan, release: str = ULTRALYTICS_RELEASE) -> None:
    logger.info("fetching %s into %s", plan.name, plan.target)
    {"hf": fetch_hf, "open_clip": fetch_open_clip,
     "ultralytics": lambda p: fetch_ultralytics(p, release)}[plan.kind](plan)
