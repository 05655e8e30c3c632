"""Box helpers: format conversion, clamping, scaling, crops, NMS."""
import numpy as np
import pytest
import torch
from PIL import Image

from ops.imgdiff.boxes import (align_pair, as_boxes, box_iou, clamp_boxes, crop, nms,
                               pixel_bounds, scale_boxes, xywh_to_xyxy)


def test_as_boxes_shapes_and_errors():
    assert as_boxes([]).shape == (0, 4)
    assert as_boxes(torch.tensor([[1, 2, 3, 4]])).tolist() == [[1.0, 2.0, 3.0, 4.0]]
    with pytest.raises(ValueError, match=r"shape \(K, 4\)"):
        as_boxes([[1, 2, 3]])
    with pytest.raises(ValueError, match="NaN"):
        as_boxes([[0, 0, float("nan"), 4]])


def test_xywh_to_xyxy():
    assert xywh_to_xyxy([[50, 40, 20, 10]]).tolist() == [[40.0, 35.0, 60.0, 45.0]]


def test_clamp_boxes():
    boxes = [[-10, -5, 30, 20],    # crosses the top-left corner
             [90, 50, 120, 80],    # crosses the bottom-right corner of 100x60
             [30, 20, 10, 5],      # corners swapped
             [150, 10, 170, 20],   # wholly outside
             [10, 10, 10.5, 40]]   # thinner than a pixel
    out, keep = clamp_boxes(boxes, (100, 60))
    assert out.tolist() == [[0, 0, 30, 20], [90, 50, 100, 60], [10, 5, 30, 20],
                            [100, 10, 100, 20], [10, 10, 10.5, 40]]
    assert keep.tolist() == [True, True, True, False, False]


def test_scale_boxes():
    assert scale_boxes([[20, 10, 60, 50]], (200, 100), (100, 200)).tolist() == [[10, 20, 30, 100]]


def test_pixel_bounds_and_crop():
    img = Image.new("RGB", (100, 60))
    assert pixel_bounds([10.2, 5.7, 20.5, 30.0], img.size) == (10, 5, 21, 30)
    assert pixel_bounds([99.5, 59.5, 100, 60], img.size) == (99, 59, 100, 60)
    assert crop(img, [-20, -20, 50, 40]).size == (50, 40)   # clamped, no black padding
    assert crop(img, [98.9, 10, 99.1, 10.2]).size == (2, 1)  # never empty


def test_crop_reads_the_right_pixels():
    arr = np.zeros((60, 100, 3), dtype=np.uint8)
    arr[10:20, 30:50] = 255
    out = np.asarray(crop(Image.fromarray(arr), [30, 10, 50, 20]))
    assert out.shape == (10, 20, 3) and out.min() == 255


def test_align_pair():
    a, b = Image.new("RGB", (100, 60)), Image.new("RGB", (200, 120), (255, 0, 0))
    out = align_pair(a, b)
    assert out.size == (100, 60) and out.getpixel((50, 30)) == (255, 0, 0)
    assert align_pair(a, a) is a


def test_box_iou_and_nms():
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]]
    iou = box_iou(boxes, boxes)
    assert iou[0, 1] == pytest.approx(90 / 110) and iou[0, 2] == 0 and iou[0, 3] == 1
    # box 1 scores best and suppresses 0 and 3 (IoU 0.82 > 0.5); 2 overlaps nothing
    assert nms(boxes, [0.5, 0.9, 0.1, 0.4], 0.5) == [1, 2]
    # with a threshold above 0.82 only the exact duplicate (IoU 1) goes
    assert nms(boxes, [0.5, 0.9, 0.1, 0.4], 0.85) == [1, 0, 2]
    assert nms([], [], 0.5) == []
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(boxes, [1, 1, 1, 1], 1.5)
    with pytest.raises(ValueError, match="4 boxes but 3 scores"):
        nms(boxes, [1, 1, 1], 0.5)
