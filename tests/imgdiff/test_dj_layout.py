"""Data-Juicer's data layouts: pairs as ``images: [a, b]``, boxes as ``meta.__dj__bbox__``."""
import json

import numpy as np
import pytest

from ops import OPERATORS
from ops.base import batch_of, rows_of
from ops.fields import Fields, MetaKeys, StatsKeys, Status
from ops.image.io import load_image
from tests.conftest import write_jsonl

from .fakes import BlobSegmenter, ColourBlip, HistogramClip
from .test_fused_logic import A, B, save_pair


def _rows(rows):
    return [{**r, Fields.id: str(i), Fields.stats: {}, Fields.meta: {}}
            for i, r in enumerate(rows)]


def _as_dj(rows):
    """The same pairs the way Data-Juicer rows carry them."""
    return [{"images": [r["image_path1"], r["image_path2"]], "caption1": r["caption1"],
             "caption2": r["caption2"]} for r in rows]


def dj_stage2_regions(bbox_tag, width1, height1):
    """What Data-Juicer's imgdiff_difference_caption_generator_mapper reads from
    meta.__dj__bbox__: no region when it is one all-zero box, else per box [cx, cy, w, h] in
    pixels of image 1, turned into a region [x1, y1, x2, y2] normalised by image 1's size."""
    if len(bbox_tag) == 1 and np.sum(bbox_tag[0]) == 0:
        return []
    return [[(cx - w / 2) / width1, (cy - h / 2) / height1, (cx + w / 2) / width1,
             (cy + h / 2) / height1] for cx, cy, w, h in bbox_tag]


# ------------------------------------------------------------------ pairs as images: [a, b]
def test_pair_similarity_reads_both_layouts(tiny_models, image_pairs):
    op = OPERATORS.get("image_pair_similarity_filter")(hf_clip=tiny_models["clip"],
                                                       min_score=-1.0)
    cols = rows_of(op.run_batched(batch_of(_rows(image_pairs))))
    dj = rows_of(op.run_batched(batch_of(_rows(_as_dj(image_pairs)))))
    key = StatsKeys.image_pair_similarity
    assert [r[Fields.stats][key] for r in dj] == \
        pytest.approx([r[Fields.stats][key] for r in cols], abs=1e-6)
    assert {r[Fields.status] for r in dj} == {Status.kept}
    bad = _rows([{"images": [image_pairs[0]["image_path1"]] * 3}, {"images": "x.png"},
                 {"text": "no images"}])
    out = rows_of(op.run_batched(batch_of(bad)))
    assert [r[Fields.status] for r in out] == [Status.error] * 3
    assert "exactly two images" in out[0][Fields.reason] and "got 3" in out[0][Fields.reason]
    assert "got 1" in out[1][Fields.reason]
    assert "image_path1" in out[2][Fields.reason] and "'images'" in out[2][Fields.reason]


def test_pair_similarity_in_a_data_juicer_recipe(tiny_models, image_pairs, tmp_path):
    """An unchanged Data-Juicer pair recipe (images: [a, b] rows) through dj-process and
    dj-analyze (the similarity stats)."""
    from pipelines.cli.analyze import analyze
    from pipelines.config import parse_recipe
    from tests.pipelines.helpers import run_inprocess
    data = write_jsonl(tmp_path / "pairs.jsonl", _as_dj(image_pairs))
    recipe = tmp_path / "dj.yaml"
    recipe.write_text(f"project_name: pairs\nexecutor_type: default\nnp: 1\nprocess:\n"
                      f"  - image_pair_similarity_filter:\n      hf_clip: '{tiny_models['clip']}'\n"
                      f"      trust_remote_code: false\n      min_score: 0.999\n"
                      f"      any_or_all: any\n      gpu_required: 0\n")
    argv = ["--config", str(recipe), "--dataset_path", str(data), "--work_dir", str(tmp_path)]
    summary = run_inprocess(argv)
    assert summary["errored"] == 0 and summary["kept"] >= 1      # pair 0: identical files
    result = analyze(parse_recipe(argv))
    [row] = [r for r in result["overall"] if r["stat"] == StatsKeys.image_pair_similarity]
    assert row["count"] == len(image_pairs) and row["max"] == pytest.approx(1.0, abs=1e-5)
    assert result["ops"][0]["would drop"] == len(image_pairs) - summary["kept"]


# ------------------------------------------------------------------ ImgDiff bbox_tag
@pytest.fixture
def imgdiff():
    op = OPERATORS.get("imgdiff_difference_area_generator_mapper")()
    op.use_scorers(clip=HistogramClip(), blip=ColourBlip(), segmenter=BlobSegmenter())
    return op


def test_imgdiff_writes_data_juicer_bbox_tag(tmp_path, imgdiff):
    p1, p2 = save_pair(tmp_path, "swap", [("apple", A), ("box", B)], [("pear", A), ("box", B)])
    q1, q2 = save_pair(tmp_path, "same", [("box", B)], [("box", B)])
    rows = [{"image_path1": p1, "image_path2": p2, "caption1": "An apple and a box.",
             "caption2": "A pear and a box."},
            {"images": [p1, p2], "caption1": "An apple and a box.",
             "caption2": "A pear and a box."},
            {"image_path1": q1, "image_path2": q2, "caption1": "A box.", "caption2": "A box."}]
    out = rows_of(imgdiff.run_batched(batch_of(_rows(rows))))
    assert [r[Fields.status] for r in out] == [Status.kept] * 3
    w1, h1 = load_image(p1).size
    for r in out[:2]:       # both layouts of the pair give the same boxes
        meta = r[Fields.meta]
        assert meta[MetaKeys.bbox] == [[20.0, 20.0, 60.0, 60.0]]
        assert meta[MetaKeys.bbox_tag] == [[40.0, 40.0, 40.0, 40.0]]       # cx, cy, w, h
        regions = dj_stage2_regions(meta[MetaKeys.bbox_tag], w1, h1)
        expected = [[x1 / w1, y1 / h1, x2 / w1, y2 / h1] for x1, y1, x2, y2 in meta[MetaKeys.bbox]]
        assert np.allclose(regions, expected)
    nothing = out[2][Fields.meta]
    assert nothing[MetaKeys.bbox] == [] and nothing[MetaKeys.bbox_tag] == [[0.0, 0.0, 0.0, 0.0]]
    assert dj_stage2_regions(nothing[MetaKeys.bbox_tag], w1, h1) == []
    json.dumps(out[0][Fields.meta])          # plain JSON, as Data-Juicer loads it


def test_segment_mapper_writes_data_juicer_bbox_tag(tiny_models, image_pairs):
    op = OPERATORS.get("image_segment_mapper")(model_path=tiny_models["fastsam"], imgsz=96,
                                               conf=0.3, image_keys=["image_path1",
                                                                     "image_path2"])
    out = rows_of(op.run_batched(batch_of(_rows(image_pairs))))
    seen_boxes = 0
    for r in out:
        segments, tag = r[Fields.meta][MetaKeys.segments], r[Fields.meta][MetaKeys.bbox_tag]
        assert len(tag) == len(segments) == 2                  # one list per image
        for boxes, centres in zip(segments, tag):
            assert len(boxes) == len(centres)
            for (x1, y1, x2, y2), (cx, cy, w, h) in zip(boxes, centres):
                assert (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2) == \
                    pytest.approx((x1, y1, x2, y2))
                assert w >= 0 and h >= 0
                seen_boxes += 1
    assert seen_boxes > 0
