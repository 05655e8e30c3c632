"""The fused ImgDiff op with tiny CLIP / BLIP / FastSAM models through the real loaders, and the
recipe through the local executor, on generated pairs."""
import json
import math

import numpy as np
import pytest

from ops.base import batch_of, rows_of
from ops.fields import Fields, MetaKeys, Status
from ops.imgdiff.boxes import box_iou
from ops.imgdiff.synthetic import synthetic_pairs
from ops.mapper.imgdiff_difference_area_generator_mapper import (
    IMGDIFF_META, ImgdiffDifferenceAreaGeneratorMapper)

pytestmark = pytest.mark.slow

OPEN = {"min_score_1": -1.0, "max_score_1": 1.0, "min_score_2": -1.0, "max_score_2": 1.0}


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgdiff_pairs")
    rows = synthetic_pairs(root, n=4, size=(96, 72), seed=3)
    for r in rows:
        r["image_path1"], r["image_path2"] = str(root / r["image_path1"]), str(root / r["image_path2"])
    return root, rows


def make_op(tiny, sim=None, itm_min=0.0, batch=8, **kw):
    return ImgdiffDifferenceAreaGeneratorMapper(
        image_pair_similarity_filter_args={**OPEN, **(sim or {}), "hf_clip": tiny["clip"]},
        image_segment_mapper_args={"model_path": tiny["fastsam"], "imgsz": 64, "conf": 0.05},
        image_text_matching_filter_args={"hf_blip": tiny["blip"], "min_score": itm_min},
        model_batch_size=batch, accelerator="cpu", **kw)


def test_open_thresholds_every_candidate_reaches_nms(tiny_models, pairs_dir):
    from ops.models.fastsam import load_fastsam
    _, rows = pairs_dir
    op = make_op(tiny_models)
    out = rows_of(op.run_batched(batch_of([dict(r, **{Fields.id: str(i)})
                                           for i, r in enumerate(rows)])))
    sam = load_fastsam(tiny_models["fastsam"])
    assert op._m_sam is sam  # the shared per-process copy
    for r, o in zip(rows, out):
        assert o[Fields.status] == Status.kept
        meta = o[Fields.meta]
        info = meta[IMGDIFF_META]
        assert info["objects1"] or info["objects2"]
        boxes = np.array(meta[MetaKeys.bbox]).reshape(-1, 4)
        assert len(boxes) == len(info["boxes"]) >= 1
        assert info["candidate_boxes"] >= len(boxes)
        # inside image 1 (96x72), proper corners, and no two overlapping beyond the threshold
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 96).all()
        assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= 72).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        iou = box_iou(boxes, boxes) - np.eye(len(boxes))
        assert iou.max(initial=0) <= 0.5
        for b in info["boxes"]:
            assert b["object1"] in info["objects1"] + info["attributes1"] + [None]
            assert b["object2"] in info["objects2"] + info["attributes2"] + [None]
            assert b["object1"] is not None or b["object2"] is not None
            assert -1.0 <= b["crop_similarity"] <= 1.0 + 1e-6


def test_forward_passes_follow_the_batch_not_the_crops(tiny_models, pairs_dir):
    _, rows = pairs_dir
    op = make_op(tiny_models, batch=16)
    op.ensure_setup()
    clip, blip, sam = op._m_clip, op._m_blip, op._m_sam
    before = (clip.forward_passes, blip.forward_passes, sam.forward_passes)
    out = rows_of(op.run_batched(batch_of([dict(r, **{Fields.id: str(i)})
                                           for i, r in enumerate(rows)])))
    crops = sum(o[Fields.meta][IMGDIFF_META]["candidate_boxes"] for o in out)
    # step 1: 8 images in one pass; step 6: two crops per candidate box in passes of 16
    assert clip.forward_passes - before[0] == 1 + math.ceil(2 * crops / 16)
    assert sam.forward_passes - before[2] == math.ceil(8 / 4)
    # BLIP (every crop alive with open thresholds): one vision pass per 16 distinct crops and,
    # here where each side names one object, one text pass per vision chunk -- against one
    # vision and one text pass per (crop, noun) for a batch-1 loop
    infos = [o[Fields.meta][IMGDIFF_META] for o in out]
    itm_pairs = sum(i["candidate_boxes"] * (len(i["objects1"]) + len(i["objects2"])) for i in infos)
    sides = sum(i["candidate_boxes"] * (bool(i["objects1"]) + bool(i["objects2"])) for i in infos)
    assert itm_pairs == sides > 16
    assert blip.forward_passes - before[1] == 2 * math.ceil(sides / 16)


