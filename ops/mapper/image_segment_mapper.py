"""Segment every image with FastSAM and write its object boxes to meta."""
from __future__ import annotations

from typing import Optional

from ops.base import Mapper, OpError
from ops.fields import Fields, MetaKeys
from ops.image.io import load_image
from ops.imgdiff.boxes import xyxy_to_dj
from ops.mapper._yolo_settings import check_yolo_settings
from ops.registry import OPERATORS


@OPERATORS.register_module("image_segment_mapper")
class ImageSegmentMapper(Mapper):
    """``meta.segments``: one list per image (in column order) of boxes ``[x1, y1, x2, y2]`` in
    pixels of the decoded (EXIF-upright) image, top-left origin, x2/y2 exclusive edges, highest
    FastSAM confidence first.  Images come from ``image_keys`` (default: ``image_key``); each
    column holds a path or a list of paths.  ``imgsz`` / ``conf`` / ``iou`` are FastSAM's
    inference size, confidence threshold and NMS IoU threshold; ``model_path`` is a weights file
    path or a name found in assets_cache/ (FastSAM-x.pt, FastSAM-s.pt).  The images of a whole
    batch go through the network together, ``model_batch_size`` per forward pass.

    The same boxes also go to ``meta.__dj__bbox__`` in Data-Juicer's layout (its
    ``MetaKeys.bbox_tag``): one list per image of ``[cx, cy, w, h]`` boxes."""

    accelerator = "cuda"
    model_params = {"model_path": "ultralytics"}
    extra = "models"          # torch, transformers, ultralytics, nltk: see ops/extras.py
    batched = True

    def __init__(self, imgsz: int = 1024, conf: float = 0.05, iou: float = 0.5,
                 model_path: str = "FastSAM-x.pt", max_det: int = 300,
                 image_keys: Optional[list[str]] = None, model_batch_size: int = 8,
                 **kwargs):
        super().__init__(**kwargs)
        check_yolo_settings(imgsz, conf, iou, max_det, model_batch_size)
        self.imgsz, self.conf, self.iou, self.max_det = imgsz, conf, iou, max_det
        self.model_path = model_path
        self.image_keys = list(image_keys) if image_keys else [self.image_key]
        self.model_batch_size = model_batch_size

    def setup(self):
        from ops.models.fastsam import load_fastsam
        self._m_sam = load_fastsam(self.model_path, device=self.device)

    def _paths(self, sample: dict) -> list[str]:
        paths = []
        for k in self.image_keys:
            v = sample.get(k)
            if v is None:
                raise OpError(f"sample has no '{k}' column")
            paths += [v] if isinstance(v, str) else list(v)
        return paths

    def process_batched(self, samples: list[dict]) -> list[dict]:
        done = {i: self.recall(s) for i, s in enumerate(samples) if self.recall(s) is not None}
        todo, images, owner = [], [], []
        error: Optional[Exception] = None
        for i, s in enumerate(samples):
            if i in done:
                continue
            try:
                ims = [load_image(p) for p in self._paths(s)]
            except OpError as exc:
                error = error or exc
                continue
            owner += [len(todo)] * len(ims)
            todo.append(i)
            images += ims
        boxes = self._m_sam.segment(images, imgsz=self.imgsz, conf=self.conf, iou=self.iou,
                                    max_det=self.max_det, batch_size=self.model_batch_size)
        per_sample = [[] for _ in todo]
        for o, b in zip(owner, boxes):
            per_sample[o].append([[round(float(c), 2) for c in box] for box in b])
        done.update(zip(todo, per_sample))
        if error is not None:
            # the executor retries each sample alone: the finished ones get their boxes back
            for i, segs in done.items():
                self.remember(samples[i], segs)
            raise error
        for i, s in enumerate(samples):
            meta = s.setdefault(Fields.meta, {})
            meta[MetaKeys.segments] = done[i]
            meta[MetaKeys.bbox_tag] = [xyxy_to_dj(boxes) for boxes in done[i]]
        return samples
