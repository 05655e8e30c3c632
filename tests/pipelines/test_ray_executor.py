"""Ray executor: same output as the local executor, custom ops on workers, GPU ops without
GPUs, worker crashes, resume.  One local Ray (2 CPUs, no GPU) serves the whole module."""
import json
import logging
import os
from collections import Counter
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from pipelines.config import RecipeError  # noqa: E402
from tests.pipelines.helpers import cli, run_inprocess  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
RECIPES = TESTS / "recipes"
RAY_OPS = Path(__file__).resolve().parent / "ray_ops"
MY_USER_OP = str(TESTS / "plugins" / "my_user_op.py")

# Every recipe in tests/recipes (plus the fan-out / dedup / aggregator one here) runs on both
# executors.  Overrides are recipe keys; dataset_path defaults to the shared `small_images`
# jsonl.  A value may be a callable taking pytest's `request` (e.g. to read a fixture such as
# a tiny model's path).  A recipe that needs more than the defaults adds its entry here.
OVERRIDES = {
    "basic.yaml": {"custom_operator_paths": [MY_USER_OP]},
    "dedup_fanout.yaml": {"custom_operator_paths": [str(RAY_OPS)]},
}
EQUIVALENCE = sorted(RECIPES.glob("*.yaml")) + [RAY_OPS / "dedup_fanout.yaml"]


