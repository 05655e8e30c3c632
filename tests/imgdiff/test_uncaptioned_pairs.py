"""recipes/imgdiff-uncaptioned.yaml: the captioner fills the caption columns ImgDiff reads, so
pairs without captions go through ImgDiff instead of failing (tiny models for every step)."""
import json

import pytest
import yaml

from ops.fields import Fields
from ops.imgdiff.synthetic import synthetic_pairs
from tests.conftest import REPO, read_jsonl
from tests.pipelines.helpers import run_inprocess

pytestmark = pytest.mark.slow

OPEN = {"min_score_1": -1.0, "max_score_1": 1.0, "min_score_2": -1.0, "max_score_2": 1.0}


def _shipped_recipe_with_tiny_models(tiny, captioner, tmp_path, with_captioner=True):
    recipe = yaml.safe_load((REPO / "recipes" / "imgdiff-uncaptioned.yaml").read_text())
    cap, diff = recipe["process"]
    cap["image_captioning_mapper"].update(hf_img2seq=captioner, max_new_tokens=12)
    args = diff["imgdiff_difference_area_generator_mapper"]
    args["image_pair_similarity_filter_args"].update(OPEN, hf_clip=tiny["clip"])
    args["image_segment_mapper_args"].update(model_path=tiny["fastsam"], imgsz=64)
    args["image_text_matching_filter_args"].update(hf_blip=tiny["blip"], min_score=0.0)
    recipe["process"] = [cap, diff] if with_captioner else [diff]
    path = tmp_path / ("with.yaml" if with_captioner else "without.yaml")
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_captioner_makes_uncaptioned_pairs_usable(tiny_models, tmp_path):
    from tests.ops.tiny_models import build_blip_captioner
    captioner = build_blip_captioner(tmp_path / "models")
    rows = synthetic_pairs(tmp_path / "pairs", n=3, size=(96, 72), seed=9)
    for i, r in enumerate(rows):
        r.pop("changed_box", None)
        r.pop("caption2")
        if i:
            r.pop("caption1")         # row 0 keeps its first caption
    kept_caption = rows[0]["caption1"]
    data = tmp_path / "pairs" / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for with_captioner in (False, True):
        work = tmp_path / f"work_{with_captioner}"
        recipe = _shipped_recipe_with_tiny_models(tiny_models, captioner, tmp_path, with_captioner)
        summary = run_inprocess(["--config", str(recipe), "--dataset_path", str(data),
                                 "--work_dir", str(work),
                                 "--export_path", str(work / "result.jsonl")])
        if not with_captioner:
            errors = read_jsonl(work / "errors.jsonl")
            assert summary["errored"] == 3 and len(errors) == 3
            assert all("caption" in e["error"] for e in errors)
            continue
        out = read_jsonl(work / "result.jsonl")
        assert summary["errored"] == 0, read_jsonl(work / "errors.jsonl")
        assert len(out) == 3
        by_pair = {r["image_path1"]: r for r in out}
        for r in out:
            assert isinstance(r["caption1"], str) and r["caption1"].strip()
            assert isinstance(r["caption2"], str) and r["caption2"].strip()
            assert "imgdiff" in r[Fields.meta] and isinstance(r[Fields.meta]["bbox"], list)
        first = [r for r in out if r["caption1"] == kept_caption]
        assert len(first) == 1 and by_pair[first[0]["image_path1"]]["caption2"] != kept_caption
