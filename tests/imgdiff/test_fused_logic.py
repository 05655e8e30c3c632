"""The eight ImgDiff steps with deterministic scorers injected into the fused op."""
import json
import pickle

import pytest
from PIL import Image

from ops.base import batch_of, rows_of
from ops.fields import Fields, MetaKeys, Status
from ops.imgdiff.synthetic import draw_scene
from ops.mapper.imgdiff_difference_area_generator_mapper import (
    IMGDIFF_META, ImgdiffDifferenceAreaGeneratorMapper)

from .fakes import BlobSegmenter, ColourBlip, HistogramClip

SIZE = (128, 96)
A = (20, 20, 60, 60)      # the planted difference: apple (red) -> pear (green)
B = (80, 40, 104, 64)     # an identical box in both images


@pytest.fixture
def make_op():
    def build(segmenter=None, **kwargs):
        op = ImgdiffDifferenceAreaGeneratorMapper(**kwargs)
        op.use_scorers(clip=HistogramClip(), blip=ColourBlip(),
                       segmenter=segmenter or BlobSegmenter())
        return op
    return build


def save_pair(tmp_path, name, first, second, size2=SIZE):
    p1, p2 = tmp_path / f"{name}_1.png", tmp_path / f"{name}_2.png"
    draw_scene(SIZE, first).save(p1)
    draw_scene(size2, second).save(p2)
    return str(p1), str(p2)


def row(p1, p2, c1, c2, i=0):
    return {"image_path1": p1, "image_path2": p2, "caption1": c1, "caption2": c2,
            Fields.id: str(i), Fields.meta: {}}


def run(op, rows):
    return rows_of(op.run_batched(batch_of(rows)))


def test_planted_difference_survives_and_identical_region_is_dropped(tmp_path, make_op):
    p1, p2 = save_pair(tmp_path, "swap", [("apple", A), ("box", B)], [("pear", A), ("box", B)])
    op = make_op()
    [out] = run(op, [row(p1, p2, "An apple and a box on a table.", "A pear and a box on a table.")])
    assert out[Fields.status] == Status.kept
    meta = out[Fields.meta]
    assert meta[MetaKeys.bbox] == [[20.0, 20.0, 60.0, 60.0]]   # B (identical) is gone
    info = meta[IMGDIFF_META]
    assert info["objects1"] == ["apple"] and info["objects2"] == ["pear"]
    assert 0.9 <= info["pair_similarity"] <= 0.99
    [box] = info["boxes"]
    assert (box["object1"], box["object2"]) == ("apple", "pear")
    assert box["itm_score1"] == pytest.approx(1.0) and box["itm_score2"] == pytest.approx(1.0)
    assert box["crop_similarity"] == pytest.approx(0.0, abs=1e-9)
    assert info["reason"] is None and info["candidate_boxes"] == 2


def test_overlapping_boxes_are_merged_keeping_the_most_different(tmp_path, make_op):
    p1, p2 = save_pair(tmp_path, "ovl", [("apple", A), ("box", B)], [("pear", A), ("box", B)])
    shifted = [[23.0, 23.0, 63.0, 63.0]]  # IoU with A = 1369 / 1831 = 0.75
    op = make_op(segmenter=BlobSegmenter(extra=lambda img: shifted))
    [out] = run(op, [row(p1, p2, "an apple and a box", "a pear and a box")])
    assert out[Fields.meta][MetaKeys.bbox] == [[20.0, 20.0, 60.0, 60.0]]
    assert out[Fields.meta][IMGDIFF_META]["candidate_boxes"] == 3
    # with a threshold above that IoU both boxes stay, the exact one (crop similarity 0) first
    op = make_op(segmenter=BlobSegmenter(extra=lambda img: shifted), nms_iou_threshold=0.8)
    [out] = run(op, [row(p1, p2, "an apple and a box", "a pear and a box")])
    assert out[Fields.meta][MetaKeys.bbox] == [[20.0, 20.0, 60.0, 60.0], [23.0, 23.0, 63.0, 63.0]]


def test_border_crops_are_clamped(tmp_path, make_op):
    corner = (0, 0, 36, 36)
    p1, p2 = save_pair(tmp_path, "edge", [("apple", corner), ("box", B)],
                       [("pear", corner), ("box", B)])
    seg = BlobSegmenter(extra=lambda img: [[-15.0, -10.0, 36.0, 36.0], [100.0, 80.0, 190.0, 150.0]])
    op = make_op(segmenter=seg)
    [out] = run(op, [row(p1, p2, "an apple and a box", "a pear and a box")])
    assert out[Fields.meta][MetaKeys.bbox] == [[0.0, 0.0, 36.0, 36.0]]
    blip = op._m_blip
    # every crop BLIP saw lies inside the 128x96 image: unclamped, the first extra box would be
    # a 51x46 crop padded with black and the second would reach past the corner
    assert blip.seen_sizes and all(w <= 128 and h <= 96 for w, h in blip.seen_sizes)
    assert (51, 46) not in blip.seen_sizes


