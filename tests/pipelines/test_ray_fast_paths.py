"""Ray executor fast paths: JSON lines parsed by workers, CPU passes on plain Ray tasks whose
workers write the report and export lines, kill -9 + resume byte-identical, no Ray Data."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from pipelines.dataset import DatasetError  # noqa: E402
from pipelines.executor.ray_jsonl import scan  # noqa: E402
from tests.conftest import PLUGINS, read_jsonl  # noqa: E402
from tests.pipelines.helpers import DJ_PROCESS, REPO, cli  # noqa: E402
from tests.pipelines.test_ray_executor import (by_id, data, op_counts, ray_cpu,  # noqa: E402,F401
                                               run_recipe)

SMALL = {"batch_size": 2}  # 2-row batches: the 25-row dataset is cut into several blocks


def _recipe(tmp_path: Path, process: list, name: str = "r.yaml", **extra) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"project_name": "fast", "np": 2, "process": process, **extra}))
    return path


def _header_ops(**common):
    return [{"image_shape_filter": {"min_width": 50, **common}},
            {"image_aspect_ratio_filter": {"min_ratio": 0.6, "max_ratio": 1.6, **common}},
            {"image_size_filter": {"min_size": "100B", **common}}]


def _rows(small_images: Path) -> list:
    """The shared dataset's rows with absolute image paths (to be written elsewhere)."""
    rows = read_jsonl(small_images / "data.jsonl")
    for r in rows:
        r["images"] = [str(small_images / p) for p in r["images"]]
    return rows


def _both(tmp_path, recipe, overrides):
    return (run_recipe(recipe, overrides, tmp_path / "local", "local"),
            run_recipe(recipe, overrides, tmp_path / "ray", "ray"))


def _same_files(a: Path, b: Path, names=("result.jsonl", "errors.jsonl", "filtered.jsonl")):
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_scan_cuts_whole_lines_at_row_numbers(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = ['{"a": 1}', "", "  ", '{"a": 2}', "\u3000", '{"a": 3}', '{"a": 4}', '{"a": 5}']
    path.write_text("\n".join(lines))  # no newline at the end; blank and U+3000-only lines
    cuts, rows = scan(str(path), lambda n: 2)
    assert rows == 5
    assert [(line, row) for _, _, line, row in cuts] == [(1, 0), (6, 2), (8, 4)]
    data = path.read_bytes()
    assert b"".join(data[s:e] for s, e, _, _ in cuts) == data
    array = tmp_path / "a.jsonl"
    array.write_text('\n  [{"a": 1}]')
    assert scan(str(array), lambda n: 2) is None


def test_jsonl_read_by_workers_matches_local(ray_cpu, small_images, tmp_path):
    """Blank lines, rows split over several blocks, ids numbered across blocks, relative
    image paths: the Ray run's files are byte-identical to the local run's."""
    rows = read_jsonl(small_images / "data.jsonl")
    src = tmp_path / "data"
    src.mkdir()
    text = ""
    for i, r in enumerate(rows):
        r["images"] = [os.path.relpath(small_images / p, src) for p in r["images"]]
        text += json.dumps(r) + ("\n\n" if i % 7 == 3 else "\n")
    (src / "d.jsonl").write_text(text)
    recipe = _recipe(tmp_path, _header_ops(**SMALL))
    local, on_ray = _both(tmp_path, recipe, {"dataset_path": str(src / "d.jsonl")})
    assert on_ray["summary"]["rows_in"] == len(rows)
    assert len(list((tmp_path / "ray" / "checkpoint_ray").glob("data_*/block-*.parquet"))) > 3
    _same_files(local["work"], on_ray["work"])
    assert op_counts(on_ray["summary"]) == op_counts(local["summary"])
    assert len(on_ray["rows"]) > 5 and len(on_ray["filtered"]) > 5 and on_ray["errors"]


def test_jsonl_errors_name_the_same_line_as_local(ray_cpu, small_images, tmp_path):
    rows = _rows(small_images)
    bad = tmp_path / "bad.jsonl"
    lines = [json.dumps(r) for r in rows]
    lines[17] = lines[17][:-1]  # a truncated record in a late block
    lines[21] = "{not json"
    bad.write_text("\n".join(lines) + "\n")
    recipe = _recipe(tmp_path, _header_ops(**SMALL))
    msgs = []
    for executor in ("local", "ray"):
        with pytest.raises(DatasetError) as err:
            run_recipe(recipe, {"dataset_path": str(bad)}, tmp_path / executor, executor)
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1] and ":18: invalid JSON line" in msgs[0]