def read_jsonl(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _argv(recipe_path, overrides: dict, work: Path, executor: str) -> list:
    argv = ["--config", str(recipe_path), "--work_dir", str(work),
            "--export_path", str(work / "result.jsonl"), "--executor_type", executor]
    for key, value in overrides.items():
        argv += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return argv


def run_recipe(recipe_path, overrides: dict, work: Path, executor: str) -> dict:
    """Run a recipe in-process; returns summary, exported rows and the dropped-row reports."""
    summary = run_inprocess(_argv(recipe_path, overrides, work, executor))
    return {"summary": summary, "rows": read_jsonl(work / "result.jsonl"),
            "errors": read_jsonl(work / "errors.jsonl"),
            "filtered": read_jsonl(work / "filtered.jsonl"), "work": work}


def run_both(recipe_path, overrides: dict, tmp_path: Path) -> tuple[dict, dict]:
    local = run_recipe(recipe_path, overrides, tmp_path / "local", "local")
    on_ray = run_recipe(recipe_path, overrides, tmp_path / "ray", "ray")
    return local, on_ray


def by_id(records):
    ids = [r["__dj__id__"] if "__dj__id__" in r else r["id"] for r in records]
    assert len(ids) == len(set(ids)), "duplicate ids"
    return dict(zip(ids, records))


def op_counts(summary):
    keys = ("index", "op", "kind", "rows_in", "kept", "filtered", "errored", "rows_out")
    return [{k: c[k] for k in keys} for c in summary["ops"]]


@pytest.fixture(scope="module")
def ray_cpu():
    """A local Ray without GPUs; the executor reuses it instead of starting its own."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture
def data(small_images):
    return str(small_images / "data.jsonl")


@pytest.mark.parametrize("recipe", EQUIVALENCE, ids=[r.stem for r in EQUIVALENCE])
def test_same_output_on_both_executors(recipe, ray_cpu, data, tmp_path, request):
    overrides = {"dataset_path": data, **OVERRIDES.get(recipe.name, {})}
    overrides = {k: v(request) if callable(v) else v for k, v in overrides.items()}
    local, on_ray = run_both(recipe, overrides, tmp_path)
    assert on_ray["summary"]["executor"] == "ray" and local["summary"]["executor"] == "local"
    assert by_id(on_ray["rows"]) == by_id(local["rows"])
    assert op_counts(on_ray["summary"]) == op_counts(local["summary"])
    for key in ("rows_in", "kept", "filtered", "errored"):
        assert on_ray["summary"][key] == local["summary"][key]
    for what in ("errors", "filtered"):
        assert by_id(on_ray[what]) == by_id(local[what])


def test_basic_recipe_on_ray_reports_every_sample(ray_cpu, data, tmp_path):
    res = run_recipe(RECIPES / "basic.yaml", {"dataset_path": data,
                                              "custom_operator_paths": [MY_USER_OP]},
                     tmp_path, "ray")
    s = res["summary"]
    assert s["rows_in"] == 25 == s["kept"] + s["filtered"] + s["errored"]
    (err,) = res["errors"]
    assert err["id"] == "24" and err["op"] == "image_metadata_mapper"
    assert "does_not_exist.jpg" in err["error"]
    # the user op (a file loaded from custom_operator_paths) ran on the Ray workers
    assert res["rows"] and all(r["__dj__meta__"]["scaled"] == 3 * r["n"] for r in res["rows"])
    assert len(res["filtered"]) == s["filtered"] == 8
    assert all(f["reason"].startswith(f["op"] + ":") for f in res["filtered"])
    traces = sorted(os.listdir(tmp_path / "trace"))
    assert traces[0] == "000_image_metadata_mapper.jsonl" and len(traces) == 5


def test_image_folder_to_parquet_same_on_both(ray_cpu, small_images, tmp_path):
    import pyarrow.parquet as pq

    recipe = tmp_path / "folder.yaml"
    recipe.write_text(json.dumps({"process": [{"image_metadata_mapper": {}},
                                              {"image_shape_filter": {"min_width": 64}}]}))
    tables = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor / "out.parquet"
        run_inprocess(["--config", str(recipe), "--dataset_path", str(small_images / "img"),
                       "--work_dir", str(tmp_path / executor), "--export_path", str(out),
                       "--executor_type", executor])
        tables[executor] = sorted(pq.read_table(out).to_pylist(),
                                  key=lambda r: r["__dj__id__"])
    assert tables["ray"] == tables["local"]
    assert len(tables["ray"]) == 20  # 24 images, 4 narrower than 64 px


def test_without_checkpoint_leaves_no_blocks(ray_cpu, data, tmp_path):
    overrides = {"dataset_path": data, "custom_operator_paths": [MY_USER_OP]}
    with_ckpt = run_recipe(RECIPES / "basic.yaml", overrides, tmp_path / "a", "ray")
    without = run_recipe(RECIPES / "basic.yaml", {**overrides, "use_checkpoint": False},
                         tmp_path / "b", "ray")
    assert by_id(without["rows"]) == by_id(with_ckpt["rows"])
    assert (tmp_path / "a" / "checkpoint_ray" / "state.json").exists()
    assert not (tmp_path / "b" / "ray_stages").exists()
    assert not (tmp_path / "b" / "checkpoint_ray").exists()


def test_dedup_fanout_aggregator_on_ray(ray_cpu, data, tmp_path):
    res = run_recipe(RAY_OPS / "dedup_fanout.yaml",
                     {"dataset_path": data, "custom_operator_paths": [str(RAY_OPS)]}, tmp_path,
                     "ray")
    fan, dedup = res["summary"]["ops"][1], res["summary"]["ops"][2]
    # n = 0, 5, 10, 15, 20 fan out into two rows each (24 valid samples -> 29 rows)
    assert (fan["rows_in"], fan["kept"], fan["rows_out"]) == (24, 24, 29)
    assert dedup["rows_in"] == 29 and dedup["rows_out"] == 7  # one row per n % 7
    dropped = [f for f in res["filtered"] if f["op"] == "mod_dedup_test"]
    assert len(dropped) == 22 and all("dup_of" in f["reason"] for f in dropped)
    agg = json.loads((tmp_path / "count_aggregator.json").read_text())
    assert agg["rows"] == len(res["rows"]) == res["summary"]["kept"]
    assert agg["sum_n"] == sum(r["n"] for r in res["rows"])


def _probe_recipe(tmp_path: Path, params: dict, extra_ops=()) -> Path:
    process = [{"ray_probe_mapper": params}, *extra_ops]
    path = tmp_path / "probe.yaml"
    path.write_text(json.dumps({"project_name": "probe", "np": 2, "process": process}))
    return path


def test_gpu_op_without_gpus_runs_on_cpu_actors(ray_cpu, data, tmp_path, caplog):
    setups = tmp_path / "setups"
    setups.mkdir()
    recipe = _probe_recipe(tmp_path, {"accelerator": "cuda", "batch_size": 2,
                                      "setup_dir": str(setups)})
    caplog.set_level(logging.INFO, logger="imgjuicer")
    t0 = time.time()
    res = run_recipe(recipe, {"dataset_path": data, "custom_operator_paths": [str(RAY_OPS)]},
                     tmp_path / "w", "ray")
    assert time.time() - t0 < 60
    assert "wants a GPU but the Ray cluster has none" in caplog.text
    probes = [r["__dj__meta__"]["probe"] for r in res["rows"]]
    assert len(probes) == 25 and all(p["device"] == "cpu" and p["gpu_ids"] == [] for p in probes)
    # one setup (model load) per actor, and every row ran on one of those actors
    records = [json.loads(p.read_text()) for p in setups.iterdir()]
    assert 1 <= len(records) <= 2
    assert {p["uid"] for p in probes} <= {r["uid"] for r in records}
    assert all(p["setups"] == 1 for p in probes)


def test_require_gpus_without_gpus_fails_fast(ray_cpu, data, tmp_path):
    recipe = _probe_recipe(tmp_path, {"accelerator": "cuda"})
    t0 = time.time()
    with pytest.raises(RecipeError, match=r"ray_require_gpus.*no GPUs"):
        run_recipe(recipe, {"dataset_path": data, "custom_operator_paths": [str(RAY_OPS)],
                            "ray_require_gpus": True}, tmp_path / "w", "ray")
    assert time.time() - t0 < 10
    assert not (tmp_path / "w" / "result.jsonl").exists()


def test_op_needing_more_than_any_node_fails_fast(ray_cpu, data, tmp_path):
    recipe = tmp_path / "big.yaml"
    recipe.write_text(json.dumps({"process": [{"image_shape_filter": {"num_cpus": 64}}]}))
    t0 = time.time()
    with pytest.raises(RecipeError, match=r"image_shape_filter' needs CPU 64 per worker.*"
                                          r"no node"):
        run_recipe(recipe, {"dataset_path": data}, tmp_path / "w", "ray")
    assert time.time() - t0 < 10


@pytest.mark.slow
def test_require_gpus_cli_error_within_bounded_time(data, tmp_path):
    """The real command, starting its own Ray: exit 2 with the reason, startup included."""
    recipe = _probe_recipe(tmp_path, {"accelerator": "cuda"})
    t0 = time.time()
    proc = cli(_argv(recipe, {"dataset_path": data, "custom_operator_paths": [str(RAY_OPS)],
                              "ray_require_gpus": True}, tmp_path / "w", "ray"), timeout=120)
    elapsed = time.time() - t0
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "ray_require_gpus" in proc.stderr and "no GPUs" in proc.stderr
    assert elapsed < 60


@pytest.mark.slow
@pytest.mark.parametrize("accelerator", ["cpu", "cuda"], ids=["task", "actor"])
def test_worker_killed_once_run_completes(accelerator, ray_cpu, data, tmp_path):
    marker = tmp_path / "crashed"
    recipe = _probe_recipe(tmp_path, {"accelerator": accelerator, "batch_size": 2,
                                      "crash_n": 5, "crash_marker": str(marker)},
                           extra_ops=[{"image_shape_filter": {"min_width": 64}}])
    res = run_recipe(recipe, {"dataset_path": data, "custom_operator_paths": [str(RAY_OPS)]},
                     tmp_path / "w", "ray")
    assert marker.exists()  # the worker did die once
    probe, shape = res["summary"]["ops"]
    assert (probe["rows_in"], probe["kept"], probe["errored"]) == (25, 25, 0)
    rows = by_id(res["rows"])  # no duplicates
    assert len(rows) + len(res["filtered"]) + len(res["errors"]) == 25
    assert set(rows) | set(by_id(res["filtered"])) | set(by_id(res["errors"])) == \
        {str(i) for i in range(25)}
    assert "5" in rows or "5" in by_id(res["filtered"])


@pytest.mark.slow
def test_resume_after_interrupted_run(ray_cpu, data, tmp_path):
    """Op 1 keeps killing its worker on one sample, so the run fails; ops 0 and 1 share one
    fused pass, whose finished blocks the rerun does not redo: only the block that crashed
    runs again (through both ops), and every sample comes out exactly once."""
    marker, log0, log1 = tmp_path / "fail", tmp_path / "log0", tmp_path / "log1"
    marker.touch()
    log0.mkdir()
    log1.mkdir()
    recipe = _probe_recipe(tmp_path, {"log_dir": str(log0), "batch_size": 2}, extra_ops=[
        {"ray_probe_mapper": {"log_dir": str(log1), "batch_size": 2, "crash_n": 20,
                              "crash_marker": str(marker), "crash_policy": "while_marker"}}])
    overrides = {"dataset_path": data, "custom_operator_paths": [str(RAY_OPS)]}

    def logged(d):
        return [line for f in sorted(d.iterdir()) for line in f.read_text().split()]

    with pytest.raises(Exception, match="ray_probe_mapper"):
        run_recipe(recipe, overrides, tmp_path / "w", "ray")
    first0 = logged(log0)  # the crashing block's retries ran op 0 again on its first rows
    first = logged(log1)
    marker.unlink()
    res = run_recipe(recipe, overrides, tmp_path / "w", "ray")
    redone0 = list((Counter(logged(log0)) - Counter(first0)).elements())
    again = sum(len(f.read_text().split()) for f in log1.iterdir()) - len(first)
    assert 0 < again < 25  # only the unfinished block ran again ...
    assert "20" in logged(log1) and "20" in redone0
    assert 0 < len(redone0) <= again  # ... op 0 on that block only
    assert set(logged(log0)) == {str(i) for i in range(25)}
    assert sorted(by_id(res["rows"]), key=int) == [str(i) for i in range(25)]
    s = res["summary"]
    assert [c["rows_in"] for c in s["ops"]] == [25, 25] and s["kept"] == 25
