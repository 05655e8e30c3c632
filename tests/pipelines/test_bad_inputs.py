"""The bad-input corpus, row by row: every sample is kept, filtered (with a readable reason)
or reported as an error naming what is wrong -- never silently passed, never a whole-run
abort.  (File-level inputs -- truncated, empty, text, bomb -- are in test_local_executor.)"""
import json
import os

import pytest
from PIL import Image

from ops.fields import Fields
from tests.conftest import read_jsonl, write_jsonl
from tests.pipelines.helpers import REPO, run_inprocess

BASIC = str(REPO / "tests" / "recipes" / "basic.yaml")
HEADER_OPS = [{"image_metadata_mapper": {}}, {"image_shape_filter": {"min_width": 40}},
              {"image_size_filter": {"min_size": "10"}}]


def _run(dataset, work, process, extra=()):
    return run_inprocess(["--config", BASIC, "--dataset_path", str(dataset), "--work_dir",
                          str(work), "--process", json.dumps(process), *extra])


def _outcomes(work) -> dict:
    """id -> (status, reason or error)."""
    out = {r[Fields.id]: ("kept", "") for r in read_jsonl(work / "result.jsonl")}
    out.update({r["id"]: ("filtered", r["reason"]) for r in read_jsonl(work / "filtered.jsonl")})
    out.update({r["id"]: ("error", r["error"]) for r in read_jsonl(work / "errors.jsonl")})
    return out


@pytest.fixture()
def corpus(tmp_path):
    d = tmp_path / "files"
    d.mkdir()
    Image.new("RGB", (64, 48), "red").save(d / "ok.png")
    Image.new("RGB", (20, 48), "blue").save(d / "narrow.png")
    (d / "zero.jpg").write_bytes(b"")
    (d / "text.png").write_text("not an image")
    return d


@pytest.mark.parametrize("column,image_key", [("image", None), ("images", "nope")])
def test_image_column_the_ops_do_not_read_is_an_error_not_a_pass(corpus, tmp_path, column,
                                                                 image_key):
    """A dataset whose images are under another column than the ops' image_key: every
    check used to see "no image" and keep zero-byte, text and missing files."""
    names = ["ok.png", "zero.jpg", "text.png", "missing.png"]
    write_jsonl(tmp_path / "d.jsonl", [{column: [str(corpus / n)]} for n in names])
    process = [{name: dict(params, **({"image_key": image_key} if image_key else {}))}
               for op in HEADER_OPS for name, params in op.items()]
    summary = _run(tmp_path / "d.jsonl", tmp_path / "o", process)
    assert summary["kept"] == 0 and summary["errored"] == len(names)
    for status, msg in _outcomes(tmp_path / "o").values():
        key = image_key or "images"
        assert status == "error" and f"no column '{key}'" in msg and "set image_key" in msg


def test_row_level_corpus(corpus, tmp_path):
    rows = [
        {"images": [str(corpus / "ok.png")]},            # 0 kept
        {"images": []},                                  # 1 no image: header checks keep it
        {"images": None},                                # 2 null: likewise
        {"images": [str(corpus / "narrow.png")]},        # 3 filtered, readable bound
        {"images": [str(corpus / "zero.jpg")]},          # 4 error
        {"images": [str(corpus / "text.png")]},          # 5 error
        {"images": [str(corpus / "missing.png")]},       # 6 error
        {"images": ["../" * 12 + "etc/passwd"]},         # 7 read (image_roots off): error
    ]
    write_jsonl(tmp_path / "d.jsonl", rows)
    summary = _run(tmp_path / "d.jsonl", tmp_path / "o", HEADER_OPS)
    got = _outcomes(tmp_path / "o")
    assert summary["rows_in"] == len(rows) == len(got)
    assert got["0"][0] == got["1"][0] == got["2"][0] == "kept"
    status, reason = got["3"]
    # an unset maximum is not printed as 9223372036854775807
    assert status == "filtered" and "width >= 40" in reason and "922337" not in reason
    assert "empty file" in got["4"][1] and "not an image" in got["5"][1]
    assert "file not found" in got["6"][1] and "not an image" in got["7"][1]


def test_empty_image_list_in_a_one_image_op(corpus, tmp_path):
    """images: [] used to raise "IndexError: list index out of range" in the grouper."""
    write_jsonl(tmp_path / "d.jsonl", [{"images": []}, {"images": [str(corpus / "ok.png")]}])
    _run(tmp_path / "d.jsonl", tmp_path / "o", [{"image_near_duplicate_grouper": {}}])
    got = _outcomes(tmp_path / "o")
    assert got["1"][0] == "kept"
    assert got["0"][0] == "error" and "'images' is an empty list" in got["0"][1]
    assert "IndexError" not in got["0"][1]


def test_folder_with_broken_symlinks(corpus, tmp_path):
    """A dangling symlink and a symlink loop: each is one errored sample; the run (and its
    checkpoint fingerprint) goes on."""
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.new("RGB", (64, 48)).save(folder / "a.png")
    os.symlink(folder / "gone.png", folder / "dangling.png")
    os.symlink(folder / "loop.jpg", folder / "loop.jpg")
    summary = _run(folder, tmp_path / "o", HEADER_OPS)
    got = _outcomes(tmp_path / "o")
    assert summary["rows_in"] == 3 and summary["kept"] == 1 and summary["errored"] == 2
    errors = sorted(msg for status, msg in got.values() if status == "error")
    assert "broken symlink" in errors[0] and "dangling.png" in errors[0]
    assert "loop.jpg" in errors[1] and "symbolic links" in errors[1]


class _FanOut:
    """Two children per sample, '<id>/0' and '<id>/1' -- except for v == 0, whose children
    clash (what duplicate input ids used to cause in the codec sweep)."""

    @staticmethod
    def make():
        from ops import Mapper

        class FanOutOneBad(Mapper):
            name = "fan_out_one_bad"

            def process_batched(self, samples):
                out = []
                for s in samples:
                    for k in range(2):
                        child = dict(s, k=k)
                        child[Fields.id] = s[Fields.id] + ("" if s["v"] == 0 else f"/{k}")
                        out.append(child)
                return out
        return FanOutOneBad()


def test_fan_out_id_clash_errs_only_its_own_row():
    """A batch whose fan-out ids clash used to error every row of it, innocent ones included."""
    from ops.base import batch_of
    from ops.fields import Status
    batch = batch_of([{"v": v, Fields.id: str(i), Fields.stats: {}, Fields.meta: {}}
                      for i, v in enumerate([3, 0, 5, 7])])
    out = _FanOut.make().run_batched(batch)
    rows = list(zip(out[Fields.id], out[Fields.status], out[Fields.reason]))
    errors = [r for r in rows if r[1] == Status.error]
    assert [r[0] for r in errors] == ["1"] and "without a distinct" in errors[0][2]
    assert sorted(r[0] for r in rows if r[1] == Status.kept) == \
        ["0/0", "0/1", "2/0", "2/1", "3/0", "3/1"]
