"""The local executor end to end: counts invariant, dataset formats, tracer, bad inputs."""
import json

import pytest

from ops.fields import Fields
from tests.conftest import PLUGINS, REPO, read_jsonl, write_jsonl
from tests.pipelines.helpers import cli, run_inprocess

BASIC = str(REPO / "tests" / "recipes" / "basic.yaml")


def _basic_args(small_images, out, export="result.jsonl", extra=()):
    return ["--config", BASIC, "--dataset_path", str(small_images / "data.jsonl"),
            "--work_dir", str(out), "--export_path", str(out / export),
            "--custom_operator_paths", json.dumps([str(PLUGINS / "my_user_op.py")]), *extra]


def test_every_sample_is_kept_filtered_or_errored(small_images, tmp_path):
    summary = run_inprocess(_basic_args(small_images, tmp_path))
    kept = read_jsonl(tmp_path / "result.jsonl")
    filtered = read_jsonl(tmp_path / "filtered.jsonl")
    errors = read_jsonl(tmp_path / "errors.jsonl")
    ids_in = [str(i) for i in range(25)]
    ids_out = [r[Fields.id] for r in kept] + [r["id"] for r in filtered] + [r["id"] for r in errors]
    assert sorted(ids_out) == sorted(ids_in)            # each exactly once
    assert summary["rows_in"] == 25
    assert summary["kept"] + summary["filtered"] + summary["errored"] == 25
    assert (summary["kept"], summary["filtered"], summary["errored"]) == \
        (len(kept), len(filtered), len(errors))
    for op in summary["ops"]:
        assert op["rows_in"] == op["kept"] + op["filtered"] + op["errored"]
    # the missing file is an error of the first op that touches it, with op name and path
    assert [e["id"] for e in errors] == ["24"]
    assert errors[0]["op"] == "image_metadata_mapper" and "file not found" in errors[0]["error"]
    # 40x40 images are too narrow; 300x60 too wide for ratio 4
    reasons = {r["op"] for r in filtered}
    assert reasons == {"image_shape_filter", "image_aspect_ratio_filter"}
    for r in kept:
        assert r[Fields.meta]["scaled"] == r["n"] * 3         # the custom op ran
        w, h = r[Fields.stats]["image_width"][0], r[Fields.stats]["image_height"][0]
        assert w >= 64 and 0.25 <= w / h <= 4.0
        assert r["images"][0].startswith(str(small_images))  # resolved against the dataset


def test_cli_prints_summary_and_tracer_writes_examples(small_images, tmp_path):
    r = cli(_basic_args(small_images, tmp_path))
    assert r.returncode == 0, r.stderr
    assert "total: in 25 = kept" in r.stdout
    trace = read_jsonl(tmp_path / "trace" / "001_image_shape_filter.jsonl")
    dropped = [t for t in trace if t["kind"] == "dropped"]
    assert dropped and all("outside width" in t["reason"] for t in dropped)
    changed = read_jsonl(tmp_path / "trace" / "004_my_user_op.jsonl")
    assert changed and changed[0]["changes"][Fields.meta]["scaled"]["before"] is None


@pytest.mark.parametrize("export", ["out.json", "out.parquet"])
def test_export_formats_round_trip(small_images, tmp_path, export):
    run_inprocess(_basic_args(small_images, tmp_path, export))
    from pipelines.dataset import load_dataset, read_rows
    ref = read_jsonl(tmp_path / "filtered.jsonl")
    table = read_rows(str(tmp_path / export))
    assert table.num_rows == 25 - len(ref) - 1
    ds = load_dataset(str(tmp_path / export))
    row = ds[0]
    assert json.loads(row[Fields.stats])["image_width"][0] >= 64   # stats survive the trip


def test_folder_of_images_dataset(small_images, tmp_path):
    r = cli(["--config", BASIC, "--dataset_path", str(small_images / "img"),
             "--work_dir", str(tmp_path), "--export_path", str(tmp_path / "r.jsonl"),
             "--process", '[{"image_shape_filter": {"min_width": 64}}]'])
    assert r.returncode == 0, r.stderr
    rows = read_jsonl(tmp_path / "r.jsonl")
    assert len(rows) == 20 and all(row["images"][0].endswith((".png", ".jpg")) for row in rows)


def test_bad_input_corpus_through_a_recipe(tmp_path):
    """Each awkward file gets the right handling when a whole recipe runs over it."""
    import numpy as np
    from PIL import Image
    from tests.ops.test_image_io import _png_header_only
    d = tmp_path
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(d / "ok.jpg")
    ok = (d / "ok.jpg").read_bytes()
    (d / "trunc.jpg").write_bytes(ok[: len(ok) // 2])
    (d / "zero.jpg").write_bytes(b"")
    (d / "text.png").write_text("nope")
    _png_header_only(d / "bomb.png", 20000, 20000)
    Image.new("RGB", (10000, 10)).save(d / "wide.png")
    Image.new("RGB", (1, 1)).save(d / "one.png")
    names = ["ok.jpg", "trunc.jpg", "zero.jpg", "text.png", "missing.png", "bomb.png",
             "wide.png", "one.png"]
    write_jsonl(d / "d.jsonl", [{"images": [n]} for n in names])
    run_inprocess(["--config", BASIC, "--dataset_path", str(d / "d.jsonl"), "--work_dir",
                   str(d / "o"), "--process",
                   '[{"image_metadata_mapper": {}}, {"image_shape_filter": {"min_width": 2}}]'])
    by_name = {}
    for r in read_jsonl(d / "o" / "errors.jsonl"):
        by_name[names[int(r["id"])]] = ("error", r["error"])
    for r in read_jsonl(d / "o" / "filtered.jsonl"):
        by_name[names[int(r["id"])]] = ("filtered", r["reason"])
    for r in read_jsonl(d / "o" / "result.jsonl"):
        by_name[names[int(r[Fields.id])]] = ("kept", "")
    assert by_name["ok.jpg"][0] == "kept" and by_name["wide.png"][0] == "kept"
    assert by_name["trunc.jpg"][0] == "kept"        # header-only ops do not decode pixels
    assert by_name["one.png"][0] == "filtered"
    assert "empty file" in by_name["zero.jpg"][1]
    assert "not an image" in by_name["text.png"][1]
    assert "file not found" in by_name["missing.png"][1]
    assert "exceeds the limit" in by_name["bomb.png"][1]
    assert len(by_name) == len(names)


def test_drops_first_seen_in_a_later_batch(small_images, tmp_path):
    """Batches before the first dropped row must not fix the reason column's type to null."""
    run_inprocess(_basic_args(small_images, tmp_path, extra=[
        "--process", '[{"image_shape_filter": {"min_width": 64, "batch_size": 1}}]']))
    kept = read_jsonl(tmp_path / "result.jsonl")
    filtered = read_jsonl(tmp_path / "filtered.jsonl")
    errors = read_jsonl(tmp_path / "errors.jsonl")
    assert len(kept) + len(filtered) + len(errors) == 25 and filtered and errors
