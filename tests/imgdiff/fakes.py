"""Deterministic scorers standing in for CLIP, BLIP and FastSAM in the eight-step tests.

They are simple but real measurements (colour histograms, colour fractions, colour blobs),
so a test can say from the pictures alone what each one must answer.
"""
from __future__ import annotations

import math

import numpy as np

from ops.imgdiff.synthetic import OBJECT_COLOURS, colour_boxes, colour_fraction

TEXT_COLOURS = {
    **OBJECT_COLOURS,
    "red car": OBJECT_COLOURS["apple"],
    "blue car": OBJECT_COLOURS["box"],
}


class HistogramClip:
    """Embedding = the image's 4x4x4 RGB colour histogram, L2-normalised."""

    def __init__(self):
        self.forward_passes = 0
        self.calls = []

    def embed_images(self, images, batch_size=None):
        bs = batch_size or 64
        self.forward_passes += math.ceil(len(images) / bs)
        self.calls.append(len(images))
        out = np.zeros((len(images), 64))
        for i, img in enumerate(images):
            arr = np.asarray(img.convert("RGB")) // 64
            idx = (arr[..., 0] * 16 + arr[..., 1] * 4 + arr[..., 2]).reshape(-1)
            out[i] = np.bincount(idx, minlength=64)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class ColourBlip:
    """ITM score of (image, text) = fraction of the image's pixels in the colour the text
    names (``TEXT_COLOURS``); 0 for a text naming no known colour."""

    def __init__(self):
        self.forward_passes = 0
        self.calls = []
        self.seen_sizes = []

    def itm_scores(self, images, texts, batch_size=None):
        assert len(images) == len(texts)
        bs = batch_size or 32
        self.forward_passes += math.ceil(len(images) / bs)
        self.calls.append(len(images))
        out = []
        for img, text in zip(images, texts):
            self.seen_sizes.append(img.size)
            colour = TEXT_COLOURS.get(text)
            out.append(colour_fraction(img, colour) if colour else 0.0)
        return np.array(out)


class BlobSegmenter:
    """Boxes = one bounding box per object colour present, plus ``extra(image)`` boxes."""

    def __init__(self, extra=None, only_size=None):
        self.extra = extra
        self.only_size = only_size  # segment only images of this size (others: no boxes)
        self.forward_passes = 0
        self.calls = []

    def segment(self, images, imgsz=1024, conf=0.05, iou=0.5, max_det=300, batch_size=None):
        bs = batch_size or 8
        self.forward_passes += math.ceil(len(images) / bs)
        self.calls.append(len(images))
        out = []
        for img in images:
            if self.only_size is not None and img.size != self.only_size:
                out.append(np.zeros((0, 4)))
                continue
            boxes = colour_boxes(img) + (list(self.extra(img)) if self.extra else [])
            out.append(np.array(boxes, dtype=np.float32).reshape(-1, 4))
        return out
