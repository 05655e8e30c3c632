"""kill -9 mid-run, rerun the same command: resumes after the last finished op, same output."""
import json
import os
import signal
import subprocess
import time

import pytest

from ops.fields import Fields
from tests.conftest import PLUGINS, read_jsonl
from tests.pipelines.helpers import DJ_PROCESS, REPO, cli


def _recipe(tmp_path, small_images, log):
    proc = [
        {"image_metadata_mapper": {}},
        {"slow_counter_mapper": {"tag": "a", "log_path": str(log)}},
        {"slow_counter_mapper": {"tag": "b", "delay": 0.25, "log_path": str(log),
                                 "batch_size": 2}},
        {"image_shape_filter": {"min_width": 64}},
    ]
    p = tmp_path / "r.yaml"
    p.write_text(json.dumps({
        "project_name": "resume", "dataset_path": str(small_images / "data.jsonl"),
        "np": 2, "custom_operator_paths": [str(PLUGINS / "slow_counter_op.py")],
        "process": proc}))
    return p


def _rows(path):
    return sorted(read_jsonl(path), key=lambda r: r[Fields.id])


def _kill_9_once_b_ran(args: list, log) -> None:
    """Start dj-process, wait until op b has handled 4 samples, then kill -9 the whole job
    (driver and its workers)."""
    proc = subprocess.Popen([DJ_PROCESS, *args], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        lines = log.read_text().split("\n") if log.exists() else []
        if sum(1 for ln in lines if ln.startswith("b ")) >= 4:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("op b never started")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_and_matches(tmp_path, small_images):
    log = tmp_path / "calls.log"
    recipe = _recipe(tmp_path, small_images, log)
    work = tmp_path / "killed"
    args = ["--config", str(recipe), "--work_dir", str(work)]
    _kill_9_once_b_ran(args, log)
    assert not (work / "result.jsonl").exists()
    state = json.loads((work / "checkpoint" / "state.json").read_text())
    assert state["op_index"] == 1           # ops 0 and 1 finished, op 2 was running

    a_before = log.read_text().count("a ")
    r = cli(args, timeout=300)
    assert r.returncode == 0, r.stderr
    assert log.read_text().count("a ") == a_before       # op a was not redone
    a_ids = {ln.split()[1] for ln in log.read_text().splitlines() if ln.startswith("a ")}
    assert len(a_ids) == 24                               # ... and had seen every sample
    assert "resuming after op 1" in (work / "run.log").read_text()

    clean = cli(["--config", str(recipe), "--work_dir", str(tmp_path / "clean")], timeout=300)
    assert clean.returncode == 0, clean.stderr
    assert _rows(work / "result.jsonl") == _rows(tmp_path / "clean" / "result.jsonl")
    summary = json.loads((work / "summary.json").read_text())
    assert summary["kept"] + summary["filtered"] + summary["errored"] == 25
    ids = [r["id"] for r in read_jsonl(work / "filtered.jsonl") + read_jsonl(work / "errors.jsonl")]
    assert len(ids) == len(set(ids))        # no duplicates in the reports after resume


@pytest.mark.slow
def test_checkpoint_per_pass_kill_9_resume_matches(tmp_path, small_images):
    """Ops 0-1 share one pass and are checkpointed once, after op 1; op 2 (its own batch size,
    so its own pass) is killed mid-way; the rerun resumes after op 1 and its output, reports
    and counts equal an uninterrupted run's."""
    log = tmp_path / "calls.log"
    proc_ops = [
        {"image_shape_filter": {"min_width": 50}},
        {"slow_counter_mapper": {"tag": "a", "log_path": str(log)}},
        {"slow_counter_mapper": {"tag": "b", "delay": 0.25, "log_path": str(log),
                                 "batch_size": 2}},
        {"image_aspect_ratio_filter": {"min_ratio": 0.5, "max_ratio": 2.0}},
        {"image_size_filter": {"min_size": "100B"}},
    ]
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({
        "project_name": "resume2", "dataset_path": str(small_images / "data.jsonl"),
        "np": 2, "custom_operator_paths": [str(PLUGINS / "slow_counter_op.py")],
        "process": proc_ops}))
    work = tmp_path / "killed"
    args = ["--config", str(recipe), "--work_dir", str(work)]
    _kill_9_once_b_ran(args, log)
    saved = [ln for ln in (work / "run.log").read_text().splitlines() if "checkpoint after" in ln]
    assert len(saved) == 1 and "checkpoint after op 1 " in saved[0]   # one write for ops 0-1
    assert json.loads((work / "checkpoint" / "state.json").read_text())["op_index"] == 1

    a_before = log.read_text().count("a ")
    r = cli(args, timeout=300)
    assert r.returncode == 0, r.stderr
    assert log.read_text().count("a ") == a_before       # the first pass was not redone
    text = (work / "run.log").read_text()
    assert "resuming after op 1" in text
    # after the resume: op 2 alone, then ops 3-4 fused: two more checkpoints, not three
    assert [ln.split("checkpoint after op ")[1].split()[0] for ln in text.splitlines()
            if "checkpoint after" in ln] == ["1", "2", "4"]

    clean = cli(["--config", str(recipe), "--work_dir", str(tmp_path / "clean")], timeout=300)
    assert clean.returncode == 0, clean.stderr
    assert _rows(work / "result.jsonl") == _rows(tmp_path / "clean" / "result.jsonl")
    for what in ("filtered", "errors"):
        assert sorted(read_jsonl(work / f"{what}.jsonl"), key=lambda r: r["id"]) == \
            sorted(read_jsonl(tmp_path / "clean" / f"{what}.jsonl"), key=lambda r: r["id"])
    keys = ("index", "op", "rows_in", "kept", "filtered", "errored", "rows_out")
    got, want = (json.loads((d / "summary.json").read_text())
                 for d in (work, tmp_path / "clean"))
    assert [{k: c[k] for k in keys} for c in got["ops"]] == \
        [{k: c[k] for k in keys} for c in want["ops"]]
