"""The embedded default executor: HF ``datasets`` for storage, one batched map per pass.

Consecutive mappers / filters with the same worker settings run fused in one ``Dataset.map``
(``fused.run_pass``); the dataset is checkpointed after each pass, not after each op.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from dataclasses import asdict
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ops.base import OP, Deduplicator
from ops.fields import BOOKKEEPING, Fields, Status
from pipelines.checkpoint import Checkpoint, fingerprints
from pipelines.compat import dataset_options, export_options
from pipelines.dataset import (export_batches, jsonl_line_export, load_dataset, public_rows,
                               write_export_lines)
from pipelines.executor.base import Executor, tally_statuses
from pipelines.executor.common import TRACE_WINDOW, mark_group_decision, op_kind
from pipelines.executor.fused import Pass, batch_infos, run_pass
from pipelines.executor.workers import OpCall, pool_start, probe_seconds
from pipelines.report import OpCounts, RunReport
from pipelines.tracer import trace_op

logger = logging.getLogger("imgjuicer")

# Passes over up to this many rows make their report (and export) lines in the workers: on
# the 1,000,000-row header benchmark that is 19% faster but raises the driver's peak RSS from
# 633 to 895 MB (it reads the lines back from the pass's memory-mapped output), so larger
# passes leave the lines to the driver, which makes them from the stored rows.
LINES_MAX_ROWS = int(os.environ.get("IMGJUICER_LOCAL_LINES_ROWS", "250000"))

# Starting a worker pool costs about half a second; below this much estimated work a pass runs
# in this process (estimated from a probe of a few rows), above it on `np` workers.
POOL_WORTH_SECONDS = 1.5
PROBE_ROWS = 32
PROBE_SECONDS = 0.2


class LocalExecutor(Executor):
    name = "local"
    # the report lines of dropped rows (and, in the last pass, the export lines of a jsonl
    # export) are made by the pass where it runs, in the workers; False: by this process from
    # the stored rows afterwards (the same bytes, measured in tests, serially)
    lines_in_workers = True

    def fuse_key(self, index: int):
        """Ops share a pass when they run in the same place (workers or this process) with
        the same worker count and batch size: those are settings of the whole pass."""
        op = self.ops[index]
        return (op.uses_accelerator, op.num_proc, op.batch_size)

    # ---------------------------------------------------------------- helpers
    def _num_proc(self, ops: list[OP], indices: list[int], ds):
        """Workers for a CPU pass: ``np`` (or the ops' ``num_proc``), unless the whole pass
        is estimated to take less than starting the pool does."""
        if any(op.uses_accelerator for op in ops):
            return None  # model ops: one process per device (here: this one)
        n = min(ops[0].num_proc or self.recipe.np, len(ds))
        if n <= 1:
            return None
        # timed in a forked child: torch must not start here before workers fork (workers.py)
        if ops[0].num_proc is None and probe_seconds(self._estimate_seconds, (ops, indices),
                                                     ds) < POOL_WORTH_SECONDS:
            logger.debug("%s: little work, running in-process", self.describe(indices))
            return None
        return n

    @staticmethod
    def _estimate_seconds(pass_: tuple, ds) -> float:
        """Time the pass on single rows (the first one also warms imports and setup() up, so
        it is not counted) until PROBE_SECONDS pass or PROBE_ROWS rows are done; extrapolate.
        A heavy op is thus probed on one or two samples at most."""
        ops, indices = pass_
        times = []
        for i in range(min(PROBE_ROWS, len(ds))):
            t0 = time.perf_counter()
            run_pass(ops, indices, ds[i:i + 1])
            times.append(time.perf_counter() - t0)
            if sum(times) > PROBE_SECONDS:
                break
        per_row = (sum(times[1:]) / len(times[1:])) if len(times) > 1 else times[0]
        return per_row * len(ds)

    @staticmethod
    def _iter_batches(ds, size: int = 1000):
        for start in range(0, len(ds), size):
            yield ds[start:start + size]

    # ---------------------------------------------------------------- one pass
    def run_group(self, group: list[int], ds, report: RunReport, export: Optional[dict] = None):
        """Run a group of ops over ``ds``; returns the rows its last op kept, and with
        ``export`` (the last pass, a plain jsonl export: ``jsonl_line_export``) the export
        lines of those rows, made by the pass too (the pass's line column and its kept mask;
        None when the pass made none)."""
        t0 = time.time()
        ops = [self.ops[i] for i in group]
        if op_kind(ops[0]) == "aggregator":
            counts = OpCounts(index=group[0], op=ops[0].name, kind="aggregator",
                              rows_in=len(ds))
            before = list(public_rows(ds[:TRACE_WINDOW])) if self.recipe.open_tracer and \
                len(ds) else []
            counts.artifacts = ops[0].run_aggregate(
                ({c: b[c] for c in b} for b in self._iter_batches(ds, ops[0].batch_size)))
            counts.kept = counts.rows_out = len(ds)
            if self.recipe.open_tracer:
                trace_op(self.recipe.work_dir, group[0], ops[0].name, before, before, [],
                         self.recipe.trace_num)
            self.add_timed(report, [counts], [1.0], time.time() - t0)
            return ds, None
        out = ds
        if len(ds):
            import datasets
            datasets.disable_caching()
            # report (and export) lines are made in the pass, where the rows are; not for a
            # deduplicator, whose rows drop only after the whole-dataset grouping below, and
            # not for more rows than LINES_MAX_ROWS: the driver reads the lines back from the
            # pass's output, whose touched pages count in its resident memory
            lines = self.lines_in_workers and op_kind(ops[0]) != "deduplicator" and \
                len(ds) <= LINES_MAX_ROWS
            if not lines:
                export = None
            fn = Pass(ops, group, self.trace_rows(), ds[0][Fields.id], lines, export)
            num_proc = self._num_proc(ops, group, ds)
            if num_proc:  # spawned workers load the recipe's plugin files first
                fn = OpCall(fn, self.recipe.custom_operator_paths)
            with pool_start(num_proc):  # spawned, not forked, once torch is loaded here
                out = ds.map(fn, batched=True, batch_size=max(op.batch_size for op in ops),
                             num_proc=num_proc, remove_columns=ds.column_names,
                             load_from_cache_file=False, desc=self.describe(group))
            if op_kind(ops[0]) == "deduplicator":
                out = self._group(ops[0], out)
        table = out.data.table if len(out) else None
        lines = None
        if table is not None and Fields.line in table.column_names:
            lines = table.column(Fields.line)
            table = table.drop_columns([Fields.line])
        infos = batch_infos(table.column(Fields.batch_info).to_pylist()) \
            if table is not None else []
        counts = self.account(group, len(ds), _tally(table), infos)
        busy = [sum(i["seconds"][k] for i in infos) for k in range(len(group))]
        for c in counts:
            if lines is not None:
                report.write_lines(c, *_report_lines(table, lines, c.index))
            else:
                report.write_dropped(c, _dropped(table, c.index))
        snapshots = infos[0].get("trace") if infos else None
        self.trace_pass(group, snapshots, functools.partial(_dropped_head, table))
        kept, export_lines = out, None
        if table is not None:
            mask = pc.equal(table.column(Fields.status), Status.kept)
            if pc.sum(mask).as_py() != len(out):
                kept = out.select(pc.indices_nonzero(mask).to_numpy().astype(np.int64))
            kept = kept.remove_columns([c for c in BOOKKEEPING + (Fields.line,)
                                        if c in kept.column_names])
            if lines is not None and export is not None:
                export_lines = (lines, mask)
        self.add_timed(report, counts, busy, time.time() - t0)
        return kept, export_lines

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

    def _input_dir(self) -> str:
        return os.path.join(self.recipe.work_dir, "input")

    def _memory_mapped(self, ds):
        """The loaded dataset written once as Arrow files and opened memory-mapped: worker
        processes then map the file instead of receiving pickled copies of the table."""
        from datasets import load_from_disk

        path = self._input_dir()
        shutil.rmtree(path, ignore_errors=True)
        Checkpoint.quiet_save(ds.save_to_disk, path)
        return load_from_disk(path)

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
            start = self.restore(state, report)
            logger.info("resuming after op %d (%s) from %s", state["op_index"],
                        recipe.process[state["op_index"]][0], ckpt.dir)
        else:
            ds = self._memory_mapped(load_dataset(recipe.dataset_path, recipe.image_columns,
                                                  recipe.image_roots, **dataset_options(recipe)))
            rows_in = len(ds)
        groups = self.groups(start)
        logger.info("dataset %s: %d rows; %d ops in %d passes", recipe.dataset_path, rows_in,
                    len(self.ops), len(groups))
        datasets.disable_caching()
        export_lines = None      # from the last pass (none when the run resumes after it)
        for group in groups:
            ds, export_lines = self.run_group(
                group, ds, report,
                jsonl_line_export(recipe.export_path, export_options(recipe))
                if group is groups[-1] else None)
            ckpt.save(group[-1], ds.save_to_disk,
                      {"rows_in": rows_in, "counts": [asdict(c) for c in report.ops]})
        if export_lines is not None:
            n = write_export_lines(_lines_where(*export_lines), recipe.export_path)
        else:
            n = export_batches(self._iter_batches(ds), recipe.export_path,
                               **export_options(recipe))
        logger.info("exported %d rows to %s", n, recipe.export_path)
        shutil.rmtree(self._input_dir(), ignore_errors=True)
        return report.finish(rows_in, len(ds), recipe.export_path,
                             {"executor": "local", "project_name": recipe.project_name})


def _tally(table) -> dict:
    if table is None or table.num_rows == 0:
        return {}
    g = table.select([Fields.op, Fields.status]).group_by([Fields.op, Fields.status]) \
        .aggregate([([], "count_all")])
    return tally_statuses(zip(g.column(Fields.op).to_pylist(),
                              g.column(Fields.status).to_pylist(),
                              g.column("count_all").to_pylist()))


def _lines_where(lines, mask, step: int = 20_000):
    """The strings of ``lines`` where ``mask`` holds, in order, a slice at a time (the
    column may be larger than memory should hold at once)."""
    for start in range(0, len(lines), step):
        yield from lines.slice(start, step).filter(mask.slice(start, step)).to_pylist()


def _report_lines(table, lines, index: int) -> tuple:
    """The report lines (errors, filtered) op ``index`` dropped, in table order."""
    by_op = pc.equal(table.column(Fields.op), index)
    status = table.column(Fields.status)
    return tuple(_lines_where(lines, pc.and_(by_op, pc.equal(status, what)))
                 for what in (Status.error, Status.filtered))


def _dropped_table(table, index: int):
    if table is None:
        return None
    mask = pc.and_(pc.equal(table.column(Fields.op), index),
                   pc.not_equal(table.column(Fields.status), Status.kept))
    return table.filter(mask)


def _dropped(table, index: int, size: int = 1000):
    """Storage batches of the rows op ``index`` dropped."""
    sub = _dropped_table(table, index)
    if sub is None:
        return
    for rb in sub.to_batches(max_chunksize=size):
        yield pa.Table.from_batches([rb]).to_pydict()


def _dropped_head(table, index: int, n: int) -> list:
    sub = _dropped_table(table, index)
    if sub is None or n <= 0:
        return []
    head = sub.slice(0, n).to_pydict()
    return list(zip(public_rows(head), head.get(Fields.reason, [])))