def test_image2_boxes_are_mapped_to_image1_pixels(tmp_path, make_op):
    big = (256, 192)
    p1, p2 = save_pair(tmp_path, "big", [("box", B)],
                       [("lemon", (60, 40, 140, 120)), ("box", (160, 80, 208, 128))], size2=big)
    op = make_op(segmenter=BlobSegmenter(only_size=big))  # boxes come from image 2 only
    [out] = run(op, [row(p1, p2, "a box on a table", "a lemon and a box on a table")])
    info = out[Fields.meta][IMGDIFF_META]
    assert info["objects1"] == [] and info["objects2"] == ["lemon"]
    # the lemon at (60,40)-(140,120) in the 256x192 image is (30,20)-(70,60) in image 1
    assert out[Fields.meta][MetaKeys.bbox] == [[30.0, 20.0, 70.0, 60.0]]
    assert info["boxes"][0]["object1"] is None and info["boxes"][0]["object2"] == "lemon"


def test_attribute_change_is_matched(tmp_path, make_op):
    p1, p2 = save_pair(tmp_path, "attr", [("apple", A), ("lemon", B)], [("box", A), ("lemon", B)])
    op = make_op()
    [out] = run(op, [row(p1, p2, "a red car next to a lemon", "a blue car next to a lemon")])
    assert out[Fields.meta][MetaKeys.bbox] == [[20.0, 20.0, 60.0, 60.0]]
    [box] = out[Fields.meta][IMGDIFF_META]["boxes"]
    assert (box["object1"], box["object2"]) == ("red car", "blue car")
    op = make_op(attribute_changes=False)
    [out] = run(op, [row(p1, p2, "a red car next to a lemon", "a blue car next to a lemon")])
    assert out[Fields.meta][MetaKeys.bbox] == []
    assert out[Fields.meta][IMGDIFF_META]["reason"] == "the captions name no differing object"


def test_wrong_noun_is_not_matched(tmp_path, make_op):
    # the captions say plum -> lemon, but the picture changes apple -> pear: BLIP rejects it
    p1, p2 = save_pair(tmp_path, "wrong", [("apple", A), ("box", B)], [("pear", A), ("box", B)])
    [out] = run(make_op(), [row(p1, p2, "a plum and a box", "a lemon and a box")])
    assert out[Fields.meta][MetaKeys.bbox] == []
    assert out[Fields.meta][IMGDIFF_META]["reason"].startswith("no segment matched")


def test_dissimilar_pair_and_identical_captions_keep_their_rows(tmp_path, make_op):
    far1, far2 = save_pair(tmp_path, "far", [("apple", (0, 0, 128, 96))], [("pear", (0, 0, 128, 96))])
    same1, same2 = save_pair(tmp_path, "same", [("apple", A), ("box", B)], [("pear", A), ("box", B)])
    op = make_op()
    out = run(op, [row(far1, far2, "an apple", "a pear", 0),
                   row(same1, same2, "a box and a fruit", "A box and a fruit.", 1)])
    assert [o[Fields.status] for o in out] == [Status.kept, Status.kept]
    assert out[0][Fields.meta][MetaKeys.bbox] == []
    assert out[0][Fields.meta][IMGDIFF_META]["reason"].startswith("pair similarity 0.0000 outside")
    assert out[1][Fields.meta][MetaKeys.bbox] == []
    assert out[1][Fields.meta][IMGDIFF_META]["reason"] == "the captions name no differing object"


def test_every_model_call_is_batched_across_the_batch(tmp_path, make_op):
    rows = []
    for i in range(4):
        p1, p2 = save_pair(tmp_path, f"b{i}", [("apple", A), ("box", B)], [("pear", A), ("box", B)])
        rows.append(row(p1, p2, "an apple and a box", "a pear and a box", i))
    op = make_op(model_batch_size=64, segment_batch_size=8)
    out = run(op, rows)
    assert all(o[Fields.meta][MetaKeys.bbox] == [[20.0, 20.0, 60.0, 60.0]] for o in out)
    clip, blip, sam = op._m_clip, op._m_blip, op._m_sam
    assert clip.calls == [8, 16]   # 4 pairs x 2 images; then 4 pairs x 2 boxes x 2 crops
    assert sam.calls == [8]
    assert blip.calls == [8]       # only box A passes the crop test: 4 pairs x 2 sides x 1 noun
    assert clip.forward_passes + blip.forward_passes + sam.forward_passes == 4


