"""JSON lines are read into Arrow chunk by chunk: the same table as reading them at once."""
import json

import pytest

from ops.fields import Fields
from pipelines import dataset


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_chunks_give_the_same_table(tmp_path, monkeypatch):
    rows = [{"images": [f"img/{i}.jpg"], "x": None if i < 3 else i * 0.5, "n": i,
             Fields.meta: {"k": i}} for i in range(7)]
    path = _write(tmp_path / "d.jsonl", rows)
    whole = dataset.prepare_table(dataset.read_rows(str(path)), str(path))
    monkeypatch.setattr(dataset, "JSON_CHUNK_ROWS", 2)
    chunked = dataset.prepare_table(dataset.read_rows(str(path)), str(path))
    assert chunked.to_pylist() == whole.to_pylist()
    got = chunked.to_pylist()
    assert [r[Fields.id] for r in got] == [str(i) for i in range(7)]
    assert got[4]["images"] == [str(tmp_path / "img" / "4.jpg")] and got[1]["x"] is None
    assert json.loads(got[5][Fields.meta]) == {"k": 5}


def test_mixed_types_across_chunks_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "JSON_CHUNK_ROWS", 2)
    path = _write(tmp_path / "d.jsonl", [{"x": 1}, {"x": 2}, {"x": "three"}])
    with pytest.raises(dataset.DatasetError, match="mixed types"):
        dataset.read_rows(str(path))
