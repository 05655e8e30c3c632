"""Keep samples whose largest face covers a fraction of the image within range (Haar cascade)."""
from __future__ import annotations

from ops.fields import StatsKeys
from ops.registry import OPERATORS

from ._face_filter import DETECTOR_DOC, FaceFilter


@OPERATORS.register_module("image_face_ratio_filter")
class ImageFaceRatioFilter(FaceFilter):
    __doc__ = """Area of the largest detected face / image area in [min_ratio, max_ratio]; an
    image without a face has ratio 0.  Stats: ``face_ratios`` (one float per image).""" \
        + DETECTOR_DOC

    stat_key = StatsKeys.face_ratios

    def __init__(self, min_ratio: float = 0.0, max_ratio: float = 0.4, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= min_ratio <= max_ratio:
            raise ValueError(f"need 0 <= min_ratio <= max_ratio, got [{min_ratio}, {max_ratio}]")
        self.min_ratio, self.max_ratio = float(min_ratio), float(max_ratio)

    def measure(self, image, faces):
        largest = max((w * h for _, _, w, h in faces), default=0)
        return largest / (image.width * image.height)

    def bounds(self):
        return self.min_ratio, self.max_ratio
