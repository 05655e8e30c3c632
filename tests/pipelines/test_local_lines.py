"""The local executor's report and export lines, made by the pass in its worker processes,
are byte for byte what the driver makes from the stored rows."""
import json
import logging
import re
import shutil

import pytest

import pipelines.executor.local as local
from tests.conftest import write_jsonl
from tests.pipelines.helpers import run_inprocess

PROCESS = [{"image_shape_filter": {"min_width": 50, "min_height": 50}},
           {"image_aspect_ratio_filter": {"min_ratio": 0.5, "max_ratio": 2.0}},
           {"image_size_filter": {"min_size": "1KB"}}]


def _run(data, work, export):
    recipe = work.parent / f"{work.name}.yaml"
    recipe.write_text(json.dumps({"project_name": "lines", "np": 2, "process": PROCESS}))
    return run_inprocess(["--config", str(recipe), "--dataset_path", str(data),
                          "--work_dir", str(work), "--export_path", str(work / export)])


def _files(work):
    return {p.relative_to(work).as_posix(): p.read_bytes()
            for p in sorted(work.rglob("*.jsonl")) if "checkpoint" not in p.parts
            and "trace" not in p.parts}


@pytest.mark.parametrize("export", ["result.jsonl", "result.json"])
def test_lines_made_in_workers_equal_the_drivers(small_images, tmp_path, monkeypatch, caplog,
                                                export):
    # a broken file among the rows (and the missing one, thrice), so the report holds errors
    # as well as filtered rows
    data = tmp_path / "data"
    shutil.copytree(small_images, data)
    (data / "img" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    rows = [json.loads(ln) for ln in (data / "data.jsonl").read_text().splitlines()] * 3
    rows.append({"images": ["img/broken.jpg"], "text": "broken", "n": 99})
    write_jsonl(data / "data.jsonl", rows)
    monkeypatch.setattr(local, "POOL_WORTH_SECONDS", 0.0)   # two worker processes, always
    log = logging.getLogger("imgjuicer")   # a CLI run earlier in the session may have
    log.addHandler(caplog.handler)          # stopped it from propagating to the root
    try:
        with caplog.at_level(logging.DEBUG, logger="imgjuicer"):
            made = _run(data / "data.jsonl", tmp_path / "workers", export)
    finally:
        log.removeHandler(caplog.handler)
    # the lines come from worker processes (spawned once torch is loaded in this process)
    assert re.search(r"starting 2 (forked|spawned) workers", caplog.text)
    monkeypatch.setattr(local.LocalExecutor, "lines_in_workers", False)
    ref = _run(data / "data.jsonl", tmp_path / "driver", export)

    assert made["ops"] == [{**o, "seconds": m["seconds"], "busy_seconds": m["busy_seconds"]}
                           for o, m in zip(ref["ops"], made["ops"])]
    got, want = _files(tmp_path / "workers"), _files(tmp_path / "driver")
    assert got.keys() == want.keys() and got == want
    counts = made["ops"]
    assert sum(o["errored"] for o in counts) == 4 and sum(o["filtered"] for o in counts) > 6
    assert 0 < made["kept"] < made["rows_in"]
    out = (tmp_path / "workers" / export).read_bytes()
    assert out == (tmp_path / "driver" / export).read_bytes() and out.count(b"sample") == \
        made["kept"]
