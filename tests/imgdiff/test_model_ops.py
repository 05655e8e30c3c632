"""The three single-model ops through the executor-facing run_batched, on generated image pairs."""
import json

import numpy as np
import pytest
from PIL import Image

from ops import OPERATORS
from ops.fields import Fields, MetaKeys, StatsKeys, Status
from ops.image.io import load_image
from ops.models.blip import load_blip_itm
from ops.models.clip import load_clip


def _batch(rows):
    cols = {c: [r.get(c) for r in rows] for c in rows[0]}
    cols[Fields.id] = [str(i) for i in range(len(rows))]
    cols[Fields.stats] = ["{}"] * len(rows)
    cols[Fields.meta] = ["{}"] * len(rows)
    return cols


def _op(name, **kw):
    return OPERATORS.get(name)(**kw)


def _stats(out, i):
    return json.loads(out[Fields.stats][i])


# ------------------------------------------------------------------------ image_pair_similarity
def test_pair_similarity_filter_scores_and_keeps(tiny_models, image_pairs):
    op = _op("image_pair_similarity_filter", hf_clip=tiny_models["clip"], min_score=0.999,
             max_score=1.0)
    out = op.run_batched(_batch(image_pairs))
    clip = load_clip(tiny_models["clip"])
    for i, row in enumerate(image_pairs):
        a, b = load_image(row["image_path1"]), load_image(row["image_path2"])
        expect = float(clip.pair_similarity([a], [b])[0])
        got = _stats(out, i)[StatsKeys.image_pair_similarity]
        assert got == pytest.approx(expect, abs=1e-5)
        keep = 0.999 <= got <= 1.0
        assert out[Fields.status][i] == (Status.kept if keep else Status.filtered)
    assert out[Fields.status][0] == Status.kept          # two identical files
    assert _stats(out, 0)[StatsKeys.image_pair_similarity] == pytest.approx(1.0, abs=1e-5)
    dropped = [i for i, s in enumerate(out[Fields.status]) if s == Status.filtered]
    assert dropped, "the painted pairs should fall below 0.999"
    assert "image_pair_similarity=" in out[Fields.reason][dropped[0]]


def test_pair_similarity_filter_one_forward_pass_per_batch(tiny_models, image_pairs):
    op = _op("image_pair_similarity_filter", hf_clip=tiny_models["open_clip"], min_score=-1.0)
    op.ensure_setup()
    before = op._m_clip.forward_passes
    out = op.run_batched(_batch(image_pairs))
    assert op._m_clip.forward_passes == before + 1       # 12 images, one pass
    assert set(out[Fields.status]) == {Status.kept}


