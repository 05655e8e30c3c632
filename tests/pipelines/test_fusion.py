"""Fused passes on the local executor: same output as op by op, each file decoded / its header
parsed once per pass, exact per-op counts and per-op seconds measured inside the pass."""
import json

from ops.fields import Fields
from ops.image import io
from tests.conftest import PLUGINS, read_jsonl
from tests.pipelines.helpers import run_inprocess

PIXEL_OPS = str(PLUGINS / "pixel_filters_op.py")
PIXEL_RECIPE = [
    {"pixel_mean_filter": {"low": 1.0}},
    {"pixel_area_filter": {"low": 2000}},          # drops the 40x40 images
    {"pixel_std_filter": {"low": 1.0}},
]


def _run(tmp_path, name, process, extra=()):
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(json.dumps({"project_name": name, "np": 1, "process": process}))
    return recipe, ["--config", str(recipe), "--work_dir", str(tmp_path / name),
                    "--export_path", str(tmp_path / name / "result.jsonl"),
                    "--custom_operator_paths", json.dumps([PIXEL_OPS]), *extra]


def _outputs(tmp_path, name):
    work = tmp_path / name
    return [sorted(read_jsonl(work / f), key=lambda r: str(r.get(Fields.id, r.get("id"))))
            for f in ("result.jsonl", "filtered.jsonl", "errors.jsonl")]


def _counts(summary):
    keys = ("index", "op", "rows_in", "kept", "filtered", "errored", "rows_out")
    return [{k: c[k] for k in keys} for c in summary["ops"]]


def _decoded(argv):
    before = io.counters["decodes"]
    summary = run_inprocess(argv)
    return summary, io.counters["decodes"] - before


def test_three_pixel_filters_decode_each_image_once(small_images, tmp_path):
    data = str(small_images / "data.jsonl")
    _, fused_argv = _run(tmp_path, "fused", PIXEL_RECIPE, ["--dataset_path", data])
    _, apart_argv = _run(tmp_path, "apart", PIXEL_RECIPE,
                         ["--dataset_path", data, "--op_fusion", "false"])
    fused, n_fused = _decoded(fused_argv)
    apart, n_apart = _decoded(apart_argv)
    # 24 readable images (the 25th row's file is missing): each decoded once when fused;
    # op by op, each op decodes what reaches it (the area filter drops the 40x40 images)
    assert n_fused == 24
    kept_by_area = fused["ops"][1]["kept"]
    assert n_apart == 24 + 24 + kept_by_area and kept_by_area < 24
    assert _outputs(tmp_path, "fused") == _outputs(tmp_path, "apart")
    assert _counts(fused) == _counts(apart)
    for c in fused["ops"]:
        assert c["rows_in"] == c["kept"] + c["filtered"] + c["errored"]
    assert [c["rows_in"] for c in fused["ops"]] == [25, 24, kept_by_area]
    assert fused["ops"][0]["errored"] == 1          # the missing file, named by the first op
    errors = read_jsonl(tmp_path / "fused" / "errors.jsonl")
    assert errors[0]["op"] == "pixel_mean_filter" and "file not found" in errors[0]["error"]


def test_per_op_seconds_are_measured_inside_the_pass(small_images, tmp_path):
    process = [{"pixel_mean_filter": {}}, {"pixel_area_filter": {"delay": 0.02, "low": 2000}},
               {"pixel_std_filter": {}}]
    _, argv = _run(tmp_path, "timed", process,
                   ["--dataset_path", str(small_images / "data.jsonl")])
    summary = run_inprocess(argv)
    slow, others = summary["ops"][1], [summary["ops"][0], summary["ops"][2]]
    assert slow["busy_seconds"] >= 24 * 0.02            # 24 rows reach it, 20 ms each
    assert all(o["busy_seconds"] < slow["busy_seconds"] / 2 for o in others)
    assert slow["seconds"] > max(o["seconds"] for o in others)
    trace = read_jsonl(tmp_path / "timed" / "trace" / "001_pixel_area_filter.jsonl")
    dropped = [t for t in trace if t["kind"] == "dropped"]
    changed = [t for t in trace if t["kind"] == "changed"]
    assert dropped and all("pixel_area" in t["reason"] for t in dropped)
    assert changed and all(t["changes"][Fields.stats]["pixel_area"]["before"] is None
                           for t in changed)     # what the op added, seen inside the pass


