"""A fused pass: consecutive mappers / filters run over one batch in memory.

The batch is decoded into rows once, handed from op to op (each op sees only the rows the
previous one kept) and encoded once.  Every row that entered the pass comes out of it, tagged
with the op that decided its status (``Fields.op``), so each op's ``in = kept + filtered +
errored`` is counted exactly from the output.  The first row of each output batch carries
``Fields.batch_info``: the rows that entered each op and the seconds it spent on the batch,
measured inside the pass, and, for the batch that starts the dataset when tracing, what each
op saw and gave (the tracer's before / after rows).  Files decoded by several ops of the pass
are decoded once (``io.shared_decodes``); header facts are shared through ``read_header``'s
cache.
"""
from __future__ import annotations

import json
import time
from typing import Iterable, Optional

from ops.base import OP, batch_of, dumps, rows_of
from ops.fields import BOOKKEEPING, Fields, Status
from ops.image import io


def _public(rows: Iterable[dict]) -> list[dict]:
    """Detached copies of rows as users see them (bookkeeping dropped)."""
    return [json.loads(dumps({k: v for k, v in r.items() if k not in BOOKKEEPING}))
            for r in rows]


PROBE_ROWS = 8  # rows a pass with several ops runs first, to see how much pixel data they decode


def _snap(into: list, rows: list[dict], limit: int) -> None:
    if len(into) < limit:
        into += _public(rows[:limit - len(into)])


def run_pass(ops: list[OP], indices: list[int], batch: dict, trace_rows: int = 0) -> dict:
    """Storage batch in, storage batch out: the rows kept by the last op, then the rows each
    op dropped (fan-out children in place of their parents), with status, reason, op.

    Rows go through the ops in chunks of at most the smallest op batch size.  When the ops
    decode pixels, a chunk is cut to what the shared decodes can hold (judged on a first
    chunk of PROBE_ROWS rows), so a later op finds the images an earlier one decoded."""
    columns = [c for c in batch if c not in BOOKKEEPING]
    rows = rows_of({c: batch[c] for c in columns})
    n_ops = len(ops)
    kept: list[dict] = []
    dropped: list[dict] = []
    seconds = [0.0] * n_ops
    entered = [0] * n_ops
    trace = [{"before": [], "after": []} for _ in ops] if trace_rows else []
    chunk = min(op.batch_size for op in ops)
    start = 0
    # decoded pixels are worth keeping only for a later op of the pass; stats always are
    budget = io.DECODE_CACHE_BYTES if n_ops > 1 else 0
    while start < len(rows):
        size = min(chunk, PROBE_ROWS) if budget and start == 0 else chunk
        decoded = io.counters["decoded_bytes"]
        part = rows[start:start + size]
        start += size
        with io.shared_decodes(budget):
            for pos, (index, op) in enumerate(zip(indices, ops)):
                if trace_rows:
                    _snap(trace[pos]["before"], part, trace_rows)
                entered[pos] += len(part)
                t0 = time.perf_counter()
                out: list[dict] = []
                for i in range(0, len(part), op.batch_size):
                    out += op.run_rows(part[i:i + op.batch_size])
                seconds[pos] += time.perf_counter() - t0
                part = []
                for r in out:
                    if r[Fields.status] == Status.kept:
                        part.append(r)
                    else:
                        r[Fields.op] = index
                        dropped.append(r)
                if trace_rows:
                    _snap(trace[pos]["after"], part, trace_rows)
        kept += part
        if budget and size < chunk:
            per_row = (io.counters["decoded_bytes"] - decoded) / max(1, size)
            if per_row > 0:
                chunk = max(1, min(chunk, int(budget // per_row)))
    for r in kept:
        r[Fields.op] = indices[-1]
    out_rows = kept + dropped
    if not out_rows:
        return _empty(columns)
    info = {"seconds": seconds, "rows_in": entered}
    if trace_rows:
        info["trace"] = trace
    result = batch_of(out_rows, columns + list(BOOKKEEPING))
    result[Fields.batch_info] = [dumps(info)] + [None] * (len(out_rows) - 1)
    return result


def _empty(columns: list[str]) -> dict:
    return {c: [] for c in columns + list(BOOKKEEPING)}


def add_lines(batch: dict, ops: list[OP], indices: list[int], export: Optional[dict]) -> dict:
    """Column ``Fields.line`` of a pass's output batch: each dropped row's report line and,
    with ``export`` (``export_rows`` settings), each kept row's export line; made where the
    pass ran, so the workers, not the driver, encode them."""
    from pipelines.dataset import export_rows
    from pipelines.report import dropped_records
    statuses = batch[Fields.status]
    lines = [""] * len(statuses)   # strings only: a column of None has no type to write
    for op, index in zip(ops, indices):
        for i, _, line in dropped_records(op.name, index, batch):
            lines[i] = line
    if export is not None:
        kept = [i for i, s in enumerate(statuses) if s == Status.kept]
        if kept:
            rows = {c: [batch[c][i] for i in kept] for c in batch if c not in BOOKKEEPING}
            for i, row in zip(kept, export_rows([rows], **export)):
                lines[i] = dumps(row) + "\n"
    batch[Fields.line] = lines
    return batch


class Pass:
    """A pass as ``Dataset.map``'s function (``run_batched(batch)``, the op interface
    ``workers.OpCall`` wraps): the batch that starts the dataset (its first row's id is
    ``first_id``) records the tracer's rows.  With ``lines`` the output carries the report
    lines of the dropped rows and, when ``export`` is given, the export lines of the kept ones
    (``add_lines``)."""

    def __init__(self, ops: list[OP], indices: list[int], trace_rows: int, first_id,
                 lines: bool = False, export: Optional[dict] = None):
        self.ops, self.indices, self.trace_rows, self.first_id = ops, indices, trace_rows, first_id
        self.lines, self.export = lines, export

    def run_batched(self, batch: dict) -> dict:
        ids = batch.get(Fields.id) or [None]
        first = self.trace_rows and ids[0] == self.first_id
        out = run_pass(self.ops, self.indices, batch, self.trace_rows if first else 0)
        return add_lines(out, self.ops, self.indices, self.export) if self.lines else out

    __call__ = run_batched


def batch_infos(values: Iterable[Optional[str]]) -> list[dict]:
    """The decoded ``Fields.batch_info`` entries of a pass's output column."""
    return [json.loads(v) for v in values if v]
