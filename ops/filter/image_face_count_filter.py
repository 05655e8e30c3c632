"""Keep samples whose images show a number of faces within range (OpenCV Haar cascade)."""
from __future__ import annotations

from ops.fields import StatsKeys
from ops.registry import OPERATORS

from ._face_filter import DETECTOR_DOC, FaceFilter


@OPERATORS.register_module("image_face_count_filter")
class ImageFaceCountFilter(FaceFilter):
    __doc__ = """Number of faces per image in [min_face_count, max_face_count].  Stats:
    ``face_counts`` (one int per image).""" + DETECTOR_DOC

    stat_key = StatsKeys.face_counts

    def __init__(self, min_face_count: int = 1, max_face_count: int = 1, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= min_face_count <= max_face_count:
            raise ValueError(f"need 0 <= min_face_count <= max_face_count, got "
                             f"[{min_face_count}, {max_face_count}]")
        self.min_face_count, self.max_face_count = min_face_count, max_face_count

    def measure(self, image, faces):
        return len(faces)

    def bounds(self):
        return self.min_face_count, self.max_face_count
