"""Shared base of the Haar-cascade face filters (count, ratio)."""
from __future__ import annotations

from typing import Literal, Optional

from ops.base import Filter
from ops.fields import Fields
from ops.image.io import load_image


DETECTOR_DOC = """

    Faces are found by an OpenCV Haar cascade, in every image of the sample (``image_key``);
    the sample is kept when ``any`` (or ``all``) of its images is in range, and kept when it
    has no image.  ``cv_classifier``: a cascade file shipped in the opencv wheel (default
    ``haarcascade_frontalface_alt.xml``; also ``haarcascade_frontalface_default.xml``,
    ``haarcascade_profileface.xml``, ...) or a path to a cascade XML.  ``scaleFactor``,
    ``minNeighbors``, ``minSize`` and ``maxSize`` ([w, h] pixels) go to OpenCV's
    ``detectMultiScale`` (Data-Juicer reads them from its extra keyword arguments)."""


class FaceFilter(Filter):
    """Base of the face filters: faces of every image of the sample (``image_key``); the sample
    is kept when ``any`` (or ``all``) of its images' stat lies in the range."""

    extra = "models"          # opencv (cv2): see ops/extras.py

    def __init__(self, cv_classifier: str = "", any_or_all: Literal["any", "all"] = "any",
                 scaleFactor: float = 1.1, minNeighbors: int = 3,
                 minSize: Optional[tuple[int, int]] = None,
                 maxSize: Optional[tuple[int, int]] = None, **kwargs):
        super().__init__(**kwargs)
        if any_or_all not in ("any", "all"):
            raise ValueError(f"any_or_all must be 'any' or 'all', got {any_or_all!r}")
        if scaleFactor <= 1.0:
            raise ValueError(f"scaleFactor must be > 1, got {scaleFactor}")
        if minNeighbors < 0:
            raise ValueError(f"minNeighbors must be >= 0, got {minNeighbors}")
        from ops.models.face import resolve_cascade
        self.cv_classifier = resolve_cascade(cv_classifier)   # a wrong name fails at validation
        self.any = any_or_all == "any"
        self.detect_kwargs = {"scaleFactor": float(scaleFactor), "minNeighbors": int(minNeighbors),
                              "minSize": minSize, "maxSize": maxSize}

    def setup(self):
        from ops.models.face import load_face_detector
        self._m_faces = load_face_detector(self.cv_classifier)

    def measure(self, image, faces: list) -> float:
        raise NotImplementedError

    def bounds(self) -> tuple:
        raise NotImplementedError

    def compute_stats_single(self, sample: dict) -> dict:
        stats = sample[Fields.stats]
        if self.stat_key in stats:
            return sample
        paths = self.image_paths(sample) if sample.get(self.image_key) else []
        values = []
        for p in paths:
            image = load_image(p)
            values.append(self.measure(image, self._m_faces.detect(image, **self.detect_kwargs)))
        stats[self.stat_key] = values
        return sample

    def process_single(self, sample: dict):
        values = sample[Fields.stats][self.stat_key]
        if not values:
            return True
        lo, hi = self.bounds()
        ok = [self.in_range(v, lo, hi) for v in values]     # closed / reversed settings
        if any(ok) if self.any else all(ok):
            return True
        shown = [round(v, 4) if isinstance(v, float) else v for v in values]
        return False, (f"{self.stat_key}={shown} {self.range_miss(lo, hi)} "
                       f"({'any' if self.any else 'all'})")
