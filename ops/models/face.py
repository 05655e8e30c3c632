"""OpenCV Haar-cascade face detection; the cascade files ship inside the opencv-python wheel
(``cv2.data.haarcascades``), so it runs offline with nothing to fetch.  One loaded cascade per
process per file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from .assets import ModelNotFoundError, shared_model

DEFAULT_CASCADE = "haarcascade_frontalface_alt.xml"


def cascade_dir() -> Path:
    import cv2
    return Path(cv2.data.haarcascades)


def resolve_cascade(cv_classifier: str = "") -> str:
    """``""`` -> the default frontal-face cascade; a bare file name -> that cascade of the
    opencv wheel; anything else is a path to a cascade XML file."""
    name = (cv_classifier or DEFAULT_CASCADE).strip()
    shipped = cascade_dir() / name
    if os.sep not in name and shipped.is_file():
        return str(shipped)
    path = Path(name).expanduser()
    if path.is_file():
        return str(path.resolve())
    available = sorted(p.name for p in cascade_dir().glob("haarcascade_*.xml"))
    raise ModelNotFoundError(name, [str(path.resolve()), f"{cascade_dir()} (opencv wheel)"],
                             reason="no such cascade file; the wheel ships "
                                    + (", ".join(available) or "none (OpenCV 5 dropped them)"))


class HaarFaceDetector:
    """``detect(image)`` -> face boxes ``[x, y, w, h]`` (pixels, clipped to the image)."""

    def __init__(self, path: str):
        import cv2
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError(f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 "
                               "moved it out of the main module): install opencv-python<5")
        self.path = path
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ValueError(f"{path}: not a loadable OpenCV cascade classifier")

    def detect(self, image, scaleFactor: float = 1.1, minNeighbors: int = 3,
               minSize: Optional[tuple] = None, maxSize: Optional[tuple] = None) -> list[list[int]]:
        import cv2
        rgb = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        kwargs = {"scaleFactor": scaleFactor, "minNeighbors": minNeighbors}
        if minSize:
            kwargs["minSize"] = tuple(int(v) for v in minSize)
        if maxSize:
            kwargs["maxSize"] = tuple(int(v) for v in maxSize)
        found = self._cascade.detectMultiScale(grey, **kwargs)
        h_img, w_img = grey.shape
        boxes = []
        for x, y, w, h in (found if len(found) else []):
            x, y = max(int(x), 0), max(int(y), 0)
            boxes.append([x, y, min(int(w), w_img - x), min(int(h), h_img - y)])
        boxes.sort(key=lambda b: (-b[2] * b[3], b[1], b[0]))    # largest face first
        return boxes

    def __repr__(self):
        return f"<HaarFaceDetector {os.path.basename(self.path)!r}>"


def load_face_detector(cv_classifier: str = "") -> HaarFaceDetector:
    path = resolve_cascade(cv_classifier)
    return shared_model("haar_cascade", path, "cpu", lambda: HaarFaceDetector(path))
