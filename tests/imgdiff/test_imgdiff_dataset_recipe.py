"""recipes/imgdiff-dataset.yaml (the chained recipe) with tiny models: local and Ray, on a
GPU-less Ray (CPU fallback) and on logical GPUs, give the same output."""
import hashlib
import json
import logging
from pathlib import Path

import pytest
import yaml

from ops.fields import Fields, MetaKeys

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "imgdiff-dataset.yaml"
PAIRS = ("coffee_cat", "motorcycle_stereo", "flower_coin", "thumbnail")


def _dataset(tmp_path: Path) -> Path:
    src = REPO / "recipes" / "data"
    rows = []
    for line in (src / "imgdiff.jsonl").read_text().splitlines():
        r = json.loads(line)
        if Path(r["image_path1"]).stem.rsplit("_", 1)[0] in PAIRS:
            for k in ("image_path1", "image_path2"):
                r[k] = str(src / r[k])
            r["images"] = [r["image_path1"], r["image_path2"]]
            rows.append(r)
    assert len(rows) == len(PAIRS)
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _recipe(tmp_path: Path, tiny: dict, executor: str) -> Path:
    cfg = yaml.safe_load(RECIPE.read_text())
    assert cfg["executor_type"] == "ray"
    ops = {next(iter(o)): next(iter(o.values())) for o in cfg["process"]}
    diff = ops["imgdiff_difference_area_generator_mapper"]
    assert diff["accelerator"] == "cuda" and diff["num_gpus"] == 1
    diff["image_pair_similarity_filter_args"].update(
        hf_clip=tiny["clip"], min_score_1=-1.0, max_score_1=1.0, min_score_2=-1.0,
        max_score_2=1.0)
    diff["image_segment_mapper_args"].update(model_path=tiny["fastsam"], imgsz=64)
    diff["image_text_matching_filter_args"].update(hf_blip=tiny["blip"], min_score=0.0)
    ops["image_target_quality_transcode_mapper"]["formats"] = ["jpeg", "webp"]
    work = tmp_path / executor
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg.update(dataset_path=str(_dataset(tmp_path)), work_dir=str(work),
               export_path=str(work / "result.jsonl"), executor_type=executor)
    path = tmp_path / f"{executor}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _normalised(work: Path) -> dict:
    """Exported rows by id, work-dir paths replaced by the written files' hashes."""
    out = {}
    for line in (work / "result.jsonl").read_text().splitlines():
        text = line.replace(str(work), "<work>")
        row = json.loads(text)
        for rec in row[Fields.meta]["transcode"]:
            f = Path(rec["output"].replace("<work>", str(work)))
            rec["sha1"] = hashlib.sha1(f.read_bytes()).hexdigest()
        out[row["image_path1"]] = row
    return out


def _run(recipe: Path, ray_gpus=None) -> None:
    from pipelines.cli import process_main
    import ray
    if ray_gpus is not None:
        if ray.is_initialized():
            ray.shutdown()
        ray.init(address="local", num_cpus=2, num_gpus=ray_gpus, include_dashboard=False,
                 logging_level=logging.WARNING)
    try:
        assert process_main(["--config", str(recipe)]) == 0
    finally:
        if ray_gpus is not None:
            ray.shutdown()


def test_chained_recipe_same_output_local_and_ray(tiny_models, tmp_path):
    _run(_recipe(tmp_path, tiny_models, "local"))
    local = _normalised(tmp_path / "local")
    _run(_recipe(tmp_path / "cpu", tiny_models, "ray"), ray_gpus=0)
    log = (tmp_path / "cpu" / "ray" / "run.log").read_text()
    assert "wants a GPU but the Ray cluster has none" in log           # the CPU fallback
    on_ray = _normalised(tmp_path / "cpu" / "ray")
    _run(_recipe(tmp_path / "gpu", tiny_models, "ray"), ray_gpus=1)    # logical GPU actors
    on_gpu = _normalised(tmp_path / "gpu" / "ray")
    assert on_ray == local and on_gpu == local

    kept = sorted(Path(p).stem for p in local)
    assert [k.rsplit("-", 1)[0] for k in kept] == ["coffee_cat_1", "motorcycle_stereo_1"]
    filtered = [json.loads(ln) for ln in (tmp_path / "local" / "filtered.jsonl").read_text()
                .splitlines()]
    reasons = " ".join(json.dumps(f) for f in filtered)
    assert "image_shape_filter" in reasons and "generation_loss_gap_filter" in reasons
    for row in local.values():
        meta = row[Fields.meta]
        assert isinstance(meta[MetaKeys.bbox], list)          # ImgDiff ran on the pair
        recs = {r["source"]: r for r in meta["transcode"]}
        assert len(recs) == 2                                  # both images, once each
        for r in recs.values():
            assert r["bytes"] <= r["source_bytes"]
            if r["format"] != "source":
                assert r["value"] >= 80 and r["format"] in ("jpeg", "webp")
        assert row["images"] == [row["image_path1"], row["image_path2"]]
        assert row[Fields.stats]["transcode_bytes_saved"] == \
            sum(r["saved_bytes"] for r in recs.values())
