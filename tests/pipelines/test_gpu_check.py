"""pipelines.cli.gpu_check (tools/gpu_check.py): refuses to pretend on a machine without CUDA; its dataset and report helpers."""
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_check():
    from pipelines.cli import gpu_check
    return gpu_check


def test_no_cuda_is_said_plainly(gpu_check, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main([]) == 1
    out = capsys.readouterr()
    assert "CUDA devices: none" in out.out and "--allow-cpu" in out.err


def test_repeated_dataset_and_batch_sizes(gpu_check, tmp_path):
    src = REPO / "recipes" / "data" / "imgdiff.jsonl"
    dest = gpu_check.repeated_dataset(src, 3, tmp_path / "pairs.jsonl")
    rows = [json.loads(ln) for ln in dest.read_text().splitlines()]
    n = len(src.read_text().splitlines())
    assert len(rows) == 3 * n
    for r in rows:
        assert Path(r["image_path1"]).is_file() and r["images"] == [r["image_path1"],
                                                                    r["image_path2"]]
    recipe = yaml.safe_load((REPO / "recipes" / "imgdiff-dataset.yaml").read_text())
    sizes = gpu_check.batch_sizes(recipe)
    assert any(s.startswith("imgdiff_difference_area_generator_mapper:") and
               "model_batch_size=32" in s and "segment_batch_size=4" in s for s in sizes)
