"""Blur the faces an OpenCV Haar cascade finds in each image; write the result as a new file."""
from __future__ import annotations

from typing import Literal, Optional

from ops.base import Mapper
from ops.fields import Fields
from ops.image.io import load_image
from ops.image.produce import blur_filter, produced_dir, produced_path, save_image, write_back
from ops.registry import OPERATORS

FACE_BOXES = "face_boxes"     # meta: per image, the blurred boxes [x, y, w, h]


@OPERATORS.register_module("image_face_blur_mapper")
class ImageFaceBlurMapper(Mapper):
    """Every face found in an image (``image_key``) is blurred in place with ``blur_type`` /
    ``radius`` (as ``image_blur_mapper``); an image with faces is written as a new file (see
    ``save_dir``) that replaces its path in the sample, originals going to
    ``__dj__source_file__``; an image without faces keeps its path.  ``meta.face_boxes``: per
    image the boxes blurred ``[x, y, w, h]``.  ``cv_classifier``, ``scaleFactor``,
    ``minNeighbors``, ``minSize``, ``maxSize``: the face detector, as in
    ``image_face_count_filter``."""

    extra = "models"          # opencv (cv2): see ops/extras.py

    def __init__(self, cv_classifier: str = "",
                 blur_type: Literal["mean", "box", "gaussian"] = "gaussian", radius: float = 2,
                 save_dir: Optional[str] = None, scaleFactor: float = 1.1, minNeighbors: int = 3,
                 minSize: Optional[tuple[int, int]] = None,
                 maxSize: Optional[tuple[int, int]] = None, **kwargs):
        super().__init__(**kwargs)
        from ops.models.face import resolve_cascade
        if scaleFactor <= 1.0 or minNeighbors < 0:
            raise ValueError(f"need scaleFactor > 1 and minNeighbors >= 0, got {scaleFactor}, "
                             f"{minNeighbors}")
        self.blur = blur_filter(blur_type, radius)
        self.blur_type, self.radius, self.save_dir = blur_type, float(radius), save_dir
        self.cv_classifier = resolve_cascade(cv_classifier)
        self.detect_kwargs = {"scaleFactor": float(scaleFactor), "minNeighbors": int(minNeighbors),
                              "minSize": minSize, "maxSize": maxSize}

    def setup(self):
        from ops.models.face import load_face_detector
        self._m_faces = load_face_detector(self.cv_classifier)

    def process_single(self, sample: dict) -> dict:
        if not sample.get(self.image_key):
            sample[Fields.source_file] = []
            sample[Fields.meta][FACE_BOXES] = []
            return sample
        paths = self.image_paths(sample)
        directory = produced_dir(self.name, self.save_dir, self.context.work_dir)
        params = {"blur_type": self.blur_type, "radius": self.radius,
                  "cascade": self.cv_classifier, **self.detect_kwargs}
        done: dict[str, tuple[str, list]] = {}
        for path in paths:
            if path in done:
                continue
            image = load_image(path)
            faces = self._m_faces.detect(image, **self.detect_kwargs)
            if not faces:
                done[path] = (path, [])
                continue
            out = image.copy()
            for x, y, w, h in faces:
                box = (x, y, x + w, y + h)
                out.paste(image.crop(box).filter(self.blur), box)
            done[path] = (save_image(out, produced_path(path, self.name, params, directory)),
                          faces)
        write_back(sample, self.image_key, [done[p][0] for p in paths], Fields.source_file)
        sample[Fields.meta][FACE_BOXES] = [done[p][1] for p in paths]
        return sample
