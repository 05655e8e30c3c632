"""What every executor shares: op kinds, the tracer window, status counting."""
from __future__ import annotations

import os

from ops.base import OP, Aggregator, Deduplicator, Filter, Mapper, RunContext, decode_dict, dumps
from ops.fields import Status

TRACE_WINDOW = 64  # rows compared before/after for the tracer


def bind_ops(recipe, ops: list[OP]) -> RunContext:
    """The run's context, given to every op (work_dir, dataset folder, recipe file)."""
    context = RunContext(work_dir=recipe.work_dir,
                         dataset_dir=os.path.dirname(recipe.dataset_path),
                         config_path=recipe.config_path)
    for op in ops:
        op.bind(context)
    return context


def op_kind(op: OP) -> str:
    for kind, cls in (("mapper", Mapper), ("filter", Filter), ("deduplicator", Deduplicator),
                      ("aggregator", Aggregator)):
        if isinstance(op, cls):
            return kind
    raise TypeError(f"{op!r} is not a Mapper, Filter, Deduplicator or Aggregator")


def set_counts(counts, kind: str, n_error: int, n_filtered: int, n_kept_rows: int) -> None:
    """Fill an OpCounts from the statuses an op wrote (fan-out: kept counts parents)."""
    counts.errored, counts.filtered, counts.rows_out = n_error, n_filtered, n_kept_rows
    if kind == "mapper":
        counts.kept = counts.rows_in - n_error - n_filtered
    else:
        counts.kept = n_kept_rows


def mark_group_decision(name: str, keep: bool, info, meta: str, status: str, reason):
    """A row's (meta, status, reason) after a deduplicator's ``group()`` decision: ``info``
    goes to ``meta[name]``; a dropped row is filtered with ``info`` as its reason."""
    if info is not None:
        m = decode_dict(meta)
        m[name] = info
        meta = dumps(m)
    if not keep:
        status = Status.filtered
        reason = f"{name}: {dumps(info) if info is not None else 'duplicate'}"
    return meta, status, reason
