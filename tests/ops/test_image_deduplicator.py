"""image_deduplicator (and its Ray spelling) on real photos: perceptual and exact hashes, text,
and the same decisions on both executors."""
import json
import logging
import shutil

import pytest
from PIL import Image

from ops import OPERATORS
from ops.fields import Fields
from tests.conftest import REPO, read_jsonl, write_jsonl
from tests.pipelines.helpers import run_inprocess

RECIPE = REPO / "tests" / "recipes" / "basic.yaml"


@pytest.fixture(scope="module")
def dup_data(photos, tmp_path_factory):
    d = tmp_path_factory.mktemp("dups")
    astro = Image.open(photos["astronaut.png"])
    astro.save(d / "astronaut_q60.jpg", quality=60)
    astro.save(d / "astronaut_lossless.webp", lossless=True)
    astro.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(d / "astronaut_flipped.png")
    shutil.copy(photos["coffee.jpg"], d / "coffee_copy.jpg")
    rows = [{"images": [photos["astronaut.png"]], "text": "astronaut"},          # 0
            {"images": [str(d / "astronaut_q60.jpg")], "text": "astronaut"},     # 1 phash dup of 0
            {"images": [str(d / "astronaut_lossless.webp")], "text": "x"},       # 2 pixel dup of 0
            {"images": [photos["coffee.jpg"]], "text": "coffee"},                # 3
            {"images": [str(d / "coffee_copy.jpg")], "text": "coffee"},          # 4 dup of 3
            {"images": [photos["chelsea.png"]], "text": "cat"},                  # 5
            {"images": [photos["chelsea.png"]], "text": "a cat"},                # 6 dup unless text
            {"images": [], "text": "no image"},                                  # 7 kept
            {"images": [photos["broken.jpg"]], "text": "broken"},                # 8 error
            {"images": [str(d / "astronaut_flipped.png")], "text": "flipped"},   # 9 distinct
            {"images": [photos["coffee.jpg"], photos["chelsea.png"]], "text": "two"},   # 10
            {"images": [str(d / "coffee_copy.jpg"), photos["chelsea.png"]], "text": "2"}]  # 11
    return write_jsonl(d / "d.jsonl", rows)


def _run(data, work, op, executor="local"):
    run_inprocess(["--config", str(RECIPE), "--dataset_path", str(data), "--work_dir", str(work),
                   "--executor_type", executor, "--process", json.dumps([op])])
    kept = {r[Fields.id]: r for r in read_jsonl(work / "result.jsonl")}
    filtered = {r["id"]: r for r in read_jsonl(work / "filtered.jsonl")}
    errors = {r["id"]: r for r in read_jsonl(work / "errors.jsonl")}
    return kept, filtered, errors


@pytest.mark.parametrize("method,dropped", [
    ("phash", {"1", "2", "4", "6", "11"}), ("dhash", {"1", "2", "4", "6", "11"}),
    ("whash", {"1", "2", "4", "6", "11"}), ("ahash", {"1", "2", "4", "6", "11"}),
    ("md5", {"2", "4", "6", "11"})])
def test_methods_drop_the_expected_copies(dup_data, tmp_path, method, dropped):
    kept, filtered, errors = _run(dup_data, tmp_path, {"image_deduplicator": {"method": method}})
    assert set(filtered) == dropped
    assert set(errors) == {"8"} and "broken.jpg" in errors["8"]["error"]
    assert set(kept) == {str(i) for i in range(12)} - dropped - {"8"}
    # the kept copy is named in each dropped row's reason; group info on the kept row too
    first = {"1": "0", "2": "0", "4": "3", "6": "5", "11": "10"}
    for i in dropped:
        assert f'"group": "{first[i]}"' in filtered[i]["reason"]
    assert kept["0"][Fields.meta]["image_deduplicator"]["group_size"] == \
        1 + len(dropped & {"1", "2"})
    assert len(kept["0"][Fields.meta]["imagehash"]) == (32 if method == "md5" else 16)
    assert len(kept["10"][Fields.meta]["imagehash"]) == 2 * len(kept["0"][Fields.meta]["imagehash"])


def test_consider_text_requires_the_same_text(dup_data, tmp_path):
    _, filtered, _ = _run(dup_data, tmp_path, {"image_deduplicator": {"consider_text": True}})
    assert set(filtered) == {"1", "4"}      # 2 and 6 differ in text, 11 too


@pytest.mark.slow
def test_same_decisions_on_ray_and_ray_spelling(dup_data, tmp_path, caplog):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        local = _run(dup_data, tmp_path / "local", {"image_deduplicator": {}})
        on_ray = _run(dup_data, tmp_path / "ray", {"image_deduplicator": {}}, "ray")
        with caplog.at_level(logging.WARNING, logger="imgjuicer"):
            spelled = _run(dup_data, tmp_path / "spelled",
                           {"ray_image_deduplicator": {"backend": "redis"}}, "ray")
    finally:
        ray.shutdown()
    assert set(on_ray[0]) == set(local[0]) and set(on_ray[1]) == set(local[1])
    assert [on_ray[0][k][Fields.meta] for k in sorted(on_ray[0])] == \
        [local[0][k][Fields.meta] for k in sorted(local[0])]
    assert set(spelled[1]) == set(local[1]) == {"1", "2", "4", "6", "11"}
    assert "backend ignored" in caplog.text


def test_bad_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        OPERATORS.get("image_deduplicator")(method="sha1")
