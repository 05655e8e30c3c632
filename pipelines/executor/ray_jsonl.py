"""Ray executor input for one JSON-lines file: Ray workers parse it in parallel.

The driver scans the file for line boundaries (no JSON parsing; two passes of a line loop,
a few per cent of the parse) and cuts it into byte ranges of whole lines, each starting at a
known row number.  One Ray task per range parses its lines exactly as the local executor's
reader does (``dataset.json_lines_table``: the same blank-line handling and the same UTF-8 and
JSON error messages, with the file's own line numbers), numbers its rows from the range's
first row and writes the prepared block.  What needs the whole dataset stays on the driver,
over column reads of the blocks: the dataset's own ids must be distinct, image paths must
stay inside ``image_roots``.  Blocks whose schemas differ (a column whose type changes
along the file) are given up: the driver then reads the file itself, and one reader promotes
the types across the file as the local executor does.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq

from ops.fields import Fields
from pipelines.dataset import (DEFAULT_IMAGE_COLUMNS, DatasetError, check_image_roots,
                               check_unique_ids, json_lines_table, prepare_table)
from pipelines.executor.ray_tasks import run_tasks

logger = logging.getLogger("imgjuicer")


def _blank(raw: bytes) -> bool:
    """A line the reader skips (``str.strip()`` leaves nothing); undecodable lines are not
    blank (their task reports them)."""
    return not raw.decode("utf-8", "surrogateescape").strip()


def scan(path: str, rows_per_block) -> Optional[tuple[list[tuple], int]]:
    """``([(start byte, end byte, first line number, first row), ...], rows)`` cutting the
    file into blocks of ``rows_per_block(rows)`` rows; None for a JSON array file."""
    with open(path, "rb") as fh:
        head = b""
        while not head:
            chunk = fh.read(65536)
            if not chunk:
                break
            head = chunk.lstrip()
        if head.startswith(b"["):
            return None
        fh.seek(0)
        rows = sum(1 for raw in fh if not _blank(raw))
        per = max(1, rows_per_block(rows))
        fh.seek(0)
        cuts, offset, row = [], 0, 0
        for n, raw in enumerate(fh, 1):
            if not _blank(raw):
                if row % per == 0:
                    cuts.append([offset, None, n, row])
                row += 1
            offset += len(raw)
    for k, cut in enumerate(cuts):
        cut[1] = cuts[k + 1][0] if k + 1 < len(cuts) else offset
    return [tuple(c) for c in cuts], rows


def _lines(data: bytes, first: int):
    """``(line number, raw line)`` of a byte range, lines ending in b"\\n" as a file yields them."""
    pieces = data.split(b"\n")
    for k, piece in enumerate(pieces):
        if k + 1 < len(pieces):
            yield first + k, piece + b"\n"
        elif piece:
            yield first + k, piece


def _read_range(path: str, folder: str, image_columns, cut: tuple) -> tuple:
    """One range -> its prepared block; ``(index, rows, schema, has own ids, error)``."""
    index, (start, end, line, row) = cut
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start)
        table = json_lines_table(Path(path), _lines(data, line))
        own_ids = Fields.id in table.column_names
        if image_columns and any(c not in table.column_names for c in image_columns):
            return index, table.num_rows, None, own_ids, ""  # only the whole file can tell
        table = prepare_table(table, path, image_columns, None, first_id=row, check_ids=False)
    except DatasetError as exc:
        return index, 0, None, False, str(exc)
    dest = os.path.join(folder, f"block-{index:06d}.parquet")
    tmp = f"{dest}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, dest)
    return index, table.num_rows, table.schema, own_ids, ""


def write_jsonl_input(path: str, folder: str, image_columns, image_roots, rows_per_block,
                      parallelism: int) -> Optional[tuple[list[str], int]]:
    """The file's prepared blocks in ``folder`` and the row count, parsed by Ray tasks; None
    when the driver should read it (a JSON array, no rows, or types that change along the
    file).  A bad line stops the run with the reader's error for the first bad line."""
    import functools

    found = scan(path, rows_per_block)
    if found is None or not found[1]:
        return None
    cuts, rows = found
    os.makedirs(folder, exist_ok=True)
    fn = functools.partial(_read_range, path, folder, image_columns)
    results = sorted(r for _, r in run_tasks(fn, list(enumerate(cuts)), parallelism,
                                             desc="reading the dataset"))
    errors = [r[4] for r in results if r[4]]
    if errors:
        raise DatasetError(errors[0])
    files = [os.path.join(folder, f"block-{r[0]:06d}.parquet") for r in results]
    schemas = [r[2] for r in results]
    if sum(r[1] for r in results) != rows or schemas[0] is None or \
            any(s != schemas[0] for s in schemas):
        logger.info("dataset %s: column types change along the file; reading it on the "
                    "driver", path)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    if any(r[3] for r in results):  # the dataset's own ids: distinct over the whole file
        check_unique_ids(_column(files, Fields.id).to_pylist())
    if image_roots is not None:
        cols = list(image_columns) if image_columns else [c for c in DEFAULT_IMAGE_COLUMNS
                                                          if c in schemas[0].names]
        check_image_roots(pa.table({c: _column(files, c) for c in cols + [Fields.id]}),
                          cols, image_roots)
    return files, rows


def _column(files: list[str], name: str) -> pa.ChunkedArray:
    chunks = []
    for f in files:
        with pq.ParquetFile(f) as pf:
            chunks += pf.read(columns=[name]).column(name).chunks
    return pa.chunked_array(chunks, pq.read_schema(files[0]).field(name).type)


def rows_per_block(n_cpus: float, min_rows: int, max_rows: int):
    """Rows per input block, as ``ray_stage.write_input`` cuts a table: about four blocks
    per CPU, no fewer rows than the largest op batch, at most ``max_rows``."""
    def per(n: int) -> int:
        return max(1, min(max(min_rows, math.ceil(n / max(1.0, 4 * n_cpus))), max_rows))
    return per