def test_types_changing_along_the_file_and_own_ids(ray_cpu, small_images, tmp_path):
    """An int column that turns float late in the file is promoted as one reader promotes it
    (the driver reads such a file); the dataset's own ids are checked over the whole file."""
    rows = _rows(small_images)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(dict(r, score=i if i < 20 else i + 0.5)) + "\n"
                             for i, r in enumerate(rows)))
    recipe = _recipe(tmp_path, _header_ops(**SMALL))
    local, on_ray = _both(tmp_path / "m", recipe, {"dataset_path": str(mixed)})
    _same_files(local["work"], on_ray["work"])
    assert len(on_ray["rows"]) > 5 and {type(r["score"]) for r in on_ray["rows"]} == {float}

    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps(dict(r, __dj__id__=f"x{i % 20}")) + "\n"
                           for i, r in enumerate(rows)))
    msgs = []
    for executor in ("local", "ray"):
        with pytest.raises(DatasetError) as err:
            run_recipe(recipe, {"dataset_path": str(dup)}, tmp_path / "d" / executor, executor)
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1] and "x0" in msgs[0]


def test_export_lines_follow_the_export_settings_on_resume(ray_cpu, data, tmp_path):
    """The last pass's workers write the export lines; a finished run rerun with
    keep_stats_in_res_ds false must not reuse lines that carry stats."""
    recipe = _recipe(tmp_path, _header_ops(**SMALL))
    work = tmp_path / "w"
    first = run_recipe(recipe, {"dataset_path": data}, work, "ray")
    assert first["rows"] and all("__dj__stats__" in r for r in first["rows"])
    again = run_recipe(recipe, {"dataset_path": data, "keep_stats_in_res_ds": False}, work,
                       "ray")
    assert [r["__dj__id__"] for r in again["rows"]] == [r["__dj__id__"] for r in first["rows"]]
    assert not any("__dj__stats__" in r for r in again["rows"])
    local = run_recipe(recipe, {"dataset_path": data, "keep_stats_in_res_ds": False},
                       tmp_path / "local", "local")
    assert (work / "result.jsonl").read_bytes() == (local["work"] / "result.jsonl").read_bytes()


@pytest.mark.slow
def test_ray_kill_9_mid_pass_then_resume_is_byte_identical(tmp_path, small_images):
    """dj-process on Ray killed with SIGKILL (driver, Ray and its workers) once two blocks of
    the pass are written; the rerun redoes only the other blocks, and its export and
    reports are byte-identical to an uninterrupted run's."""
    log = tmp_path / "calls.log"
    recipe = _recipe(tmp_path, [
        {"image_shape_filter": {"min_width": 50, **SMALL}},
        {"slow_counter_mapper": {"tag": "a", "delay": 0.3, "log_path": str(log), **SMALL}},
        {"image_aspect_ratio_filter": {"min_ratio": 0.6, "max_ratio": 1.6, **SMALL}},
    ], dataset_path=str(small_images / "data.jsonl"),
        custom_operator_paths=[str(PLUGINS / "slow_counter_op.py")], executor_type="ray")
    work = tmp_path / "killed"
    args = ["--config", str(recipe), "--work_dir", str(work)]
    proc = subprocess.Popen([DJ_PROCESS, *args], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if len(list(work.glob("checkpoint_ray/work_*/block-*.parquet"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(work.glob("checkpoint_ray/work_*/block-*.parquet")))
    calls_before = log.read_text().count("a ")
    r = cli(args, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "blocks already done, resuming" in (work / "run.log").read_text()
    seen = {ln.split()[1] for ln in log.read_text().splitlines()}
    redone = log.read_text().count("a ") - calls_before
    assert done >= 2 and 0 < redone < len(seen)  # the finished blocks were not run again
    clean = cli(["--config", str(recipe), "--work_dir", str(tmp_path / "clean")], timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    _same_files(work, tmp_path / "clean")
    got, want = (json.loads((d / "summary.json").read_text()) for d in (work, tmp_path / "clean"))
    assert op_counts(got) == op_counts(want)


@pytest.mark.slow
def test_cpu_recipe_on_ray_never_imports_ray_data(tmp_path, small_images):
    """A recipe of CPU ops runs on plain Ray tasks: the driver never imports Ray Data (nor
    starts its stats / autoscaling actors, nor the HF datasets library)."""
    recipe = _recipe(tmp_path, _header_ops(), dataset_path=str(small_images / "data.jsonl"),
                     executor_type="ray")
    code = ("import sys, json\n"
            "from pipelines.cli.process import process_main\n"
            f"rc = process_main(['--config', {str(recipe)!r}, '--work_dir', "
            f"{str(tmp_path / 'w')!r}])\n"
            "print(json.dumps([rc, 'ray.data' in sys.modules, 'datasets' in sys.modules]))\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0",
               TQDM_DISABLE="1")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rc, ray_data, hf_datasets = json.loads(r.stdout.strip().splitlines()[-1])
    assert rc == 0 and not ray_data and not hf_datasets
    assert read_jsonl(tmp_path / "w" / "result.jsonl")
