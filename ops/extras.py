"""Optional extras: which installed modules each one provides, and the check that refuses an op
(or the Ray executor) whose extra is missing, at recipe validation, before any work.

``pip install imgjuicer`` gives the framework, the header ops and codec studies; the extras add
``ray`` (the Ray executor), ``models`` (CLIP / BLIP / FastSAM ops and ImgDiff), ``scorer`` (the
generation-loss scorer and keep-best-copy dedup) and ``train`` (scorer training).  An op names
its extra with the class attribute ``extra``.  The module lists mirror pyproject.toml.
"""
from __future__ import annotations

import importlib.util

EXTRAS: dict[str, tuple[str, ...]] = {
    "ray": ("ray",),
    "models": ("torch", "torchvision", "transformers", "ultralytics", "nltk", "cv2", "simhash"),
    "scorer": ("torch", "numba", "threadpoolctl", "cv2"),
    "train": ("torch", "numba", "threadpoolctl", "cv2", "skimage", "sklearn"),
}


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (found without importing them)."""
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra '{extra}' (known: {', '.join(EXTRAS)})")
    return [m for m in EXTRAS[extra] if not _present(m)]


def extra_for_module(module: str) -> str | None:
    """The extra that provides the top-level ``module``, if one does."""
    top = module.split(".")[0]
    for extra, modules in EXTRAS.items():
        if top in modules:
            return extra
    return None


def install_hint(extra: str) -> str:
    return f"pip install 'imgjuicer[{extra}]'"


def missing_extra_message(what: str, extra: str, missing: list[str]) -> str:
    return (f"{what} needs the [{extra}] extra, which is not installed (missing: "
            f"{', '.join(missing)}); install it with: {install_hint(extra)}")
