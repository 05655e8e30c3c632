"""Detect objects with a YOLO model and write their boxes and class labels to meta."""
from __future__ import annotations

from typing import Optional

from ops.base import Mapper, OpError
from ops.fields import Fields, MetaKeys
from ops.image.io import load_image
from ops.mapper._yolo_settings import check_yolo_settings
from ops.registry import OPERATORS


@OPERATORS.register_module("image_detection_yolo_mapper")
class ImageDetectionYoloMapper(Mapper):
    """Data-Juicer's detection layout, one entry per image of ``image_key``:
    ``meta.__dj__bbox__`` a list of ``[cx, cy, w, h]`` boxes (pixels of the EXIF-upright image,
    box centre and size, as ultralytics' ``boxes.xywh``) and ``meta.__dj__class_label__`` the
    class id of each box; plus ``meta.detection_scores`` (confidences) and
    ``meta.detection_names`` (class names), best first.  A sample without images gets empty
    lists.  ``imgsz`` / ``conf`` / ``iou``: inference size, confidence and NMS IoU thresholds;
    ``model_path``: a weights file path or a name found in assets_cache/ (yolo11n.pt, ...).
    The images of a batch go through the network together, ``model_batch_size`` per pass."""

    accelerator = "cuda"
    batched = True
    extra = "models"          # torch, ultralytics: see ops/extras.py
    model_params = {"model_path": "ultralytics"}

    def __init__(self, imgsz: int = 640, conf: float = 0.05, iou: float = 0.5,
                 model_path: str = "yolo11n.pt", max_det: int = 300,
                 model_batch_size: int = 16, **kwargs):
        super().__init__(**kwargs)
        check_yolo_settings(imgsz, conf, iou, max_det, model_batch_size)
        self.imgsz, self.conf, self.iou, self.max_det = imgsz, conf, iou, max_det
        self.model_path, self.model_batch_size = model_path, model_batch_size

    def setup(self):
        from ops.models.yolo import load_yolo
        self._m_yolo = load_yolo(self.model_path, device=self.device)

    def process_batched(self, samples: list[dict]) -> list[dict]:
        todo, images, owner = [], [], []
        error: Optional[Exception] = None
        for i, s in enumerate(samples):
            if self.recall(s) is not None:
                continue
            try:
                ims = [load_image(p) for p in
                       (self.image_paths(s) if s.get(self.image_key) else [])]
            except OpError as exc:
                error = error or exc
                continue
            owner += [len(todo)] * len(ims)
            todo.append(i)
            images += ims
        found = self._m_yolo.detect(images, self.imgsz, self.conf, self.iou, self.max_det,
                                    self.model_batch_size) if images else []
        per_sample = [[] for _ in todo]
        for o, dets in zip(owner, found):
            per_sample[o].append(dets)
        for i, dets in zip(todo, per_sample):
            self.remember(samples[i], [self._layout(d) for d in dets])
        if error is not None:
            raise error     # the executor retries each sample alone; done ones are remembered
        for s in samples:
            per_image = self.recall(s)
            meta = s.setdefault(Fields.meta, {})
            meta[MetaKeys.bbox_tag] = [d["bbox"] for d in per_image]
            meta[MetaKeys.class_label_tag] = [d["labels"] for d in per_image]
            meta[MetaKeys.detection_scores] = [d["scores"] for d in per_image]
            meta[MetaKeys.detection_names] = [d["names"] for d in per_image]
        return samples

    def _layout(self, det) -> dict:
        boxes, scores, labels = det
        xywh = [[round(float((x1 + x2) / 2), 2), round(float((y1 + y2) / 2), 2),
                 round(float(x2 - x1), 2), round(float(y2 - y1), 2)]
                for x1, y1, x2, y2 in boxes.tolist()]
        names = self._m_yolo.names
        return {"bbox": xywh, "labels": [int(c) for c in labels],
                "scores": [round(float(v), 4) for v in scores],
                "names": [str(names.get(int(c), c)) for c in labels]}
