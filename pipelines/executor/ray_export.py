"""Sharded export for the Ray executor: one output file per block, written by Ray tasks, plus
``manifest.json`` listing every part with its row count (written last, by the driver: a
folder without a manifest is an unfinished export).

``export_path`` is a folder when it has no file suffix or ends in ``/``; a local folder or an
object-storage URL (``s3://bucket/prefix/``).  Parts are parquet unless the folder name ends
in ``.jsonl`` (``outputs/x.jsonl/``).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from ops.base import DICT_COLUMNS, dumps
from ops.fields import BOOKKEEPING
from ops.image.remote import filesystem, is_url
from pipelines.executor.ray_tasks import run_tasks

logger = logging.getLogger("imgjuicer")

MANIFEST = "manifest.json"
LARGE_EXPORT_ROWS = int(os.environ.get("IMGJUICER_SHARDED_EXPORT_ROWS", "1000000"))


def is_folder_export(path: str) -> bool:
    return path.endswith("/") or not PurePosixPath(path.rstrip("/")).suffix or \
        os.path.isdir(path)


def shard_format(path: str) -> str:
    return "jsonl" if path.rstrip("/").lower().endswith(".jsonl") else "parquet"


def folder_for(export_path: str) -> str:
    """The folder a large single-file export is written to instead: ``x.parquet`` ->
    ``x.parquet.parts/``."""
    return export_path.rstrip("/") + ".parts"


def _open_out(path: str):
    if is_url(path):
        fs, inner = filesystem(path)
        return fs.open_output_stream(inner)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return open(path, "wb")


def _kept_public(src: str) -> pa.Table:
    from pipelines.executor.ray_stage import _select, read_block
    t = _select(read_block(src), "kept")
    return t.drop_columns([c for c in BOOKKEEPING if c in t.column_names])


def _write_part(folder: str, fmt: str, src: str) -> tuple[str, int]:
    """The kept rows of one stage block as one part; ``(part name or "", rows)``."""
    name = os.path.basename(src).rsplit(".", 1)[0] + (".jsonl" if fmt == "jsonl"
                                                      else ".parquet")
    table = _kept_public(src)
    dest = f"{folder.rstrip('/')}/{name}"
    if table.num_rows:
        with _open_out(dest) as fh:
            if fmt == "parquet":
                pq.write_table(table, fh)
            else:
                d = table.to_pydict()
                cols = list(d)
                for i in range(table.num_rows):
                    row = {c: (json.loads(d[c][i]) if c in DICT_COLUMNS and d[c][i]
                               else d[c][i]) for c in cols}
                    fh.write((dumps(row) + "\n").encode("utf-8"))
    return (name if table.num_rows else ""), table.num_rows


def export_sharded(files: list[str], folder: str, parallelism: int) -> int:
    """Kept rows of every stage block -> one part per non-empty block + manifest; rows written."""
    import functools

    fmt = shard_format(folder)
    if not is_url(folder):
        os.makedirs(folder, exist_ok=True)
        old = os.path.join(folder, MANIFEST)
        if os.path.exists(old):
            os.remove(old)
    parts = [{"path": name, "rows": n} for _, (name, n) in
             run_tasks(functools.partial(_write_part, folder, fmt), files, parallelism,
                       desc="exporting parts") if name]
    parts.sort(key=lambda p: p["path"])
    rows = sum(p["rows"] for p in parts)
    manifest = {"format": fmt, "rows": rows, "parts": parts}
    with _open_out(f"{folder.rstrip('/')}/{MANIFEST}") as fh:
        fh.write(json.dumps(manifest, indent=1).encode("utf-8"))
    logger.info("exported %d rows as %d %s parts + %s in %s", rows, len(parts), fmt, MANIFEST,
                folder)
    return rows
