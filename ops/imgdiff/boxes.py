"""Box helpers for ImgDiff: format, clamping, scaling, in-memory crops, IoU NMS.

Box format everywhere in ImgDiff (and in ``meta.bbox``): ``[x1, y1, x2, y2]`` floats in pixels
of image 1 (the first image of the pair, after EXIF transpose), origin at the top-left corner,
x to the right, y down; ``x2``/``y2`` are exclusive edges, so a box covering the whole W x H
image is ``[0, 0, W, H]``.  Data-Juicer stores ultralytics' centre format ``[cx, cy, w, h]``;
``xywh_to_xyxy`` converts from it.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image

MIN_SIDE = 1.0  # a clamped box thinner than this (pixels) is dropped


def as_boxes(boxes) -> np.ndarray:
    """Any (K,4) array-like (list, numpy, torch) -> float64 numpy (K,4); checks the shape."""
    if hasattr(boxes, "detach"):
        boxes = boxes.detach().cpu().numpy()
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (K, 4), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("boxes hold NaN or infinite coordinates")
    return arr


def xywh_to_xyxy(boxes) -> np.ndarray:
    """Centre format [cx, cy, w, h] -> [x1, y1, x2, y2]."""
    b = as_boxes(boxes)
    half = b[:, 2:] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def scale_boxes(boxes, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Boxes in an image of ``from_size`` (W, H) -> the same region in ``to_size`` (W, H)."""
    b = as_boxes(boxes).copy()
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    b[:, [0, 2]] *= sx
    b[:, [1, 3]] *= sy
    return b


def clamp_boxes(boxes, size: tuple[int, int], min_side: float = MIN_SIDE):
    """Clip boxes to the image ``size`` (W, H), fixing swapped corners.

    Returns ``(clamped, keep)``: ``keep`` marks boxes still at least ``min_side`` wide and
    high after clipping (a box wholly outside the image is not kept)."""
    w, h = size
    b = as_boxes(boxes)
    x1 = np.clip(np.minimum(b[:, 0], b[:, 2]), 0, w)
    x2 = np.clip(np.maximum(b[:, 0], b[:, 2]), 0, w)
    y1 = np.clip(np.minimum(b[:, 1], b[:, 3]), 0, h)
    y2 = np.clip(np.maximum(b[:, 1], b[:, 3]), 0, h)
    out = np.stack([x1, y1, x2, y2], axis=1) if len(b) else b
    keep = ((out[:, 2] - out[:, 0]) >= min_side) & ((out[:, 3] - out[:, 1]) >= min_side)
    return out, keep


def pixel_bounds(box: Sequence[float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer crop window covering ``box`` (outward rounding), inside the image."""
    w, h = size
    x1 = min(max(int(math.floor(box[0])), 0), w - 1)
    y1 = min(max(int(math.floor(box[1])), 0), h - 1)
    x2 = max(min(int(math.ceil(box[2])), w), x1 + 1)
    y2 = max(min(int(math.ceil(box[3])), h), y1 + 1)
    return x1, y1, x2, y2


def crop(image: Image.Image, box: Sequence[float]) -> Image.Image:
    """The region ``box`` of ``image`` as a new in-memory image (clamped, never empty)."""
    return image.crop(pixel_bounds(box, image.size))


def align_pair(image1: Image.Image, image2: Image.Image) -> Image.Image:
    """Image 2 resized to image 1's size (bilinear), so one box addresses both."""
    if image2.size == image1.size:
        return image2
    return image2.resize(image1.size, Image.BILINEAR)


def box_iou(a, b) -> np.ndarray:
    """Pairwise IoU matrix (len(a), len(b)) via torchvision."""
    import torch
    from torchvision.ops import box_iou as tv_box_iou

    ta = torch.as_tensor(as_boxes(a), dtype=torch.float64)
    tb = torch.as_tensor(as_boxes(b), dtype=torch.float64)
    return tv_box_iou(ta, tb).numpy()


def nms(boxes, scores, iou_threshold: float) -> list[int]:
    """Indices of the boxes kept by IoU non-maximum suppression, best score first.

    A box is dropped when its IoU with a better-scored kept box exceeds ``iou_threshold``."""
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(b):
        raise ValueError(f"{len(b)} boxes but {len(s)} scores")
    if len(b) == 0:
        return []
    import torch
    from torchvision.ops import nms as tv_nms

    kept = tv_nms(torch.as_tensor(b, dtype=torch.float64), torch.as_tensor(s, dtype=torch.float64),
                  float(iou_threshold))
    return [int(i) for i in kept.tolist()]


def xyxy_to_dj(boxes: list) -> list:
    """Boxes ``[x1, y1, x2, y2]`` -> Data-Juicer's ``[cx, cy, w, h]`` (same pixel units)."""
    return [[(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1] for x1, y1, x2, y2 in boxes]