def test_header_facts_are_parsed_once_per_file(small_images, tmp_path):
    process = [{"image_metadata_mapper": {}},
               {"image_shape_filter": {"min_width": 1}},
               {"image_aspect_ratio_filter": {"min_ratio": 0.1, "max_ratio": 10}}]
    _, argv = _run(tmp_path, "headers", process,
                   ["--dataset_path", str(small_images / "data.jsonl")])
    io._headers.clear()
    before = io.counters["header_reads"]
    summary = run_inprocess(argv)
    assert io.counters["header_reads"] - before == 24
    assert summary["kept"] == 24 and summary["errored"] == 1


def test_header_cache_sees_a_changed_file(tmp_path):
    from PIL import Image
    p = tmp_path / "a.png"
    Image.new("RGB", (30, 20)).save(p)
    assert io.read_header(str(p)).width == 30
    assert io.read_header(str(p)).width == 30         # from the cache
    Image.new("RGB", (50, 20)).save(p)               # same path, new size and mtime
    assert io.read_header(str(p)).width == 50


def test_fan_out_inside_a_pass_keeps_counts_exact(small_images, tmp_path):
    ray_ops = PLUGINS.parent / "pipelines" / "ray_ops"
    process = [{"image_shape_filter": {"min_width": 50}},
               {"fanout_test_mapper": {}},
               {"image_aspect_ratio_filter": {"min_ratio": 0.3, "max_ratio": 3}}]
    recipe = tmp_path / "fan.yaml"
    recipe.write_text(json.dumps({"project_name": "fan", "np": 1, "process": process}))
    runs = {}
    for fusion in ("true", "false"):
        runs[fusion] = run_inprocess([
            "--config", str(recipe), "--work_dir", str(tmp_path / fusion),
            "--dataset_path", str(small_images / "data.jsonl"),
            "--custom_operator_paths", json.dumps([str(ray_ops)]), "--op_fusion", fusion])
    ops = runs["true"]["ops"]
    assert _counts(runs["true"]) == _counts(runs["false"])
    assert _outputs(tmp_path, "true") == _outputs(tmp_path, "false")
    for c in ops:
        assert c["rows_in"] == c["kept"] + c["filtered"] + c["errored"]
    assert ops[1]["rows_out"] > ops[1]["kept"]           # the mapper fanned out
    assert ops[2]["rows_in"] == ops[1]["rows_out"]
    assert runs["true"]["kept"] == ops[2]["kept"]


def test_shared_decodes_give_copy_on_write_views(tmp_path):
    import numpy as np
    from PIL import Image, ImageDraw
    p = tmp_path / "a.png"
    Image.new("RGB", (16, 8), (10, 20, 30)).save(p)
    before = io.counters["decodes"]
    with io.shared_decodes():
        a = io.load_image(str(p))
        ImageDraw.Draw(a).rectangle((0, 0, 15, 7), fill=(255, 0, 0))   # an op draws on it
        a.putpixel((0, 0), (0, 255, 0))
        b = io.load_image(str(p))
        assert io.counters["decodes"] - before == 1                       # decoded once
    assert np.asarray(b)[0, 0].tolist() == [10, 20, 30]                  # b never saw a's edits
    assert np.asarray(a)[0, 0].tolist() == [0, 255, 0] and \
        np.asarray(a)[4, 4].tolist() == [255, 0, 0]
    c = io.load_image(str(p))                                            # outside: a plain decode
    assert io.counters["decodes"] - before == 2 and not c.readonly
