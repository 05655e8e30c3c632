"""A fused pass: consecutive mappers / filters run over one batch in memory.

The batch is decoded into rows once, handed from op to op (each op sees only the rows the
previous one kept, ``op.batch_size`` at a time) and encoded once.  Every row that entered the
pass comes out of it, tagged with the op that decided its status (``Fields.op``), so each op's
``in = kept + filtered + errored`` is counted exactly from the output.  The first row of each
output batch carries ``Fields.batch_info``: the rows that entered each op and the seconds it
spent on the batch, measured inside the pass, and, for the batch that starts the dataset when tracing, what each op saw and
gave (the tracer's before / after rows).  Files decoded by several ops of the pass are decoded
once (``shared_decodes``); header facts are shared through ``read_header``'s cache.
"""
from __future__ import annotations

import json
import time
from typing import Iterable, Optional

from ops.base import OP, batch_of, dumps, rows_of
from ops.fields import BOOKKEEPING, Fields, Status
from ops.image.io import shared_decodes


def _public(rows: Iterable[dict]) -> list[dict]:
    """Detached copies of rows as users see them (bookkeeping dropped)."""
    return [json.loads(dumps({k: v for k, v in r.items() if k not in BOOKKEEPING}))
            for r in rows]


def run_pass(ops: list[OP], indices: list[int], batch: dict, trace_rows: int = 0) -> dict:
    """Storage batch in, storage batch out: the rows kept by the last op, then the rows each
    op dropped (fan-out children in place of their parents), with status, reason, op."""
    columns = [c for c in batch if c not in BOOKKEEPING]
    rows = rows_of({c: batch[c] for c in columns})
    dropped: list[dict] = []
    seconds: list[float] = []
    entered: list[int] = []
    trace: list[dict] = []
    # decoded pixels are worth keeping only for a later op of the pass; stats always are
    with shared_decodes(None if len(ops) > 1 else 0):
        for index, op in zip(indices, ops):
            before = _public(rows[:trace_rows]) if trace_rows else None
            entered.append(len(rows))
            t0 = time.perf_counter()
            out: list[dict] = []
            for start in range(0, len(rows), op.batch_size):
                out += op.run_rows(rows[start:start + op.batch_size])
            seconds.append(time.perf_counter() - t0)
            rows = []
            for r in out:
                if r[Fields.status] == Status.kept:
                    rows.append(r)
                else:
                    r[Fields.op] = index
                    dropped.append(r)
            if trace_rows:
                trace.append({"before": before, "after": _public(rows[:trace_rows])})
    for r in rows:
        r[Fields.op] = indices[-1]
    out_rows = rows + dropped
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


def batch_infos(values: Iterable[Optional[str]]) -> list[dict]:
    """The decoded ``Fields.batch_info`` entries of a pass's output column."""
    return [json.loads(v) for v in values if v]
