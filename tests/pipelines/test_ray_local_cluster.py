"""The Ray a run starts for itself: reachable from this machine only, no authentication
warning, and fused ops' seconds split by what each op spent."""
import ipaddress
import json
import os
import subprocess

import pytest

pytest.importorskip("ray")

from tests.conftest import PLUGINS, read_jsonl  # noqa: E402
from tests.pipelines.helpers import DJ_PROCESS, REPO  # noqa: E402

pytestmark = pytest.mark.slow


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def test_local_ray_listens_on_loopback_only(small_images, tmp_path):
    plugins = [str(PLUGINS / "listen_probe_aggregator.py"), str(PLUGINS / "slow_counter_op.py")]
    process = [{"image_shape_filter": {"min_width": 64}},                 # fused with ...
               {"slow_counter_mapper": {"tag": "s", "delay": 0.1}},     # ... this slow one
               {"listen_probe_aggregator": {}}]
    # a user's own RAY_AUTH_MODE would be respected: leave it out to see the default
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    r = subprocess.run(
        [DJ_PROCESS, "--config", str(REPO / "tests" / "recipes" / "basic.yaml"),
         "--executor_type", "ray", "--dataset_path", str(small_images / "data.jsonl"),
         "--work_dir", str(tmp_path), "--custom_operator_paths", json.dumps(plugins),
         "--process", json.dumps(process)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    listening = json.loads((tmp_path / "listening.json").read_text())
    names = {s["name"] for s in listening}
    assert {"gcs_server", "raylet"} <= names, listening    # the probe saw Ray's servers
    exposed = [s for s in listening if not _loopback(s["ip"])]
    assert exposed == [], exposed
    # token authentication stays on, without a WARNING on every run
    assert "Token authentication" not in r.stderr, r.stderr
    # fused pass: each op reports its own share, not the whole pass (nor an even split)
    ops = {c["op"]: c for c in json.loads((tmp_path / "summary.json").read_text())["ops"]}
    slow, fast = ops["slow_counter_mapper"]["seconds"], ops["image_shape_filter"]["seconds"]
    assert slow >= 20 * 0.1 * 0.8 and slow > 4 * fast, (slow, fast)
    assert len(read_jsonl(tmp_path / "result.jsonl")) == 20
