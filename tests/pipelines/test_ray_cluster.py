"""Ray executor on real multi-node and GPU-scheduling set-ups, on one machine."""
import json
import logging
import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from tests.pipelines.test_ray_executor import RAY_OPS, read_jsonl, run_recipe  # noqa: E402

pytestmark = pytest.mark.slow


def _recipe(tmp_path: Path, process: list) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(json.dumps({"project_name": "cluster", "np": 2, "process": process}))
    return path


@pytest.fixture(scope="module")
def two_node_cluster():
    """Head and worker node, one CPU each, told apart by custom resources."""
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "resources": {"node_a": 1},
                                      "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, resources={"node_b": 1})
    cluster.wait_for_nodes()
    yield cluster, {"node_a": cluster.head_node.node_id, "node_b": worker.node_id}
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


def test_actor_pool_spreads_over_two_nodes(two_node_cluster, small_images, tmp_path):
    cluster, nodes = two_node_cluster
    setups = tmp_path / "setups"
    setups.mkdir()
    recipe = _recipe(tmp_path, [
        {"image_metadata_mapper": {"batch_size": 2}},
        # a CUDA op on a GPU-less cluster: one CPU actor per node (each node has one CPU)
        {"ray_probe_mapper": {"accelerator": "cuda", "batch_size": 2,
                              "setup_dir": str(setups)}},
        {"image_shape_filter": {"min_width": 64, "batch_size": 2}},
    ])
    res = run_recipe(recipe, {"dataset_path": str(small_images / "data.jsonl"),
                              "custom_operator_paths": [str(RAY_OPS)],
                              "ray_address": cluster.address}, tmp_path / "w", "ray")
    assert not ray.is_initialized()  # the executor joined the cluster and left it again
    s = res["summary"]
    assert s["rows_in"] == 25 == s["kept"] + s["filtered"] + s["errored"]
    probes = [r["__dj__meta__"]["probe"] for r in res["rows"]]
    probes += [f["sample"]["__dj__meta__"]["probe"] for f in res["filtered"]]
    assert len(probes) == 24  # the missing image errored in op 0
    assert {p["node"] for p in probes} == set(nodes.values())  # both nodes did work
    setup_nodes = [json.loads(p.read_text())["node"] for p in setups.iterdir()]
    assert sorted(setup_nodes) == sorted(nodes.values())  # one actor on each node
    assert all(p["image_ok"] for p in probes)  # image paths valid on every node
    assert all(p["setups"] == 1 for p in probes)


def test_gpu_op_gets_one_actor_per_logical_gpu(small_images, tmp_path):
    """Two logical GPUs, no CUDA: two actors, each on the GPU Ray gave it, computing on CPU."""
    import torch

    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False,
             logging_level=logging.WARNING)
    try:
        setups = tmp_path / "setups"
        setups.mkdir()
        recipe = _recipe(tmp_path, [{"ray_probe_mapper": {
            "accelerator": "cuda", "batch_size": 2, "setup_dir": str(setups)}}])
        res = run_recipe(recipe, {"dataset_path": str(small_images / "data.jsonl"),
                                  "custom_operator_paths": [str(RAY_OPS)]}, tmp_path / "w",
                         "ray")
    finally:
        ray.shutdown()
    records = [json.loads(p.read_text()) for p in setups.iterdir()]
    assert len(records) == 2
    assert sorted(g for r in records for g in r["gpu_ids"]) == ["0", "1"]
    for r in records:
        assert r["cuda_visible"] == r["gpu_ids"][0]  # the device Ray assigned, not "all"
        if not torch.cuda.is_available():
            assert r["device"] == "cpu"
    probes = [r["__dj__meta__"]["probe"] for r in res["rows"]]
    assert len(probes) == 25 and {p["uid"] for p in probes} <= {r["uid"] for r in records}
    assert len(read_jsonl(tmp_path / "w" / "result.jsonl")) == 25
    assert os.path.exists(tmp_path / "w" / "summary.json")
