"""image_detection_yolo_mapper with a tiny YOLO11 built from ultralytics' model yaml, on real
photos: the boxes equal ultralytics' own predictor, in Data-Juicer's layout."""
import json

import numpy as np
import pytest
from PIL import Image

from ops import OPERATORS
from ops.fields import Fields, MetaKeys, Status
from tests.ops.conftest import batch_of_rows

pytestmark = pytest.mark.slow

SIDE = 128       # square copies at the inference size: no resize, no padding on either side


@pytest.fixture(scope="module")
def squares(photos, tmp_path_factory):
    d = tmp_path_factory.mktemp("squares")
    out = {}
    for name in ("astronaut.png", "coffee.jpg", "grace_hopper.jpg"):
        path = d / (name.split(".")[0] + ".png")
        Image.open(photos[name]).convert("RGB").resize((SIDE, SIDE), Image.LANCZOS).save(path)
        out[name.split(".")[0]] = str(path)
    return out


def _same_rows(a, b, tol=(0.02, 0.02, 0.02, 0.02, 0, 1e-4)) -> bool:
    """Every row of ``a`` pairs with its own row of ``b`` within ``tol`` per column."""
    free = list(range(len(b)))
    for row in a:
        hit = next((j for j in free if (np.abs(b[j] - row) <= np.array(tol)).all()), None)
        if hit is None:
            return False
        free.remove(hit)
    return not free


def _run(model, rows, **kw):
    op = OPERATORS.get("image_detection_yolo_mapper")(**{"model_path": model, "imgsz": SIDE, **kw})
    out = op.run_batched(batch_of_rows(rows))
    return op, out, [json.loads(m) for m in out[Fields.meta]]


def test_boxes_match_ultralytics_predictor(tiny_yolo, squares):
    from ultralytics import YOLO

    from ops.models.fastsam import restore_pil_open
    names = ["astronaut", "coffee", "grace_hopper"]
    _, out, metas = _run(tiny_yolo, [{"images": [squares[n]]} for n in names])
    reference = YOLO(tiny_yolo)       # the test's oracle; the op reads weights_only itself
    restore_pil_open()
    for n, meta in zip(names, metas):
        r = reference.predict(Image.open(squares[n]), imgsz=SIDE, conf=0.05, iou=0.5,
                              verbose=False)[0]
        (boxes,), (labels,), (scores,) = (meta[MetaKeys.bbox_tag], meta[MetaKeys.class_label_tag],
                                          meta[MetaKeys.detection_scores])
        assert len(boxes) == len(r.boxes) > 0
        ours = np.c_[boxes, labels, scores]
        theirs = np.c_[r.boxes.xywh.numpy(), r.boxes.cls.numpy(), r.boxes.conf.numpy()]
        assert _same_rows(ours, theirs)          # equal scores may come in either order
        assert meta[MetaKeys.detection_names][0] == [reference.names[c] for c in labels]
    assert out[Fields.status] == [Status.kept] * 3


def test_layout_thresholds_batches_and_bad_rows(tiny_yolo, squares, photos):
    rows = [{"images": [squares["astronaut"], squares["coffee"]]}, {"images": []},
            {"images": [photos["broken.jpg"]]}, {"images": [squares["grace_hopper"]]}]
    op, out, metas = _run(tiny_yolo, rows)
    assert out[Fields.status] == [Status.kept, Status.kept, Status.error, Status.kept]
    assert "broken.jpg" in out[Fields.reason][2]
    assert metas[1][MetaKeys.bbox_tag] == [] and metas[1][MetaKeys.class_label_tag] == []
    both = metas[0][MetaKeys.bbox_tag]
    assert len(both) == 2 and all(len(b) == 4 for img in both for b in img)
    for cx, cy, w, h in both[1]:
        assert -0.01 <= cx - w / 2 and cx + w / 2 <= SIDE + 0.01 and w > 0 and h > 0
    scores = metas[0][MetaKeys.detection_scores][1]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.05
    # alone, each image gets what it got in the batch (same size: same letterbox)
    _, _, alone = _run(tiny_yolo, [{"images": [squares["coffee"]]}])
    assert _same_rows(np.c_[alone[0][MetaKeys.bbox_tag][0], alone[0][MetaKeys.detection_scores][0]],
                      np.c_[both[1], scores], tol=(0.02,) * 4 + (1e-4,))
    # a stricter threshold keeps the confident subset
    _, _, strict = _run(tiny_yolo, [{"images": [squares["coffee"]]}], conf=0.3)
    kept = strict[0][MetaKeys.detection_scores][0]
    assert kept and min(kept) >= 0.3 and len(kept) < len(scores)


def test_non_square_photo_boxes_lie_inside_it(tiny_yolo, photos):
    _, out, metas = _run(tiny_yolo, [{"images": photos["coffee.jpg"]}], imgsz=160)
    w, h = Image.open(photos["coffee.jpg"]).size
    assert out[Fields.status] == [Status.kept] and w != h
    for cx, cy, bw, bh in metas[0][MetaKeys.bbox_tag][0]:
        assert -0.01 <= cx - bw / 2 and cx + bw / 2 <= w + 0.01
        assert -0.01 <= cy - bh / 2 and cy + bh / 2 <= h + 0.01


def test_segmentation_checkpoint_is_refused(tmp_path):
    import copy

    import torch
    import ultralytics
    from ultralytics.nn.tasks import SegmentationModel, yaml_model_load
    cfg = copy.deepcopy(yaml_model_load("yolov8n-seg.yaml"))
    cfg["scales"] = {"t": [0.33, 0.0625, 256]}
    cfg["scale"], cfg["nc"] = "t", 1
    torch.save({"model": SegmentationModel(cfg, ch=3, nc=1, verbose=False).half(),
                "version": ultralytics.__version__}, tmp_path / "seg.pt")
    from ops.models.yolo import load_yolo
    with pytest.raises(ValueError, match="plain detection checkpoint"):
        load_yolo(str(tmp_path / "seg.pt"))
