"""Image files written by mapper ops: blur kernels, where a produced file goes, how it is saved.

A produced file's name is ``<stem>__dj_hash_#<digest>#<suffix>``, as in Data-Juicer, but the
digest depends only on the source's absolute path and the op's parameters (Data-Juicer also
hashes the process id and the time): running a recipe again rewrites the same files instead of
piling up copies, and both executors name them alike.  Files are written to a temporary name and
moved into place, so parallel workers never expose a half-written image.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Optional

from PIL import Image, ImageFilter

from ..base import OpError

BLUR_TYPES = ("mean", "box", "gaussian")
PRODUCED_DIR = "__dj__produced_data__"
PRODUCED_DIR_ENV = "DJ_PRODUCED_DATA_DIR"
JPEG_QUALITY = 95


def blur_filter(blur_type: str, radius: float) -> ImageFilter.Filter:
    """Pillow's kernel for Data-Juicer's blur types: ``mean`` is Pillow's fixed 5x5 BLUR
    (``radius`` unused, as in Data-Juicer), ``box`` a box of ``radius``, ``gaussian`` a
    Gaussian of standard deviation ``radius``."""
    if blur_type not in BLUR_TYPES:
        raise ValueError(f"blur_type must be one of {list(BLUR_TYPES)}, got {blur_type!r}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if blur_type == "mean":
        return ImageFilter.BLUR
    if blur_type == "box":
        return ImageFilter.BoxBlur(radius)
    return ImageFilter.GaussianBlur(radius)


def produced_dir(op_name: str, save_dir: Optional[str], work_dir: str) -> str:
    """``save_dir`` > ``$DJ_PRODUCED_DATA_DIR/<op>`` > ``<work_dir>/__dj__produced_data__/<op>``."""
    if save_dir:
        return os.path.abspath(os.path.expanduser(save_dir))
    env = os.environ.get(PRODUCED_DIR_ENV, "").strip()
    if env:
        return os.path.join(os.path.abspath(os.path.expanduser(env)), op_name)
    return os.path.join(os.path.abspath(work_dir), PRODUCED_DIR, op_name)


def produced_path(src: str, op_name: str, params: dict, directory: str) -> str:
    """Where the op's version of ``src`` goes (deterministic; see the module docstring)."""
    key = json.dumps({"src": os.path.abspath(src), "op": op_name, **params}, sort_keys=True,
                     default=str)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    stem, suffix = os.path.splitext(os.path.basename(src))
    if suffix.lower() not in Image.registered_extensions():
        suffix += ".png"      # an extension Pillow cannot write: keep it in the name, save PNG
    return os.path.join(directory, f"{stem}__dj_hash_#{digest}#{suffix}")


def save_image(img: Image.Image, dest: str) -> str:
    """Write ``img`` to ``dest`` in the format its extension names (JPEG at quality 95)."""
    fmt = Image.registered_extensions().get(os.path.splitext(dest)[1].lower(), "PNG")
    if fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        img = img.convert("RGB")
    kwargs = {"quality": JPEG_QUALITY} if fmt in ("JPEG", "WEBP") else {}
    directory = os.path.dirname(dest)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(dest)[1],
                                   dir=directory)
    except OSError as exc:
        raise OpError(f"cannot write into {directory}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            img.save(fh, format=fmt, **kwargs)
        os.replace(tmp, dest)
    except Exception as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OpError(f"cannot save {dest} as {fmt}: {exc}") from None
    return dest


def write_back(sample: dict, key: str, new_paths: list[str], source_key: str) -> None:
    """Put the produced paths in column ``key`` (a string stays a string) and record the
    originals once in ``source_key`` (Data-Juicer's ``__dj__source_file__``)."""
    old = sample.get(key)
    originals = [old] if isinstance(old, str) else list(old or [])
    if not sample.get(source_key):
        sample[source_key] = originals
    sample[key] = new_paths[0] if isinstance(old, str) else list(new_paths)
