"""Blur images with probability p (mean / box / gaussian kernel) and point the sample at the copies."""
from __future__ import annotations

import hashlib
import os
from typing import Literal, Optional

from ops.base import Mapper
from ops.fields import Fields
from ops.image.io import load_image
from ops.image.produce import blur_filter, produced_dir, produced_path, save_image, write_back
from ops.registry import OPERATORS


def chance(seed: int, path: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, absolute path): the same image gets the same
    draw in every run, worker and executor."""
    digest = hashlib.sha256(f"{seed}:{os.path.abspath(path)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


@OPERATORS.register_module("image_blur_mapper")
class ImageBlurMapper(Mapper):
    """Each image of the sample (``image_key``) is blurred with probability ``p``; a blurred
    image is written as a new file (see ``save_dir``) and replaces the path in the sample; the
    original paths go to ``__dj__source_file__``.  ``blur_type``: ``mean`` (Pillow's 5x5 mean,
    radius unused), ``box`` or ``gaussian`` (radius = standard deviation).  ``save_dir``:
    where blurred files go; default ``$DJ_PRODUCED_DATA_DIR/image_blur_mapper`` when set, else
    ``<work_dir>/__dj__produced_data__/image_blur_mapper``.  ``seed``: which images are drawn
    is a fixed function of (seed, path), so a run is reproducible."""

    def __init__(self, p: float = 0.2, blur_type: Literal["mean", "box", "gaussian"] = "gaussian",
                 radius: float = 2, save_dir: Optional[str] = None, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        self.blur = blur_filter(blur_type, radius)      # validates blur_type and radius
        self.p, self.blur_type, self.radius = float(p), blur_type, float(radius)
        self.save_dir, self.seed = save_dir, int(seed)

    def process_single(self, sample: dict) -> dict:
        if not sample.get(self.image_key):
            sample[Fields.source_file] = []
            return sample
        paths = self.image_paths(sample)
        directory = produced_dir(self.name, self.save_dir, self.context.work_dir)
        params = {"blur_type": self.blur_type, "radius": self.radius}
        done: dict[str, str] = {}
        for path in paths:
            if path in done:
                continue
            if chance(self.seed, path) >= self.p:
                done[path] = path
                continue
            blurred = load_image(path).filter(self.blur)
            done[path] = save_image(blurred, produced_path(path, self.name, params, directory))
        write_back(sample, self.image_key, [done[p] for p in paths], Fields.source_file)
        return sample
