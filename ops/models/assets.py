"""Model name resolution (local path -> assets_cache -> library cache -> download) and the
per-process cache of loaded models.

Resolution never touches the network before every local place has been checked, and never at
all when offline (``IMGJUICER_OFFLINE``, ``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE`` or
``YOLO_OFFLINE`` set to a true value): then a missing model is one ``ModelNotFoundError``
naming the model, every place searched and the command that fetches it.
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = "tools/fetch_models.py"
OFFLINE_VARS = ("IMGJUICER_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE")
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})

# Files that make a directory a complete transformers save_pretrained model.
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                   "pytorch_model.bin.index.json")


def env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


_FORCED = threading.local()


@contextlib.contextmanager
def forced_offline():
    """Within this block (this thread), resolvers look only at local disk, whatever the
    environment says: used to check that models are present without ever downloading."""
    depth = getattr(_FORCED, "depth", 0)
    _FORCED.depth = depth + 1
    try:
        yield
    finally:
        _FORCED.depth = depth


def offline_reason() -> Optional[str]:
    """The environment variable that makes this process offline, or None when downloads are on."""
    if getattr(_FORCED, "depth", 0):
        return "checking local files only"
    for var in OFFLINE_VARS:
        if env_true(var):
            return f"{var}={os.environ[var]}"
    return None


def is_offline() -> bool:
    return offline_reason() is not None


def assets_dir() -> Path:
    """Where fetched weights live: ``$IMGJUICER_ASSETS`` or ``<repo>/assets_cache``."""
    env = os.environ.get("IMGJUICER_ASSETS", "").strip()
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "assets_cache"


def fetch_command(name: str) -> str:
    return f"python {FETCH_SCRIPT} {name}"


class ModelNotFoundError(FileNotFoundError):
    """A model that is neither on disk nor downloadable; the message says where we looked."""

    def __init__(self, model: str, searched: Iterable[str], reason: str = ""):
        self.model = model
        self.searched = list(searched)
        self.fetch_command = fetch_command(model)
        why = reason or (f"downloads are off ({offline_reason()})" if is_offline()
                         else "it could not be found")
        lines = [f"model '{model}' is not available: {why}.", "Searched:"]
        lines += [f"  - {s}" for s in self.searched]
        lines.append(f"Fetch it on a machine with network access: `{self.fetch_command}` "
                     f"(it writes to assets_cache/; copy that folder here or point "
                     f"IMGJUICER_ASSETS at it).")
        super().__init__("\n".join(lines))

    def __str__(self):  # FileNotFoundError would prefix errno noise otherwise
        return self.args[0]


def is_explicit_path(name: str) -> bool:
    """True when ``name`` is meant as a filesystem path rather than a model id."""
    return (name.startswith(("/", "./", "../", "~")) or os.path.isabs(name)
            or os.path.exists(os.path.expanduser(name)))


def has_hf_weights(d: Path) -> bool:
    return (d / "config.json").is_file() and any((d / f).is_file() for f in HF_WEIGHT_FILES)


def hf_cache_dir() -> str:
    from huggingface_hub import constants
    return str(constants.HF_HUB_CACHE)


def hf_cached_file(repo_id: str, filename: str) -> Optional[Path]:
    """A file of ``repo_id`` already in the HF hub cache (no network), or None."""
    from huggingface_hub import try_to_load_from_cache
    try:
        hit = try_to_load_from_cache(repo_id, filename)
    except Exception:  # invalid repo id for the hub (e.g. a bare arch name)
        return None
    return Path(hit) if isinstance(hit, str) and os.path.isfile(hit) else None


def resolve_hf(name: str) -> str:
    """A local directory holding a save_pretrained model for ``name``; or ``name`` itself when
    it must be downloaded (only when online).  Raises ModelNotFoundError."""
    if is_explicit_path(name):
        p = Path(name).expanduser().resolve()
        if has_hf_weights(p):
            return str(p)
        what = ("does not exist" if not p.exists()
                else "is not a save_pretrained folder (config.json + weights)")
        raise ModelNotFoundError(name, [str(p)], reason=f"the path {what}")
    searched = []
    local = assets_dir() / name
    searched.append(f"{local} (assets_cache)")
    if has_hf_weights(local):
        return str(local)
    config = hf_cached_file(name, "config.json")
    searched.append(f"{hf_cache_dir()} (Hugging Face hub cache)")
    if config is not None and has_hf_weights(config.parent):
        return str(config.parent)
    if is_offline():
        raise ModelNotFoundError(name, searched)
    return name


def resolve_file(name: str, library_dirs: Iterable[tuple[Path, str]] = ()) -> Optional[Path]:
    """A single weights file: explicit path -> assets_cache/<name> -> each library dir.  Returns
    None when it is not on disk and downloads are on; raises ModelNotFoundError offline."""
    if is_explicit_path(name) or os.sep in name:
        p = Path(name).expanduser().resolve()
        if p.is_file():
            return p
        raise ModelNotFoundError(name, [str(p)], reason="the path does not exist")
    searched = []
    for d, label in [(assets_dir(), "assets_cache"), *library_dirs]:
        cand = Path(d) / name
        searched.append(f"{cand} ({label})")
        if cand.is_file():
            return cand.resolve()
    if is_offline():
        raise ModelNotFoundError(name, searched)
    return None


# ---------------------------------------------------------------------- loaded-model cache
_LOADED: dict = {}
_LOCK = threading.RLock()


def normalise_device(device) -> str:
    d = str(device or "cpu")
    return "cuda:0" if d == "cuda" else d


def shared_model(kind: str, key: str, device: str, factory: Callable[[], T]) -> T:
    """One loaded copy per process per (kind, resolved model, device), shared by every op."""
    k = (kind, key, normalise_device(device))
    with _LOCK:
        model = _LOADED.get(k)
        if model is None:
            model = _LOADED[k] = factory()
        return model


def loaded_models() -> list[tuple]:
    with _LOCK:
        return list(_LOADED)


def clear_loaded() -> None:
    """Forget every loaded model (tests; freeing memory between benchmark phases)."""
    with _LOCK:
        _LOADED.clear()
