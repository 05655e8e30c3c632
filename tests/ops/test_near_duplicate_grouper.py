"""image_near_duplicate_grouper groups resized / re-compressed copies and keeps every row."""
import io

import numpy as np
import pytest
from PIL import Image

from ops.fields import Fields
from tests.conftest import REPO, read_jsonl, write_jsonl
from tests.pipelines.helpers import run_inprocess


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    import skimage.data
    d = tmp_path_factory.mktemp("copies")
    names = []
    for name, arr in (("astronaut", skimage.data.astronaut()), ("coffee", skimage.data.coffee())):
        img = Image.fromarray(arr).convert("RGB")
        img.save(d / f"{name}.png")
        img.resize((img.width // 2, img.height // 2), Image.BILINEAR).save(d / f"{name}_half.jpg",
                                                                           quality=80)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=25)
        (d / f"{name}_q25.jpg").write_bytes(buf.getvalue())
        w, h = img.size
        img.crop((w // 50, h // 50, w - w // 50, h - h // 50)).save(d / f"{name}_crop.png")
        names += [f"{name}.png", f"{name}_half.jpg", f"{name}_q25.jpg", f"{name}_crop.png"]
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(d / "noise.png")
    names.append("noise.png")
    write_jsonl(d / "d.jsonl", [{"images": [n]} for n in names])
    return d, names


def test_copies_share_a_group_and_nothing_is_dropped(copies, tmp_path):
    d, names = copies
    run_inprocess(["--config", str(REPO / "tests" / "recipes" / "basic.yaml"),
                   "--dataset_path", str(d / "d.jsonl"), "--work_dir", str(tmp_path),
                   "--process", '[{"image_near_duplicate_grouper": {"threshold": 10}}]'])
    rows = read_jsonl(tmp_path / "result.jsonl")
    assert len(rows) == len(names)
    group = {names[int(r[Fields.id])]: r[Fields.meta]["image_near_duplicate_grouper"]["group"]
             for r in rows}
    for name in ("astronaut", "coffee"):
        members = {group[n] for n in names if n.startswith(name)}
        assert len(members) == 1, (name, group)
    assert group["astronaut.png"] != group["coffee.png"] != group["noise.png"]
    sizes = {names[int(r[Fields.id])]: r[Fields.meta]["image_near_duplicate_grouper"]["size"]
             for r in rows}
    assert sizes["astronaut_half.jpg"] == 4 and sizes["noise.png"] == 1
