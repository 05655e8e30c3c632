"""FastSAM (a YOLOv8-seg network) as a batched box proposer working on decoded images.

The checkpoint is read with ultralytics' restricted loader (``torch.load(weights_only=True)``
against its allow-list of model classes); we run the network ourselves: letterbox a batch into
one tensor, forward, NMS, boxes scaled back to each input image, then FastSAM's own box
post-processing.  Masks are never computed (only boxes are used), and nothing is downloaded
when the weights file is on disk.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from .assets import (ModelNotFoundError, assets_dir, is_offline, normalise_device, resolve_file,
                     shared_model)

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_FASTSAM = "FastSAM-x.pt"
PAD_VALUE = 114          # ultralytics' letterbox grey
BORDER_SNAP = 20         # FastSAM: box edges this close (px) to the image border snap to it
FULL_IMAGE_IOU = 0.9     # FastSAM: a box this similar to the whole image becomes the whole image


def _prepare_ultralytics(local: bool = True) -> None:
    """Import ultralytics without its import-time connectivity probe (DNS lookups) when we are
    offline or the weights are on disk, and undo its patch of PIL.Image.open."""
    import sys
    if is_offline():
        os.environ["YOLO_OFFLINE"] = "1"
    if "ultralytics.utils" not in sys.modules:
        saved = os.environ.get("YOLO_OFFLINE")
        if local:
            os.environ["YOLO_OFFLINE"] = "1"
        try:
            import ultralytics.utils  # noqa: F401  (the import applies the PIL patch)
        finally:
            if saved is None:
                os.environ.pop("YOLO_OFFLINE", None)
            else:
                os.environ["YOLO_OFFLINE"] = saved
    restore_pil_open()


def restore_pil_open() -> None:
    """Undo ultralytics' import-time patch of ``PIL.Image.open``: on a file Pillow cannot
    identify it tries to pip-install pi-heif, which turns our clear ImageLoadError into a
    ModuleNotFoundError offline and installs packages online."""
    import sys
    patches = sys.modules.get("ultralytics.utils.patches")
    if patches is None:
        return
    from PIL import Image
    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is getattr(patches, "image_open", None):
        Image.open = original


def _to_rgb_array(image) -> np.ndarray:
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"expected an RGB image array HxWx3, got shape {arr.shape}")
        arr = arr[:, :, :3]
        if arr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image array, got {arr.dtype}")
        return np.ascontiguousarray(arr)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def _letterbox(arr: np.ndarray, imgsz: int) -> tuple[np.ndarray, float]:
    import cv2
    h, w = arr.shape[:2]
    r = min(imgsz / h, imgsz / w)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    if (nw, nh) != (w, h):
        arr = cv2.resize(arr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return arr, r


def letterboxed_detections(net, images: list, imgsz: int, conf: float, iou: float,
                           max_det: int, batch_size: Optional[int] = None,
                           agnostic: bool = False) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Run an ultralytics detection-style network (``net``: ``_model``, ``stride``,
    ``num_classes``, ``device``, ``max_batch_size``, ``forward_passes``) on images batched
    into one letterboxed tensor, then NMS.  Per image: ((K, 6) float32 rows ``x1, y1, x2, y2,
    confidence, class`` in that image's pixels, clipped, best first; (height, width))."""
    import torch
    from ultralytics.utils.nms import non_max_suppression
    if int(imgsz) < 1:
        raise ValueError(f"imgsz must be positive, got {imgsz}")
    stride = net.stride
    imgsz = int(math.ceil(int(imgsz) / stride) * stride)
    bs = int(batch_size or net.max_batch_size)
    if bs < 1:
        raise ValueError("batch_size must be >= 1")
    results = []
    for start in range(0, len(images), bs):
        arrays = [_to_rgb_array(im) for im in images[start:start + bs]]
        boxed = [_letterbox(a, imgsz) for a in arrays]
        H = max(math.ceil(b.shape[0] / stride) * stride for b, _ in boxed)
        W = max(math.ceil(b.shape[1] / stride) * stride for b, _ in boxed)
        batch = np.full((len(boxed), H, W, 3), PAD_VALUE, dtype=np.uint8)
        offsets = []
        for i, (b, _) in enumerate(boxed):
            top, left = (H - b.shape[0]) // 2, (W - b.shape[1]) // 2
            batch[i, top:top + b.shape[0], left:left + b.shape[1]] = b
            offsets.append((left, top))
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(net.device).permute(0, 3, 1, 2).float() / 255.0
            preds = net._model(x)
            net.forward_passes += 1
            while isinstance(preds, (list, tuple)):
                preds = preds[0]
            dets = non_max_suppression(preds, conf, iou, max_det=max_det, nc=net.num_classes,
                                       agnostic=agnostic)
        for det, arr, (_, r), (left, top) in zip(dets, arrays, boxed, offsets):
            h, w = arr.shape[:2]
            d = det[:, :6].float().cpu().numpy().copy()
            d[:, [0, 2]] = ((d[:, [0, 2]] - left) / r).clip(0, w)
            d[:, [1, 3]] = ((d[:, [1, 3]] - top) / r).clip(0, h)
            results.append((d.astype(np.float32), (h, w)))
    return results


