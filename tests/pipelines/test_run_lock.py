"""One run per work_dir: a second run is refused naming the first's pid; a lock left by a
run killed with SIGKILL is taken over, and that run then resumes and matches a clean run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ops.fields import Fields
from pipelines.lock import LOCK_NAME, acquire, release, work_dir_lock
from tests.conftest import PLUGINS, read_jsonl
from tests.pipelines.helpers import DJ_PROCESS, REPO, cli


def _recipe(tmp_path, small_images, delay):
    p = tmp_path / "r.yaml"
    p.write_text(json.dumps({
        "project_name": "lock", "dataset_path": str(small_images / "data.jsonl"), "np": 1,
        "custom_operator_paths": [str(PLUGINS / "slow_counter_op.py")],
        "process": [{"image_metadata_mapper": {}},
                    {"slow_counter_mapper": {"tag": "a", "delay": delay,
                                             "log_path": str(tmp_path / "calls.log"),
                                             "batch_size": 1}},
                    {"image_shape_filter": {"min_width": 64}}]}))
    return p


def _start(args):
    return subprocess.Popen([DJ_PROCESS, *args], cwd=REPO, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_calls(log, n, proc, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended early: {proc.communicate()}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the slow op never started")


def _try_lock_elsewhere(work_dir) -> subprocess.CompletedProcess:
    code = ("import sys\nfrom pipelines.lock import acquire, WorkDirBusy\n"
            f"try: acquire({str(work_dir)!r})\n"
            "except WorkDirBusy as e: print(e); sys.exit(3)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_lock_is_reentrant_in_one_process_and_exclusive_across(tmp_path):
    with work_dir_lock(str(tmp_path)):
        acquire(str(tmp_path))          # run_recipe inside dj-process: same process, same lock
        release(str(tmp_path))
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        other = _try_lock_elsewhere(tmp_path)
        assert other.returncode == 3, other.stderr
        assert f"is in use by another run (pid {os.getpid()}" in other.stdout
    assert _try_lock_elsewhere(tmp_path).returncode == 0      # released: free again


@pytest.mark.slow
def test_second_run_on_a_busy_work_dir_is_refused(tmp_path, small_images):
    recipe = _recipe(tmp_path, small_images, delay=0.3)
    work = tmp_path / "work"
    args = ["--config", str(recipe), "--work_dir", str(work)]
    first = _start(args)
    try:
        _wait_for_calls(tmp_path / "calls.log", 2, first)
        second = cli(args, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"is in use by another run (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0, err
    # the refused run touched nothing: one run's reports, each sample once
    summary = json.loads((work / "summary.json").read_text())
    ids = [r[Fields.id] for r in read_jsonl(work / "result.jsonl")] + \
        [r["id"] for r in read_jsonl(work / "filtered.jsonl") + read_jsonl(work / "errors.jsonl")]
    assert sorted(ids) == sorted(str(i) for i in range(25)) and summary["rows_in"] == 25
    assert "in use by another run" not in (work / "run.log").read_text()


@pytest.mark.slow
def test_lock_of_a_killed_run_is_taken_over(tmp_path, small_images):
    recipe = _recipe(tmp_path, small_images, delay=0.3)
    work = tmp_path / "work"
    args = ["--config", str(recipe), "--work_dir", str(work)]
    first = _start(args)
    _wait_for_calls(tmp_path / "calls.log", 2, first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert json.loads((work / LOCK_NAME).read_text())["pid"] == first.pid   # stale lock left
    again = cli(args, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming after op 0" in (work / "run.log").read_text()
    clean = cli(["--config", str(recipe), "--work_dir", str(tmp_path / "clean")], timeout=300)
    assert clean.returncode == 0, clean.stderr
    rows = sorted(read_jsonl(work / "result.jsonl"), key=lambda r: r[Fields.id])
    assert rows == sorted(read_jsonl(tmp_path / "clean" / "result.jsonl"),
                          key=lambda r: r[Fields.id])
