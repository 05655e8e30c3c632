"""The embedded default executor: HF ``datasets`` for storage and batched map."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict

import numpy as np

from ops.base import OP, Deduplicator
from ops.fields import BOOKKEEPING, Fields, Status
from pipelines.checkpoint import Checkpoint, fingerprints
from pipelines.compat import dataset_options, export_options
from pipelines.dataset import export_batches, load_dataset, public_rows
from pipelines.executor.common import (TRACE_WINDOW, bind_ops, mark_group_decision, op_kind,
                                       set_counts)
from pipelines.executor.workers import OpCall, pool_start, probe_seconds
from pipelines.report import OpCounts, RunReport
from pipelines.tracer import trace_op

logger = logging.getLogger("imgjuicer")

# Starting a worker pool costs about half a second; below this much estimated work an op runs
# in this process (estimated from a probe of a few rows), above it on `np` workers.
POOL_WORTH_SECONDS = 1.5
PROBE_ROWS = 32
PROBE_SECONDS = 0.2


class LocalExecutor:
    def __init__(self, recipe, ops: list[OP]):
        self.recipe = recipe
        self.ops = ops
        self.context = bind_ops(recipe, ops)

    # ---------------------------------------------------------------- helpers
    def _num_proc(self, op: OP, ds):
        """Workers for a CPU op: ``np`` (or the op's ``num_proc``), unless the whole op is
        estimated to take less than starting the pool does."""
        if op.uses_accelerator:
            return None  # model ops: one process per device (here: this one)
        n = op.num_proc or self.recipe.np
        n = min(n, len(ds))
        if n <= 1:
            return None
        # timed in a forked child: torch must not start here before workers fork (workers.py)
        if op.num_proc is None and probe_seconds(self._estimate_seconds, op, ds) < \
                POOL_WORTH_SECONDS:
            logger.debug("%s: little work, running in-process", op.name)
            return None
        return n

    @staticmethod
    def _estimate_seconds(op: OP, ds) -> float:
        """Time the op on single rows (the first one also warms imports and setup() up, so it
        is not counted) until PROBE_SECONDS pass or PROBE_ROWS rows are done; extrapolate.
        A heavy op is thus probed on one or two samples at most."""
        times = []
        for i in range(min(PROBE_ROWS, len(ds))):
            t0 = time.perf_counter()
            op.run_batched(ds[i:i + 1])
            times.append(time.perf_counter() - t0)
            if sum(times) > PROBE_SECONDS:
                break
        per_row = (sum(times[1:]) / len(times[1:])) if len(times) > 1 else times[0]
        return per_row * len(ds)

    def _map(self, ds, fn, op: OP, desc: str):
        import datasets
        if len(ds) == 0:
            return ds
        datasets.disable_caching()
        num_proc = self._num_proc(op, ds)
        if num_proc and fn == op.run_batched:
            fn = OpCall(op, self.recipe.custom_operator_paths)
        with pool_start(num_proc):  # spawned, not forked, once torch is loaded here
            return ds.map(fn, batched=True, batch_size=op.batch_size, num_proc=num_proc,
                          remove_columns=ds.column_names, load_from_cache_file=False, desc=desc)

    @staticmethod
    def _iter_batches(ds, size: int = 1000):
        for start in range(0, len(ds), size):
            yield ds[start:start + size]

    def _split(self, ds, counts: OpCounts, report: RunReport):
        """Record dropped rows, keep the rest, drop bookkeeping columns."""
        statuses = np.asarray(ds[Fields.status]) if len(ds) else np.asarray([], dtype=object)
        kept_mask = statuses == Status.kept
        set_counts(counts, counts.kind, int((statuses == Status.error).sum()),
                   int((statuses == Status.filtered).sum()), int(kept_mask.sum()))
        dropped_idx = np.flatnonzero(~kept_mask)
        dropped = ds.select(dropped_idx) if len(dropped_idx) else None
        report.write_dropped(counts, self._iter_batches(dropped) if dropped else [])
        kept = ds.select(np.flatnonzero(kept_mask)) if counts.rows_out != len(ds) else ds
        kept = kept.remove_columns([c for c in BOOKKEEPING if c in kept.column_names])
        return kept, dropped

    # ---------------------------------------------------------------- one op
    def run_op(self, index: int, op: OP, ds, report: RunReport):
        kind = op_kind(op)
        counts = OpCounts(index=index, op=op.name, kind=kind, rows_in=len(ds))
        t0 = time.time()
        before = list(public_rows(ds[:TRACE_WINDOW])) if self.recipe.open_tracer and len(ds) \
            else []
        if kind == "aggregator":
            counts.artifacts = op.run_aggregate(
                ({c: b[c] for c in b} for b in self._iter_batches(ds, op.batch_size)))
            counts.kept = counts.rows_out = len(ds)
            out, dropped = ds, None
        else:
            ds = self._map(ds, op.run_batched, op, f"{index}:{op.name}")
            if kind == "deduplicator":
                ds = self._group(op, ds)
            out, dropped = self._split(ds, counts, report)
        counts.seconds = round(time.time() - t0, 3)
        if self.recipe.open_tracer:
            dropped_recs = []
            if dropped is not None:
                head = dropped[: self.recipe.trace_num]
                dropped_recs = [{"id": row.get(Fields.id), "sample": row, "reason": reason}
                                for row, reason in zip(public_rows(head), head[Fields.reason])]
            trace_op(self.recipe.work_dir, index, op.name, before,
                     list(public_rows(out[:TRACE_WINDOW])) if len(out) else [], dropped_recs,
                     self.recipe.trace_num)
        return out, counts

    def _group(self, op: Deduplicator, ds):
        """Whole-dataset grouping phase of a deduplicator, on this process."""
        statuses = np.asarray(ds[Fields.status])
        ok = np.flatnonzero(statuses == Status.kept)
        cols = [Fields.id] + [c for c in op.group_columns if c in ds.column_names and
                              c != Fields.id]
        sub = ds.select(ok).select_columns(cols)
        keep, infos = op.run_group(sub.to_dict())
        updates = {}
        for pos, k, info in zip(ok.tolist(), keep, infos):
            if info is not None or not k:
                updates[pos] = (k, info)
        if not updates:
            return ds
        name = op.name

        def apply(batch, indices):
            metas, sts, reasons = batch[Fields.meta], batch[Fields.status], batch[Fields.reason]
            for j, idx in enumerate(indices):
                upd = updates.get(idx)
                if upd is None:
                    continue
                metas[j], sts[j], reasons[j] = mark_group_decision(name, *upd, metas[j], sts[j],
                                                                   reasons[j])
            return {Fields.meta: metas, Fields.status: sts, Fields.reason: reasons}

        return ds.map(apply, batched=True, with_indices=True, batch_size=1000,
                      load_from_cache_file=False, desc=f"{name}: mark duplicates")

    # ---------------------------------------------------------------- whole run
    def run(self) -> dict:
        import datasets
        from datasets import load_from_disk

        recipe = self.recipe
        os.makedirs(recipe.work_dir, exist_ok=True)
        report = RunReport(recipe.work_dir)
        ckpt = Checkpoint(recipe.work_dir, fingerprints(recipe), recipe.use_checkpoint)
        state = ckpt.last_done()
        start = 0
        if state is not None:
            ds = load_from_disk(ckpt.data_path(state))
            rows_in = state["rows_in"]
            for c in state["counts"]:
                report.ops.append(OpCounts(**c))
            start = state["op_index"] + 1
            logger.info("resuming after op %d (%s) from %s", state["op_index"],
                        recipe.process[state["op_index"]][0], ckpt.dir)
        else:
            ds = load_dataset(recipe.dataset_path, recipe.image_columns, recipe.image_roots,
                              **dataset_options(recipe))
            rows_in = len(ds)
        logger.info("dataset %s: %d rows; %d ops", recipe.dataset_path, rows_in, len(self.ops))
        datasets.disable_caching()
        for index in range(start, len(self.ops)):
            op = self.ops[index]
            ds, counts = self.run_op(index, op, ds, report)
            report.add(counts)
            ckpt.save(index, ds.save_to_disk,
                      {"rows_in": rows_in, "counts": [asdict(c) for c in report.ops]})
        n = export_batches(self._iter_batches(ds), recipe.export_path, **export_options(recipe))
        logger.info("exported %d rows to %s", n, recipe.export_path)
        return report.finish(rows_in, len(ds), recipe.export_path,
                             {"executor": "local", "project_name": recipe.project_name})
