"""Data-Juicer recipes run unchanged: every key of its config schema is accepted; the ones that
map onto ours act the same way, the others are named in one warning."""
import json
import logging
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ops.fields import Fields
from pipelines.compat import RECIPE_IGNORED
from pipelines.config import RecipeError, build_ops, parse_recipe
from tests.conftest import REPO, read_jsonl
from tests.pipelines.helpers import run_inprocess

DJ = REPO / "tests" / "recipes" / "dj"
# every global key of Data-Juicer's config schema (data_juicer/config/config.py)
DJ_RECIPE_KEYS = """auto auto_num hpo_config data_probe_algo data_probe_ratio project_name
executor_type dataset_path dataset generated_dataset_config validators work_dir export_path
export_type export_shard_size export_in_parallel export_extra_args keep_stats_in_res_ds
keep_hashes_in_res_ds np text_keys image_key image_bytes_key image_special_token audio_key
audio_special_token video_key video_special_token eoc_special_token suffixes turbo
skip_op_error use_cache ds_cache_dir cache_compress open_monitor use_checkpoint temp_dir
open_tracer op_list_to_trace trace_num open_insight_mining op_list_to_mine op_fusion
fusion_strategy adaptive_batch_size process percentiles export_original_dataset
save_stats_in_one_file ray_address custom_operator_paths debug""".split()
# every common op parameter of its OP and Filter bases (data_juicer/ops/base_op.py)
DJ_OP_KEYS = """text_key image_key audio_key video_key image_bytes_key system_key instruction_key
prompt_key query_key response_key history_key index_key batch_size work_dir skip_op_error
accelerator num_proc cpu_required gpu_required mem_required turbo image_special_token
audio_special_token video_special_token eoc_special_token stats_export_path
min_closed_interval max_closed_interval reversed_range""".split()
SIZES = [(96, 64), (40, 40), (300, 60), (128, 128), (64, 200), (80, 90)]  # small_images, i % 6


def _args(recipe, data, out, export="result.jsonl", extra=()):
    return ["--config", str(recipe), "--dataset_path", str(data), "--work_dir", str(out),
            "--export_path", str(out / export), *extra]


def _size_of(row):
    return SIZES[row["n"] % 6]


def test_all_keys_recipe_covers_the_schema():
    import yaml
    recipe = yaml.safe_load((DJ / "all-keys.yaml").read_text())
    assert set(DJ_RECIPE_KEYS) <= set(recipe)
    assert set(DJ_OP_KEYS) <= set(recipe["process"][0]["image_shape_filter"])


