"""The settings check shared by the two ultralytics-model mappers (FastSAM segments, YOLO
detection)."""
from __future__ import annotations


def check_yolo_settings(imgsz: int, conf: float, iou: float, max_det: int,
                        model_batch_size: int) -> None:
    """Raise ValueError naming the first setting out of range."""
    if imgsz < 32:
        raise ValueError(f"imgsz must be >= 32, got {imgsz}")
    if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
        raise ValueError(f"conf and iou must lie in [0, 1], got conf={conf}, iou={iou}")
    if max_det < 1 or model_batch_size < 1:
        raise ValueError("max_det and model_batch_size must be >= 1")
