"""Shipped generation-loss weights: locate, save and load them; score files with them."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..image.io import ImageLoadError, decode_opened, open_image
from .features import Features, blas_one_thread, extract_image, file_info

WEIGHTS_NAME = "scorer.pt"
REPO_ASSETS = Path(__file__).resolve().parents[2] / "assets_cache"


def default_weights_path() -> Path:
    """$IMGJUICER_ASSETS/generation_loss/scorer.pt when that file exists, else the weights
    shipped in the repo's assets_cache (an assets dir holding only fetched models keeps
    the shipped scorer)."""
    shipped = REPO_ASSETS / "generation_loss" / WEIGHTS_NAME
    if os.environ.get("IMGJUICER_ASSETS"):
        custom = Path(os.environ["IMGJUICER_ASSETS"]) / "generation_loss" / WEIGHTS_NAME
        if custom.is_file() or not shipped.is_file():
            return custom
    return shipped


def save_weights(model, path: str | Path, extra: dict | None = None) -> Path:
    """Write the state dict + config (plain tensors and numbers: loadable weights_only)."""
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float32).cpu().contiguous()
             for k, v in model.state_dict().items()}
    torch.save({"config": dict(model.config), "state_dict": state, "extra": extra or {}}, path)
    return path


def load_model(path: str | Path | None = None, device: str = "cpu"):
    """The network with shipped (or given) weights, in eval mode."""
    import torch
    from .model import GenerationLossNet
    p = Path(path) if path else default_weights_path()
    if not p.is_file():
        raise FileNotFoundError(
            f"generation-loss weights not found at {p}; train them with "
            "`.venv/bin/python tools/train_scorer.py` or set IMGJUICER_ASSETS")
    blob = torch.load(p, map_location=device, weights_only=True)
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob:
        raise ValueError(f"{p} is not a generation-loss weights file (no config/state_dict)")
    model = GenerationLossNet(**blob["config"])
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval()


def load_with_info(path: str):
    """(RGB PIL image via the project's loader, FileInfo of the file) for one path."""
    raw = open_image(path)                 # header read: format, mode, JPEG tables
    info = file_info(raw, os.path.getsize(path), _head(path))
    img = decode_opened(raw, path, "RGB")
    info.width, info.height = img.size     # as displayed (EXIF orientation applied)
    return img, info


def file_features(path: str, k: int) -> Features:
    """Decode a file with the project's loader and extract scorer features."""
    img, info = load_with_info(path)
    return extract_image(img, info, k)


def _head(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(64)


class Scorer:
    """Loaded model + batched scoring of feature sets, files or encoded bytes."""

    def __init__(self, path: str | Path | None = None, device: str = "cpu", threads: int = 0):
        import torch
        if threads:
            torch.set_num_threads(threads)
        self.model = load_model(path, device)
        self.device = device
        self.k = int(self.model.config["k"])

    def score_features(self, feats: list[Features]) -> np.ndarray:
        """Scores in (0, 1): higher = further from the original.  The sigmoid runs in float64,
        so copies whose logits differ stay ordered up to |logit| ~ 36 (float32 rounds every
        logit above ~17 to exactly 1.0)."""
        import torch
        from .model import collate
        if not feats:
            return np.zeros(0, np.float32)
        with torch.no_grad(), blas_one_thread():
            t = {k: v.to(self.device) for k, v in collate(feats).items()}
            return torch.sigmoid(self.model(**t).double()).cpu().numpy()

    def score_files(self, paths: list[str]) -> list[float | ImageLoadError]:
        """One score per path, or the ImageLoadError that path raised."""
        feats, where, out = [], [], [None] * len(paths)
        with blas_one_thread():
            for i, p in enumerate(paths):
                try:
                    feats.append(file_features(p, self.k))
                    where.append(i)
                except ImageLoadError as exc:
                    out[i] = exc
        for i, s in zip(where, self.score_features(feats)):
            out[i] = float(s)
        return out
