"""Checks shared by every full-reference metric: same size, same mode, finite values."""
from __future__ import annotations

import numpy as np


class MetricInputError(ValueError):
    """Two images a full-reference metric cannot compare, with the reason."""


def _as_array(img, role: str) -> tuple[np.ndarray, str]:
    try:
        from PIL import Image
        is_pil = isinstance(img, Image.Image)
    except ImportError:  # pragma: no cover - Pillow is a hard dependency
        is_pil = False
    if is_pil:
        if img.mode not in ("L", "RGB"):
            raise MetricInputError(f"{role} image has mode {img.mode}; convert it to RGB or L "
                                   "(alpha is not compared)")
        return np.asarray(img), img.mode
    if not isinstance(img, np.ndarray):
        raise MetricInputError(f"{role} must be a numpy array or PIL image, got "
                               f"{type(img).__name__}")
    if img.ndim == 2:
        mode = "L"
    elif img.ndim == 3 and img.shape[2] == 3:
        mode = "RGB"
    else:
        raise MetricInputError(f"{role} has shape {img.shape}; expected HxW (grey) or HxWx3 (RGB)")
    if not (img.dtype == np.uint8 or np.issubdtype(img.dtype, np.floating)):
        raise MetricInputError(f"{role} has dtype {img.dtype}; expected uint8 or float "
                               "(0..255 scale)")
    return img, mode


def check_pair(reference, distorted, metric: str, rgb_only: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (reference, distorted) pair and return them as numpy arrays."""
    ref, mode_r = _as_array(reference, f"{metric}: reference")
    dis, mode_d = _as_array(distorted, f"{metric}: distorted")
    if mode_r != mode_d:
        raise MetricInputError(f"{metric}: mode mismatch: reference is {mode_r}, distorted is "
                               f"{mode_d}")
    if ref.shape != dis.shape:
        raise MetricInputError(f"{metric}: size mismatch: reference is {ref.shape[1]}x"
                               f"{ref.shape[0]}, distorted is {dis.shape[1]}x{dis.shape[0]}")
    if ref.shape[0] < 1 or ref.shape[1] < 1:
        raise MetricInputError(f"{metric}: empty image {ref.shape}")
    if rgb_only and mode_r != "RGB":
        raise MetricInputError(f"{metric}: needs RGB images, got {mode_r}")
    for role, arr in (("reference", ref), ("distorted", dis)):
        if arr.dtype != np.uint8 and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            raise MetricInputError(f"{metric}: {role} contains {bad} NaN/infinite value(s)")
    return ref, dis
