"""YOLO object detection (ultralytics checkpoints: YOLOv8, YOLO11, ...) batched over decoded
images, sharing FastSAM's machinery: the restricted checkpoint loader, one letterboxed tensor
per batch, ultralytics' NMS (class-aware, as its predictor does)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from .assets import normalise_device, shared_model
from .fastsam import (letterboxed_detections, load_checkpoint, resolve_ultralytics_weights,
                      restore_pil_open)

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_YOLO = "yolo11n.pt"


class YoloModel:
    """``detect(images)`` -> per image (boxes (K, 4) xyxy pixels, confidences (K,), classes
    (K,) int), best first.  ``names``: class id -> name."""

    def __init__(self, path: str, device: str, model, max_batch_size: int = 16):
        self.path, self.device = path, device
        self._model = model
        self.stride = int(max(int(s) for s in model.stride)) if hasattr(model, "stride") else 32
        self.names = dict(getattr(model, "names", {}) or {0: "object"})
        self.num_classes = len(self.names)
        self.max_batch_size = max_batch_size
        self.forward_passes = 0

    def detect(self, images: list[Union["Image.Image", np.ndarray]], imgsz: int = 640,
               conf: float = 0.25, iou: float = 0.7, max_det: int = 300,
               batch_size: Optional[int] = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        out = []
        for det, _ in letterboxed_detections(self, images, imgsz, conf, iou, max_det,
                                             batch_size, agnostic=False):
            out.append((det[:, :4], det[:, 4], det[:, 5].astype(np.int64)))
        return out

    def __repr__(self):
        return f"<YoloModel {self.path!r} on {self.device}>"


def _load(path, device: str) -> YoloModel:
    from .fastsam import _prepare_ultralytics
    _prepare_ultralytics()      # before any ultralytics import: no connectivity probe
    from ultralytics.nn.tasks import DetectionModel
    model = load_checkpoint(path, device, DetectionModel, "a YOLO detection model")
    if type(model) is not DetectionModel:
        raise ValueError(f"{path}: a {type(model).__name__}; image_detection_yolo_mapper "
                         "needs a plain detection checkpoint (e.g. yolo11n.pt, yolov8s.pt)")
    return YoloModel(str(path), device, model)


def load_yolo(model_path: str = DEFAULT_YOLO, device: str = "cpu") -> YoloModel:
    """The process-wide YOLO detector for ``model_path`` on ``device`` (loaded on first use);
    ``model_path`` is found as FastSAM's weights are (path, assets_cache/, ultralytics' weights
    dir, download when online)."""
    if not isinstance(model_path, str) or not model_path.strip():
        raise ValueError(f"YOLO model_path must be a non-empty string, got {model_path!r}")
    name, device = model_path.strip(), normalise_device(device)
    if not name.endswith(".pt"):
        raise ValueError(f"YOLO weights must be a .pt file, got {name!r}")
    path = resolve_ultralytics_weights(name)
    model = shared_model("yolo", str(path), device, lambda: _load(path, device))
    restore_pil_open()
    return model
