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


class Pass:
    """A pass as ``Dataset.map``'s function (``run_batched(batch)``, the op interface
    ``workers.OpCall`` wraps): the batch that starts the dataset (its first row's id is
    ``first_id``) records the tracer's rows."""

    def __init__(self, ops: list[OP], indices: list[int], trace_rows: int, first_id):
        self.ops, self.indices, self.trace_rows, self.first_id = ops, indices, trace_rows, first_id

    def run_batched(self, batch: dict) -> dict:
        ids = batch.get(Fields.id) or [None]
        first = self.trace_rows and ids[0] == self.first_id
        return run_pass(self.ops, self.indices, batch, self.trace_rows if first else 0)

    __call__ = run_batched


def batch_infos(values: Iterable[Optional[str]]) -> list[dict]:
    """The decoded ``Fields.batch_info`` entries of a pass's output column."""
    return [json.loads(v) for v in values if v]
