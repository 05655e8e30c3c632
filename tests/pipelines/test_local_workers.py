"""Local worker processes never hang on torch state inherited through fork, and spawned
workers (used once torch is loaded in the driver) run user ops loaded from files."""
import json
import os
import signal
import subprocess
import sys

import pytest

from ops.fields import Fields
from tests.conftest import PLUGINS, read_jsonl, write_jsonl
from tests.pipelines.helpers import REPO
from tests.scorer.conftest import copies_dir  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

# The driver as dj-process runs it, with the pool threshold at 0 so the timing probe always
# chooses np workers (on a fast machine a few images may otherwise run in-process).
DRIVER = """
import sys
{prelude}
import pipelines.executor.local as local
local.POOL_WORTH_SECONDS = 0.0
from pipelines.cli import process_main
sys.exit(process_main(sys.argv[1:]))
"""


def _drive(args, prelude="", timeout=420):
    """Run the driver; on timeout kill its whole process group (hung workers included)."""
    proc = subprocess.Popen([sys.executable, "-c", DRIVER.format(prelude=prelude), *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_scorer_recipe_with_two_workers_finishes(copies_dir, tmp_path):  # noqa: F811
    """generation-loss.yaml with np: 2 hung for ever: the probe ran torch in the driver, then
    every forked worker waited in libgomp inside load_state_dict."""
    base = ["--config", str(REPO / "recipes" / "generation-loss.yaml"), "--dataset_path",
            str(copies_dir)]
    try:
        r = _drive([*base, "--np", "2", "--work_dir", str(tmp_path / "np2"), "--export_path",
                    str(tmp_path / "np2" / "result.jsonl")])
    except subprocess.TimeoutExpired:
        pytest.fail("np: 2 run of the scorer recipe did not finish (worker hang)")
    assert r.returncode == 0, r.stderr
    assert "starting 2 forked workers" in (tmp_path / "np2" / "run.log").read_text()
    one = _drive([*base, "--np", "1", "--work_dir", str(tmp_path / "np1"), "--export_path",
                   str(tmp_path / "np1" / "result.jsonl")])
    assert one.returncode == 0, one.stderr

    def scores(work):
        return {row[Fields.id]: row[Fields.stats]["generation_loss"]
                for row in read_jsonl(work / "result.jsonl")}
    a, b = scores(tmp_path / "np2"), scores(tmp_path / "np1")
    assert a.keys() == b.keys() and len(a) == 2
    for k in a:   # one process vs two: same net, same features; BLAS order may differ
        assert a[k] == pytest.approx(b[k], rel=1e-6)


def test_spawned_workers_run_plugin_ops(small_images, tmp_path):
    """torch loaded (and run) in the driver: workers are spawned; an op from a plugin file
    still reaches them, and the output equals a one-process run's."""
    rows = [dict(r, images=[str(small_images / p) for p in r["images"]])
            for r in read_jsonl(small_images / "data.jsonl")]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    process = json.dumps([{"image_shape_filter": {"min_width": 64}},
                          {"my_user_op": {"factor": 2}}])
    common = ["--config", str(REPO / "tests" / "recipes" / "basic.yaml"), "--dataset_path",
              str(data), "--custom_operator_paths", json.dumps([str(PLUGINS / "my_user_op.py")]),
              "--process", process]
    torch_first = "import torch\ntorch.ones(64, 64) @ torch.ones(64, 64)"
    r = _drive([*common, "--np", "2", "--work_dir", str(tmp_path / "spawn")], torch_first)
    assert r.returncode == 0, r.stderr
    assert "starting 2 spawned workers" in (tmp_path / "spawn" / "run.log").read_text()
    one = _drive([*common, "--np", "1", "--work_dir", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr
    got = read_jsonl(tmp_path / "spawn" / "result.jsonl")
    assert got == read_jsonl(tmp_path / "one" / "result.jsonl") and len(got) == 20
    assert all(row[Fields.meta]["scaled"] == 2 * row["n"] for row in got)
