"""image_blur_mapper: which images are blurred (p, reproducibly), with which kernel, where the
files go, and what the sample records."""
import json
import os

import numpy as np
import pytest
from PIL import Image, ImageFilter

from ops import OPERATORS
from ops.base import RunContext
from ops.fields import Fields, Status
from tests.conftest import REPO, read_jsonl, write_jsonl
from tests.ops.conftest import batch_of_rows
from tests.pipelines.helpers import run_inprocess


def _op(work, **kw):
    return OPERATORS.get("image_blur_mapper")(**kw).bind(RunContext(work_dir=str(work)))


@pytest.mark.parametrize("blur_type,kernel", [("gaussian", ImageFilter.GaussianBlur(3)),
                                              ("box", ImageFilter.BoxBlur(3)),
                                              ("mean", ImageFilter.BLUR)])
def test_p1_blurs_every_image_with_the_named_kernel(photos, tmp_path, blur_type, kernel):
    src = photos["astronaut.png"]
    out = _op(tmp_path, p=1.0, blur_type=blur_type, radius=3).run_batched(
        batch_of_rows([{"images": [src, src, photos["coffee.jpg"]]}]))
    new = out["images"][0]
    assert new[0] == new[1] != src                      # the same image is blurred once
    assert new[2].endswith(".jpg") and new[0].endswith(".png")
    assert out[Fields.source_file][0] == [src, src, photos["coffee.jpg"]]
    expect = np.asarray(Image.open(src).convert("RGB").filter(kernel))
    assert np.array_equal(np.asarray(Image.open(new[0])), expect)    # PNG: exact
    assert os.path.dirname(new[0]) == str(tmp_path / "__dj__produced_data__" / "image_blur_mapper")


def test_p_decides_per_image_reproducibly(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    paths = []
    for i in range(60):
        p = tmp_path / "in" / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    rows = [{"images": [p]} for p in paths]
    first = _op(tmp_path / "a", p=0.5).run_batched(batch_of_rows(rows))["images"]
    again = _op(tmp_path / "b", p=0.5).run_batched(batch_of_rows(rows))["images"]
    blurred = [new[0] != old for new, old in zip(first, paths)]
    assert 15 <= sum(blurred) <= 45                     # ~half of 60
    assert blurred == [new[0] != old for new, old in zip(again, paths)]
    other_seed = _op(tmp_path / "c", p=0.5, seed=1).run_batched(batch_of_rows(rows))["images"]
    assert [n[0] != o for n, o in zip(other_seed, paths)] != blurred
    none = _op(tmp_path / "d", p=0.0).run_batched(batch_of_rows(rows))["images"]
    assert [n[0] for n in none] == paths and not (tmp_path / "d").exists()


def test_env_dir_missing_image_and_bad_parameters(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("DJ_PRODUCED_DATA_DIR", str(tmp_path / "env"))
    out = _op(tmp_path, p=1.0).run_batched(batch_of_rows([
        {"images": [photos["coffee.jpg"]]}, {"images": [photos["broken.jpg"]]}, {"images": []},
        {"images": [str(tmp_path / "gone.png")]}]))
    assert out[Fields.status] == [Status.kept, Status.error, Status.kept, Status.error]
    assert out["images"][0][0].startswith(str(tmp_path / "env" / "image_blur_mapper"))
    assert "broken.jpg" in out[Fields.reason][1] and "gone.png: file not found" in \
        out[Fields.reason][3]
    assert out[Fields.source_file][2] == []
    for bad in ({"p": 1.5}, {"radius": -1}, {"blur_type": "motion"}):
        with pytest.raises(ValueError):
            OPERATORS.get("image_blur_mapper")(**bad)


def test_recipe_run_exports_blurred_paths(photos, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"images": [photos["grace_hopper.jpg"]]},
                                              {"images": [photos["broken.jpg"]]}])
    run_inprocess(["--config", str(REPO / "tests" / "recipes" / "basic.yaml"),
                   "--dataset_path", str(data), "--work_dir", str(tmp_path / "w"),
                   "--process", json.dumps([{"image_blur_mapper": {"p": 1.0}}])])
    (row,) = read_jsonl(tmp_path / "w" / "result.jsonl")
    assert row[Fields.source_file] == [photos["grace_hopper.jpg"]]
    assert Image.open(row["images"][0]).size == Image.open(photos["grace_hopper.jpg"]).size
    (err,) = read_jsonl(tmp_path / "w" / "errors.jsonl")
    assert "broken.jpg" in err["error"]