class FastSamModel:
    """``segment(images)`` -> per image a (K, 4) float32 array of xyxy pixel boxes."""

    def __init__(self, path: str, device: str, model, max_batch_size: int = 8):
        self.path, self.device = path, device
        self._model = model
        self.stride = int(max(int(s) for s in model.stride)) if hasattr(model, "stride") else 32
        self.num_classes = len(getattr(model, "names", {}) or {0: "object"})
        self.max_batch_size = max_batch_size
        self.forward_passes = 0

    def segment_with_scores(self, images: list[Union["Image.Image", np.ndarray]],
                            imgsz: int = 1024, conf: float = 0.05, iou: float = 0.5,
                            max_det: int = 300, batch_size: Optional[int] = None
                            ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image: (boxes (K, 4) float32 xyxy in that image's pixels, confidences (K,))."""
        results = []
        for det, (h, w) in letterboxed_detections(self, images, imgsz, conf, iou, max_det,
                                                  batch_size):
            results.append((_fastsam_adjust(det[:, :4].copy(), w, h).astype(np.float32),
                            det[:, 4].astype(np.float32)))
        return results

    def segment(self, images: list[Union["Image.Image", np.ndarray]], imgsz: int = 1024,
                conf: float = 0.05, iou: float = 0.5, max_det: int = 300,
                batch_size: Optional[int] = None) -> list[np.ndarray]:
        """Per image: (K, 4) float32 boxes xyxy in that image's pixel coordinates, clipped to
        the image, highest confidence first.  Arrays are RGB HxWx3 uint8."""
        return [b for b, _ in self.segment_with_scores(images, imgsz, conf, iou, max_det,
                                                       batch_size)]

    def __repr__(self):
        return f"<FastSamModel {self.path!r} on {self.device}>"


def _fastsam_adjust(boxes: np.ndarray, w: int, h: int) -> np.ndarray:
    """FastSAM's box post-processing: snap near-border edges, and near-whole-image boxes."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4)
    b = boxes.copy()
    b[b[:, 0] < BORDER_SNAP, 0] = 0
    b[b[:, 1] < BORDER_SNAP, 1] = 0
    b[b[:, 2] > w - BORDER_SNAP, 2] = w
    b[b[:, 3] > h - BORDER_SNAP, 3] = h
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    inter = ((np.minimum(b[:, 2], w) - np.maximum(b[:, 0], 0)).clip(0)
             * (np.minimum(b[:, 3], h) - np.maximum(b[:, 1], 0)).clip(0))
    iou_full = inter / np.maximum(area + w * h - inter, 1e-9)
    b[iou_full > FULL_IMAGE_IOU] = (0, 0, w, h)
    return b


def _ultralytics_weights_dir() -> Path:
    _prepare_ultralytics(local=is_offline())
    from ultralytics.utils import SETTINGS
    return Path(SETTINGS["weights_dir"])


def _load(path: Path, device: str) -> FastSamModel:
    _prepare_ultralytics()      # before any ultralytics import: no connectivity probe
    from ultralytics.nn.tasks import SegmentationModel
    model = load_checkpoint(path, device, SegmentationModel,
                            "a segmentation model (FastSAM is YOLOv8-seg)")
    return FastSamModel(str(path), device, model)


def resolve_ultralytics_weights(name: str) -> Path:
    """A weights file: a path, or a file name looked up in assets_cache/ and in ultralytics'
    weights dir; when neither has it and we are online, ultralytics' release asset of that name
    is downloaded into assets_cache/."""
    if not (os.sep in name or name.startswith("~")) and (assets_dir() / name).is_file():
        return (assets_dir() / name).resolve()   # found without importing ultralytics
    lib = []
    if not (os.sep in name or name.startswith("~")):
        try:
            lib = [(_ultralytics_weights_dir(), "ultralytics weights_dir")]
        except Exception:  # ultralytics settings unreadable: the assets dir still counts
            lib = []
    path = resolve_file(name, lib)
    if path is None:  # online and nowhere on disk: fetch into assets_cache
        from ultralytics.utils.downloads import attempt_download_asset
        target = assets_dir() / name
        target.parent.mkdir(parents=True, exist_ok=True)
        got = Path(attempt_download_asset(str(target)))
        if not got.is_file():
            raise ModelNotFoundError(name, [str(target)], reason="the download failed")
        path = got.resolve()
    return path


def load_checkpoint(path: Path, device: str, expect: type, what: str):
    """The network in an ultralytics checkpoint, read with ultralytics' restricted loader
    (``weights_only``), float32, fused, on ``device``; it must be an ``expect`` instance."""
    _prepare_ultralytics()
    import torch
    from ultralytics.nn.tasks import torch_safe_load
    restore_pil_open()
    try:
        ckpt, _ = torch_safe_load(str(path), safe_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a loadable ultralytics checkpoint: {exc}") from exc
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{path}: the checkpoint holds no model")
    if not isinstance(model, expect):
        raise ValueError(f"{path}: a {type(model).__name__}, not {what}")
    return model.float().fuse(verbose=False).eval().to(device)


def load_fastsam(model_path: str = DEFAULT_FASTSAM, device: str = "cpu") -> FastSamModel:
    """The process-wide FastSAM model for ``model_path`` on ``device`` (loaded on first use).
    ``model_path`` is a file path or a file name looked up in assets_cache/ and in ultralytics'
    weights dir; when neither has it and we are online, ultralytics downloads it into
    assets_cache/."""
    if not isinstance(model_path, str) or not model_path.strip():
        raise ValueError(f"FastSAM model_path must be a non-empty string, got {model_path!r}")
    name, device = model_path.strip(), normalise_device(device)
    if not name.endswith(".pt"):
        raise ValueError(f"FastSAM weights must be a .pt file, got {name!r}")
    path = resolve_ultralytics_weights(name)
    model = shared_model("fastsam", str(path), device, lambda: _load(path, device))
    restore_pil_open()  # cheap; also covers an ultralytics imported elsewhere since
    return model