def test_bad_row_is_isolated(tmp_path, make_op):
    p1, p2 = save_pair(tmp_path, "ok", [("apple", A), ("box", B)], [("pear", A), ("box", B)])
    op = make_op()
    out = run(op, [row(p1, p2, "an apple and a box", "a pear and a box", 0),
                   row(p1, str(tmp_path / "missing.png"), "an apple", "a pear", 1),
                   {"image_path1": p1, "image_path2": p2, "caption1": "an apple", Fields.id: "2",
                    Fields.meta: {}}])
    assert out[0][Fields.status] == Status.kept
    assert out[0][Fields.meta][MetaKeys.bbox] == [[20.0, 20.0, 60.0, 60.0]]
    assert out[1][Fields.status] == Status.error and "missing.png" in out[1][Fields.reason]
    assert out[2][Fields.status] == Status.error and "'caption2'" in out[2][Fields.reason]


def test_config_errors_and_pickling(make_op):
    with pytest.raises(ValueError, match="unknown key 'imgsize' in image_segment_mapper_args"):
        ImgdiffDifferenceAreaGeneratorMapper(image_segment_mapper_args={"imgsize": 640})
    with pytest.raises(ValueError, match="min_score_2/max_score_2"):
        ImgdiffDifferenceAreaGeneratorMapper(
            image_pair_similarity_filter_args={"min_score_2": 0.9, "max_score_2": 0.5})
    with pytest.raises(ValueError, match="conf must be float"):
        ImgdiffDifferenceAreaGeneratorMapper(image_segment_mapper_args={"conf": "high"})
    with pytest.raises(ValueError, match=r"conf and iou must lie in \[0, 1\]"):
        ImgdiffDifferenceAreaGeneratorMapper(image_segment_mapper_args={"conf": 1.5})
    op = ImgdiffDifferenceAreaGeneratorMapper(
        image_pair_similarity_filter_args={"min_score_1": 0.8, "hf_clip": "x/clip", "num_proc": 1},
        image_text_matching_filter_args={"hf_blip": "y/blip", "min_score": 0.3})
    assert (op.params.min_score_1, op.params.max_score_1, op.params.itm_min_score) == (0.8, 0.99, 0.3)
    assert (op.clip_model, op.blip_model, op.sam_model) == ("x/clip", "y/blip", "FastSAM-x.pt")
    loaded = make_op()
    clone = pickle.loads(pickle.dumps(loaded))
    assert not hasattr(clone, "_m_clip") and clone.params == loaded.params


def test_meta_is_json_in_storage(tmp_path, make_op):
    p1, p2 = save_pair(tmp_path, "js", [("apple", A)], [("pear", A)])
    batch = make_op().run_batched(batch_of([row(p1, p2, "an apple", "a pear")]))
    meta = json.loads(batch[Fields.meta][0])
    assert meta["bbox"] == [[20.0, 20.0, 60.0, 60.0]]
    Image.open(p1).close()


def test_synthetic_pairs_yield_their_changed_box(tmp_path, make_op):
    from ops.imgdiff.synthetic import synthetic_pairs
    rows = synthetic_pairs(tmp_path, n=3, seed=1)
    op = make_op(image_pair_similarity_filter_args={"min_score_1": 0.5, "max_score_1": 1.0})
    out = run(op, [row(str(tmp_path / r["image_path1"]), str(tmp_path / r["image_path2"]),
                       r["caption1"], r["caption2"], i) for i, r in enumerate(rows)])
    assert [o[Fields.meta][MetaKeys.bbox] for o in out] == [[[float(v) for v in r["changed_box"]]]
                                                            for r in rows]


def test_pair_without_segments_is_told_apart_in_a_mixed_batch(tmp_path, make_op):
    empty1, empty2 = save_pair(tmp_path, "empty", [], [])
    p1, p2 = save_pair(tmp_path, "mixed", [("apple", A), ("box", B)], [("pear", A), ("box", B)])
    op = make_op(image_pair_similarity_filter_args={"min_score_1": 0.5, "max_score_1": 1.0})
    out = run(op, [row(empty1, empty2, "an apple", "a pear", 0),
                   row(p1, p2, "an apple and a box", "a pear and a box", 1)])
    assert out[0][Fields.meta][MetaKeys.bbox] == []
    assert out[0][Fields.meta][IMGDIFF_META]["reason"] == "segmentation found no regions"
    assert out[1][Fields.meta][MetaKeys.bbox] == [[20.0, 20.0, 60.0, 60.0]]