def test_pair_similarity_filter_broken_image_errors_alone(tiny_models, image_pairs, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    rows = [dict(r) for r in image_pairs[:3]]
    rows[1]["image_path2"] = str(broken)
    op = _op("image_pair_similarity_filter", hf_clip=tiny_models["clip"], min_score=-1.0)
    op.ensure_setup()
    before = op._m_clip.forward_passes
    out = op.run_batched(_batch(rows))
    assert out[Fields.status] == [Status.kept, Status.error, Status.kept]
    assert "broken.jpg" in out[Fields.reason][1]
    assert op._m_clip.forward_passes == before + 1       # the good pairs were embedded once


def test_pair_similarity_filter_rejects_bad_config(tiny_models):
    cls = OPERATORS.get("image_pair_similarity_filter")
    with pytest.raises(ValueError, match="min_score"):
        cls(min_score=0.9, max_score=0.5)
    with pytest.raises(ValueError, match="two columns"):
        cls(image_keys=("a",))


# ------------------------------------------------------------------------ image_segment_mapper
def test_segment_mapper_writes_pixel_boxes(tiny_models, image_pairs):
    op = _op("image_segment_mapper", model_path=tiny_models["fastsam"], imgsz=96, conf=0.3,
             image_keys=["image_path1", "image_path2"])
    op.ensure_setup()
    before = op._m_sam.forward_passes
    out = op.run_batched(_batch(image_pairs))
    assert op._m_sam.forward_passes == before + 2        # 12 images, model_batch_size 8
    assert set(out[Fields.status]) == {Status.kept}
    for i, row in enumerate(image_pairs):
        segs = json.loads(out[Fields.meta][i])[MetaKeys.segments]
        assert len(segs) == 2                            # one list per image, column order
        for path, boxes in zip((row["image_path1"], row["image_path2"]), segs):
            w, h = Image.open(path).size
            assert boxes, "the tiny detector proposes boxes at conf 0.3"
            for x1, y1, x2, y2 in boxes:
                assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h


def test_segment_mapper_matches_the_model_and_isolates_errors(tiny_models, image_pairs):
    from ops.models.fastsam import load_fastsam
    rows = [{"images": [r["image_path1"]]} for r in image_pairs[:3]]
    rows[2]["images"] = ["/no/such/file.png"]
    op = _op("image_segment_mapper", model_path=tiny_models["fastsam"], imgsz=96, conf=0.3)
    out = op.run_batched(_batch(rows))
    assert out[Fields.status] == [Status.kept, Status.kept, Status.error]
    assert "/no/such/file.png" in out[Fields.reason][2]
    sam = load_fastsam(tiny_models["fastsam"])
    for i in range(2):
        img = load_image(rows[i]["images"][0])
        expect = sam.segment([img], imgsz=96, conf=0.3)[0]
        got = np.array(json.loads(out[Fields.meta][i])[MetaKeys.segments][0])
        np.testing.assert_allclose(got, expect, atol=0.01)


# ------------------------------------------------------------------------ image_text_matching
def test_text_matching_filter_scores_and_reduces(tiny_models, image_pairs):
    rows = [{"images": [r["image_path1"], r["image_path2"]], "text": r["caption2"]}
            for r in image_pairs[:3]]
    rows.append({"images": [], "text": "nothing to match"})
    blip = load_blip_itm(tiny_models["blip"])
    per_image = [blip.itm_scores([load_image(p) for p in r["images"]],
                                 [r["text"]] * len(r["images"])).tolist() for r in rows[:3]]
    for mode, reduce in (("avg", np.mean), ("max", np.max), ("min", np.min)):
        op = _op("image_text_matching_filter", hf_blip=tiny_models["blip"], min_score=0.0,
                 reduce_mode=mode)
        out = op.run_batched(_batch(rows))
        assert out[Fields.status] == [Status.kept] * 4
        for i, scores in enumerate(per_image):
            got = _stats(out, i)[StatsKeys.image_text_matching_score]
            assert 0 < got < 1
            assert got == pytest.approx(float(reduce(scores)), abs=1e-5)
        assert _stats(out, 3)[StatsKeys.image_text_matching_score] is None


def test_text_matching_filter_thresholds_and_flips(tiny_models, image_pairs):
    rows = [{"images": [r["image_path1"]], "text": "a red car"} for r in image_pairs[:3]]
    op = _op("image_text_matching_filter", hf_blip=tiny_models["blip"], min_score=1.0)
    out = op.run_batched(_batch(rows))
    assert out[Fields.status] == [Status.filtered] * 3   # a probability below 1 everywhere
    assert "image_text_matching_score=" in out[Fields.reason][0]
    flipped = _op("image_text_matching_filter", hf_blip=tiny_models["blip"], min_score=0.0,
                  horizontal_flip=True)
    out = flipped.run_batched(_batch(rows))
    blip = load_blip_itm(tiny_models["blip"])
    img = load_image(rows[0]["images"][0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    expect = float(blip.itm_scores([img], ["a red car"])[0])
    assert _stats(out, 0)[StatsKeys.image_text_matching_score] == pytest.approx(expect, abs=1e-5)


def test_text_matching_filter_needs_text(tiny_models, image_pairs):
    rows = [{"images": [image_pairs[0]["image_path1"]], "text": "a dog"},
            {"images": [image_pairs[1]["image_path1"]], "text": ""}]
    op = _op("image_text_matching_filter", hf_blip=tiny_models["blip"], min_score=0.0)
    out = op.run_batched(_batch(rows))
    assert out[Fields.status] == [Status.kept, Status.error]
    assert "no text" in out[Fields.reason][1]
    with pytest.raises(ValueError, match="reduce_mode"):
        OPERATORS.get("image_text_matching_filter")(reduce_mode="median")


def test_ops_pickle_without_models(tiny_models):
    import pickle
    op = _op("image_pair_similarity_filter", hf_clip=tiny_models["clip"])
    op.ensure_setup()
    clone = pickle.loads(pickle.dumps(op))
    assert not hasattr(clone, "_m_clip")
    clone.ensure_setup()
    assert clone._m_clip is op._m_clip                   # same process: the shared copy


def test_three_ops_in_a_recipe(tiny_models, image_pairs, tmp_path):
    """Typed params validate through the recipe parser; the local executor runs the chain."""
    import yaml

    from tests.conftest import read_jsonl, write_jsonl
    from tests.pipelines.helpers import run_inprocess
    data = write_jsonl(tmp_path / "pairs.jsonl", image_pairs)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"project_name": "model-ops", "process": [
        {"image_pair_similarity_filter": {"hf_clip": tiny_models["clip"], "min_score": -1.0,
                                          "max_score": 0.999,
                                          "image_keys": ["image_path2", "image_path1"]}},
        {"image_segment_mapper": {"model_path": tiny_models["fastsam"], "imgsz": 64,
                                  "conf": 0.3, "image_keys": ["image_path1", "image_path2"]}},
        {"image_text_matching_filter": {"hf_blip": tiny_models["blip"], "min_score": 0.0,
                                        "image_key": "image_path2", "text_key": "caption2",
                                        "reduce_mode": "max"}},
    ]}))
    summary = run_inprocess(["--config", str(recipe), "--dataset_path", str(data),
                             "--work_dir", str(tmp_path), "--export_path",
                             str(tmp_path / "out.jsonl"),
                             "--image_columns", json.dumps(["image_path1", "image_path2"])])
    kept = read_jsonl(tmp_path / "out.jsonl")
    assert summary["rows_in"] == 6 and summary["errored"] == 0
    assert len(kept) == 5                          # the identical pair scores 1.0 > 0.999
    for r in kept:
        assert r[Fields.stats][StatsKeys.image_pair_similarity] < 0.999
        assert 0 < r[Fields.stats][StatsKeys.image_text_matching_score] < 1
        assert len(r[Fields.meta][MetaKeys.segments]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"process": [{"image_segment_mapper": {"imgsz": "big"}}]}))
    with pytest.raises(Exception, match="imgsz"):
        run_inprocess(["--config", str(bad), "--dataset_path", str(data),
                       "--work_dir", str(tmp_path / "w2")])
