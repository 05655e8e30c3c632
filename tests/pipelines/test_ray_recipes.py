"""The shipped recipes that other tests run (codec sweep, generation loss) give the same output
on both executors.  (ImgDiff: tests/imgdiff/test_imgdiff_recipe.py; the framework recipes:
test_ray_executor.py.)"""
import json
import math
import os

import pytest

ray = pytest.importorskip("ray")

from PIL import Image  # noqa: E402

from tests.conftest import REPO, write_jsonl  # noqa: E402
from tests.pipelines.test_ray_executor import by_id, op_counts, run_recipe  # noqa: E402
from tests.pipelines.test_ray_executor import ray_cpu  # noqa: E402,F401  (fixture)
from tests.scorer.conftest import copies_dir  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.slow
# wall-clock timings, and whether a measurement came from the sweep's cache (the local
# executor's timing probe may have measured a row already): provenance, not output
IGNORED = ("seconds", "created", "timings", "cached")


def same(a, b, path="") -> None:
    """Equal, with floats to 1e-5 relative (model batches differ between executors) and
    provenance keys (IGNORED) skipped."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), path
        for k in a:
            if not any(t in k for t in IGNORED):
                same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7), (path, a, b)
    else:
        assert a == b, (path, a, b)


def _both(recipe, overrides, tmp_path):
    local = run_recipe(recipe, overrides, tmp_path / "local", "local")
    on_ray = run_recipe(recipe, overrides, tmp_path / "ray", "ray")
    assert op_counts(local["summary"]) == op_counts(on_ray["summary"])
    same(by_id(local["rows"]), by_id(on_ray["rows"]))
    for what in ("errors", "filtered"):
        same(by_id(local[what]), by_id(on_ray[what]))
    return local, on_ray


def test_generation_loss_recipe_on_both(ray_cpu, copies_dir, tmp_path):
    local, on_ray = _both(REPO / "recipes" / "generation-loss.yaml",
                          {"dataset_path": str(copies_dir)}, tmp_path)
    kept = sorted(os.path.basename(r["images"][0]) for r in local["rows"])
    assert kept == ["original.png", "other.png"]
    assert len(local["filtered"]) == 5 and len(local["errors"]) == 1    # broken.jpg


def test_codec_sweep_recipe_on_both(ray_cpu, tmp_path):
    import numpy as np
    rng = np.random.default_rng(5)
    paths = []
    for i in range(3):
        arr = (rng.random((48, 64, 3)) * 255).astype("uint8")
        p = tmp_path / f"src{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
    data = write_jsonl(tmp_path / "images.jsonl", [{"images": [p]} for p in paths])
    process = [{"image_codec_sweep_mapper": {
        "study_id": "both", "metrics": ["psnr", "ssim"],
        "grid": {"jpeg": {"quality": [40, 80]}, "webp": {"quality": [60]}}}},
        {"quality_report_aggregator": {}}]
    local, on_ray = _both(REPO / "recipes" / "format-comparison.yaml",
                          {"dataset_path": str(data), "process": process}, tmp_path)
    assert len(local["rows"]) == 9
    q_local = json.loads((tmp_path / "local" / "quality.json").read_text())
    q_ray = json.loads((tmp_path / "ray" / "quality.json").read_text())
    same(q_local["images"], q_ray["images"])