class _Catch(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_all_keys_recipe_runs_unchanged(small_images, tmp_path):
    argv = _args(DJ / "all-keys.yaml", small_images / "data.jsonl", tmp_path)
    recipe = parse_recipe(argv)
    assert recipe.executor_type == "local"                        # "default"
    shape, ratio, size = build_ops(recipe)
    assert shape.text_key == "text"                                # text_keys[0]
    assert (shape.num_cpus, shape.num_gpus, shape.memory) == (1, 0, 512 * 1024 ** 2)
    assert (ratio.num_cpus, ratio.memory) == (0.5, 1024 ** 3)      # mem_required in GB
    assert shape.num_proc is None                                  # -1: automatic
    assert shape.min_closed_interval is False and shape.skip_op_error is True
    log, catch = logging.getLogger("imgjuicer"), _Catch()   # whatever the propagation
    log.addHandler(catch)
    try:
        summary = run_inprocess(argv)
    finally:
        log.removeHandler(catch)
    warnings = [m for m in catch.messages if "Data-Juicer settings" in m]
    assert len(warnings) == 1
    named = {k for k, (_, _) in RECIPE_IGNORED.items()
             if k in warnings[0].split("process[")[0]}
    expected = {"export_in_parallel", "export_extra_args", "image_bytes_key",
                "image_special_token", "audio_key", "audio_special_token", "video_key",
                "video_special_token", "eoc_special_token", "turbo", "use_cache",
                "open_monitor", "op_list_to_trace", "open_insight_mining", "op_list_to_mine",
                "fusion_strategy", "adaptive_batch_size", "data_probe_algo",
                "data_probe_ratio"}
    assert named == expected                      # null ones (temp_dir ...) are not settings
    op_part = warnings[0].split("process[0] image_shape_filter: ")[1]
    for k in ("audio_key", "image_bytes_key", "system_key", "history_key", "turbo",
              "eoc_special_token"):
        assert k in op_part
    assert "index_key" not in op_part and "stats_export_path" not in op_part     # null
    # behaviour: width 64 is excluded (open lower bound), 300x60 fails the ratio,
    # the missing file is an error and the run went on (skip_op_error)
    assert summary["errored"] == 1 and summary["kept"] == 12
    shards = sorted(tmp_path.glob("result-*-of-*.jsonl"))
    assert len(shards) > 1 and not (tmp_path / "result.jsonl").exists()
    assert all(p.stat().st_size <= 1000 for p in shards)
    rows = [r for p in shards for r in read_jsonl(p)]
    assert sorted(_size_of(r) for r in rows) == sorted([(96, 64), (128, 128), (80, 90)] * 4)
    assert all(Fields.stats not in r for r in rows)               # keep_stats_in_res_ds false


def test_image_demo_recipe_inverts_and_opens_ranges(small_images, tmp_path):
    summary = run_inprocess(_args(DJ / "image-demo.yaml", small_images / "data.jsonl", tmp_path))
    kept = read_jsonl(tmp_path / "result.jsonl")
    # shape [64, 128): 96x64, 64x200, 80x90; reversed ratio keeps <= 0.5 or >= 2: 64x200
    assert {_size_of(r) for r in kept} == {(64, 200)} and len(kept) == 4
    filtered = read_jsonl(tmp_path / "filtered.jsonl")
    by_op = {}
    for r in filtered:
        by_op.setdefault(r["op"], set()).add(_size_of(r["sample"]))
    assert by_op["image_shape_filter"] == {(40, 40), (300, 60), (128, 128)}   # 128: open bound
    assert by_op["image_aspect_ratio_filter"] == {(96, 64), (80, 90)}          # inside range
    assert "not in (-inf, 0.5] U [2, inf)" in [r for r in filtered
                                  if r["op"] == "image_aspect_ratio_filter"][0]["reason"]
    assert summary["errored"] == 1


@pytest.mark.parametrize("lo_closed,hi_closed,reverse,kept", [
    (True, True, False, [1, 2, 3]), (False, True, False, [2, 3]), (True, False, False, [1, 2]),
    (False, False, False, [2]), (True, True, True, [0, 1, 3, 4]), (False, True, True, [0, 3, 4]),
    (True, False, True, [0, 1, 4]), (False, False, True, [0, 4])])
def test_interval_settings_on_a_range_filter(lo_closed, hi_closed, reverse, kept):
    """Values 0..4 against [1, 3]: closed bounds keep the bound itself, reversal keeps the
    outside (Data-Juicer's get_keep_boolean semantics)."""
    from ops.base import batch_of, rows_of
    from ops.registry import OPERATORS

    op = OPERATORS.get("image_aspect_ratio_filter")(
        min_ratio=1, max_ratio=3, min_closed_interval=lo_closed, max_closed_interval=hi_closed,
        reversed_range=reverse)
    rows = [{Fields.id: str(v), "images": [], Fields.stats: {"aspect_ratios": [float(v)]}}
            for v in range(5)]
    out = rows_of(op.run_batched(batch_of(rows)))
    assert [int(r[Fields.id]) for r in out if r[Fields.status] == "kept"] == kept


def test_skip_op_error_false_stops_the_run(small_images, tmp_path):
    from tests.pipelines.helpers import cli
    recipe = tmp_path / "r.yaml"
    recipe.write_text("process:\n  - image_size_filter:\n      skip_op_error: false\n")
    r = cli(_args(recipe, small_images / "data.jsonl", tmp_path / "out"))
    assert r.returncode == 1
    assert "does_not_exist.jpg" in r.stderr and "skip_op_error" in r.stderr


def test_export_type_dataset_suffixes_and_contradictions(small_images, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("export_type: parquet\nsuffixes: [png]\nkeep_stats_in_res_ds: true\n"
                      "process:\n  - image_size_filter:\n")
    dataset = json.dumps({"configs": [{"type": "local", "path": str(small_images / "img"),
                                       "weight": 1.0}]})
    summary = run_inprocess(["--config", str(recipe), "--dataset", dataset,
                             "--work_dir", str(tmp_path / "w"),
                             "--export_path", str(tmp_path / "w" / "out")])
    table = pq.read_table(tmp_path / "w" / "out.parquet")
    paths = [p[0] for p in table.column("images").to_pylist()]
    assert len(paths) == 8 and all(p.endswith(".png") for p in paths)   # i % 3 == 0 are PNG
    assert Fields.stats in table.column_names and summary["kept"] == 8
    with pytest.raises(RecipeError, match="export_type: 'parquet' contradicts"):
        parse_recipe(["--config", str(recipe), "--dataset_path", str(small_images / "img"),
                      "--export_path", str(tmp_path / "x.jsonl")])
    with pytest.raises(RecipeError, match="dataset: only one local source"):
        parse_recipe(["--config", str(recipe), "--dataset",
                      json.dumps({"configs": [{"path": "a"}, {"path": "b"}]})])
    with pytest.raises(RecipeError, match="cpu_required and num_cpus disagree"):
        parse_recipe(["--config", str(recipe), "--dataset_path", str(small_images / "img"),
                      "--process", json.dumps([{"image_size_filter": {"cpu_required": 2,
                                                                      "num_cpus": 1}}])])


def test_unknown_keys_are_still_refused(small_images):
    with pytest.raises(RecipeError, match="unknown parameter 'min_widht'"):
        parse_recipe(["--config", str(DJ / "image-demo.yaml"), "--dataset_path",
                      str(small_images / "data.jsonl"), "--process",
                      json.dumps([{"image_shape_filter": {"min_widht": 3}}])])


def test_sub_op_common_parameters_of_a_fused_op_are_named(small_images, tmp_path):
    """Data-Juicer's ImgDiff recipe passes num_proc inside the sub-op arguments."""
    recipe = tmp_path / "imgdiff.yaml"
    recipe.write_text(
        "process:\n  - imgdiff_difference_area_generator_mapper:\n"
        "      image_pair_similarity_filter_args: {min_score_1: 0.1, max_score_1: 1.0,\n"
        "                                          min_score_2: 0.1, max_score_2: 1.0}\n"
        "      image_text_matching_filter_args: {min_score: 0.4, num_proc: 1,\n"
        "                                        hf_blip: Salesforce/blip-itm-base-coco}\n")
    r = parse_recipe(["--config", str(recipe), "--dataset_path", str(small_images / "data.jsonl")])
    assert r.compat.ignored == ["process[0] imgdiff_difference_area_generator_mapper: "
                                "image_text_matching_filter_args.num_proc"]
    params = r.process[0][1]
    assert params["image_text_matching_filter_args"] == {
        "min_score": 0.4, "hf_blip": "Salesforce/blip-itm-base-coco"}


def test_required_fields_validators(small_images, tmp_path):
    from pipelines.cli import process_main
    data = str(small_images / "data.jsonl")
    recipe = tmp_path / "v.yaml"
    ok = ("validators:\n  - type: required_fields\n    required_fields: [images, text]\n"
          "    field_types: {text: str, n: int}\n  - type: swift_messages\n"
          "process:\n  - image_size_filter:\n")
    recipe.write_text(ok)
    summary = run_inprocess(["--config", str(recipe), "--dataset_path", data,
                             "--work_dir", str(tmp_path / "ok")])
    assert summary["kept"] == 24
    assert parse_recipe(["--config", str(recipe), "--dataset_path", data]).compat.ignored == \
        ["validators[1] (type 'swift_messages')"]
    for bad, message in (("[images, caption]", "lacks required fields ['caption']"),
                         ("[n]\n    field_types: {n: str}", "field 'n' should hold str")):
        recipe.write_text(f"validators:\n  - type: required_fields\n    required_fields: {bad}\n"
                          "process:\n  - image_size_filter:\n")
        with pytest.raises(RecipeError, match=re.escape(message)):
            run_inprocess(["--config", str(recipe), "--dataset_path", data,
                           "--work_dir", str(tmp_path / "bad")])
    assert process_main(["--config", str(recipe), "--dataset_path", data,
                         "--work_dir", str(tmp_path / "cli")]) == 2


@pytest.mark.parametrize("name,params,stat,values,kept", [
    # face counts 0..3 against [1, 2]; reversed keeps the bounds (closed) and the outside
    ("image_face_count_filter", {"min_face_count": 1, "max_face_count": 2,
                                 "reversed_range": True}, "face_counts", [0, 1, 2, 3],
     [0, 1, 2, 3]),
    ("image_face_count_filter", {"min_face_count": 1, "max_face_count": 2,
                                 "reversed_range": True, "min_closed_interval": False,
                                 "max_closed_interval": False}, "face_counts", [0, 1, 2, 3],
     [0, 3]),
    ("image_face_count_filter", {"min_face_count": 1, "max_face_count": 2,
                                 "max_closed_interval": False}, "face_counts", [0, 1, 2, 3], [1]),
    # generation-loss gap: max_gap 0.25, open, keeps gaps below it only (closed: also 0.25)
    ("generation_loss_gap_filter", {"max_gap": 0.25, "max_closed_interval": False},
     "generation_loss", [[0.25, 0.5], [0.25, 0.375], [0.25, 0.75]], [1]),
    ("generation_loss_gap_filter", {"max_gap": 0.25},
     "generation_loss", [[0.25, 0.5], [0.25, 0.375], [0.25, 0.75]], [0, 1]),
])
def test_interval_settings_on_other_range_filters(name, params, stat, values, kept):
    from ops.base import batch_of, rows_of
    from ops.registry import OPERATORS

    op = OPERATORS.get(name)(**params)
    rows = [{Fields.id: str(i), "images": [], Fields.stats: {stat: v if isinstance(v, list)
                                                             else [v]}}
            for i, v in enumerate(values)]
    out = rows_of(op.run_batched(batch_of(rows)))
    assert [int(r[Fields.id]) for r in out if r[Fields.status] == "kept"] == kept