def test_models_are_shared_with_the_standalone_sub_ops(tiny_models):
    from ops.registry import OPERATORS
    op = make_op(tiny_models)
    op.ensure_setup()
    sim = OPERATORS.get("image_pair_similarity_filter")(hf_clip=tiny_models["clip"], accelerator="cpu")
    itm = OPERATORS.get("image_text_matching_filter")(hf_blip=tiny_models["blip"], accelerator="cpu")
    seg = OPERATORS.get("image_segment_mapper")(model_path=tiny_models["fastsam"], accelerator="cpu")
    for sub in (sim, itm, seg):
        sub.ensure_setup()
    assert sim._m_clip is op._m_clip and itm._m_blip is op._m_blip and seg._m_sam is op._m_sam


def test_closed_first_pass_keeps_rows_with_a_reason(tiny_models, pairs_dir):
    _, rows = pairs_dir
    op = make_op(tiny_models, sim={"min_score_1": 1.0, "max_score_1": 1.0})
    out = rows_of(op.run_batched(batch_of([dict(rows[0], **{Fields.id: "0"})])))
    assert out[0][Fields.status] == Status.kept
    assert out[0][Fields.meta][MetaKeys.bbox] == []
    assert out[0][Fields.meta][IMGDIFF_META]["reason"].startswith("pair similarity")


def _write_recipe(path, tiny, dataset, work):
    path.write_text(f"""
project_name: imgdiff-test
dataset_path: {dataset}
export_path: {work / 'result.jsonl'}
work_dir: {work}
np: 1
process:
  - imgdiff_difference_area_generator_mapper:
      image_pair_similarity_filter_args: {json.dumps({**OPEN, "hf_clip": tiny["clip"]})}
      image_segment_mapper_args: {{model_path: {tiny["fastsam"]}, imgsz: 64}}
      image_text_matching_filter_args: {{hf_blip: {tiny["blip"]}, min_score: 0.0}}
      accelerator: cpu
      batch_size: 2
""")
    return path


def _exported(work):
    out = {}
    for line in (work / "result.jsonl").read_text().splitlines():
        row = json.loads(line)
        meta = row[Fields.meta] if isinstance(row[Fields.meta], dict) else json.loads(row[Fields.meta])
        out[row["image_path1"]] = meta[MetaKeys.bbox]
    return out


def test_recipe_on_local_and_ray_executors(tiny_models, pairs_dir, tmp_path):
    ray = pytest.importorskip("ray")
    from pipelines.cli import process_main
    root, _ = pairs_dir
    rows = synthetic_pairs(root / "rel", n=3, size=(96, 72), seed=5)
    dataset = root / "rel" / "pairs.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = {}
    for executor in ("local", "ray"):
        work = tmp_path / executor
        recipe = _write_recipe(tmp_path / f"{executor}.yaml", tiny_models, dataset, work)
        if executor == "ray":
            if ray.is_initialized():
                ray.shutdown()
            ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=40)
        try:
            assert process_main(["--config", str(recipe), "--executor_type", executor]) == 0
        finally:
            if executor == "ray":
                ray.shutdown()
        results[executor] = _exported(work)
    assert len(results["local"]) == 3
    for boxes in results["local"].values():
        assert isinstance(boxes, list) and len(boxes) >= 1 and all(len(b) == 4 for b in boxes)
    assert results["ray"] == results["local"]
