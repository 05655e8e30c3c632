"""Ray executor: the same recipe on Ray Data; CPU ops as tasks, CUDA ops as actor pools.

The dataset lives as parquet block files under ``work_dir/checkpoint_ray``.  Ray Data schedules
one task (or actor call) per block; it runs the op (or a run of consecutive CPU mappers /
filters, fused) over the block and writes each op's output block.  The driver only counts
statuses, writes the reports and the tracer, runs deduplicator grouping and aggregators, and
streams the export, one block at a time.  Finished ops and finished blocks are not redone by
a rerun.
"""
from __future__ import annotations

import functools
import glob
import logging
import os
import shutil
import time
import uuid
import warnings
from dataclasses import asdict

from ops.base import OP
from ops.fields import Fields, Status
from pipelines.checkpoint import Checkpoint, fingerprints
from pipelines.compat import dataset_options, export_options
from pipelines.dataset import export_batches, prepare_table, public_rows, read_rows
from pipelines.executor import ray_stage as st
from pipelines.executor.common import TRACE_WINDOW, bind_ops, op_kind, set_counts
from pipelines.executor.ray_export import (LARGE_EXPORT_ROWS, export_sharded, folder_for,
                                           is_folder_export)
from pipelines.executor.ray_input import write_sharded_input
from pipelines.executor.ray_cluster import (ClusterInfo, OpPlan, connect, plan_op, quiet_ray_data,
                                            ship_custom_operators)
from pipelines.report import OpCounts, RunReport
from pipelines.shards import is_sharded
from pipelines.tracer import trace_op

logger = logging.getLogger("imgjuicer")


class RayOpError(RuntimeError):
    """An op failed as a whole on Ray (not one sample): setup error, lost cluster, ..."""


class RayExecutor:
    def __init__(self, recipe, ops: list[OP]):
        self.recipe = recipe
        self.ops = ops
        self.context = bind_ops(recipe, ops)
        self.run_key = uuid.uuid4().hex[:12]

    # ---------------------------------------------------------------- whole run
    def run(self) -> dict:
        import ray

        os.makedirs(self.recipe.work_dir, exist_ok=True)
        started = connect(self.recipe.ray_address)
        try:
            return self._run()
        finally:
            if started:
                ray.shutdown()

    def _run(self) -> dict:
        recipe = self.recipe
        quiet_ray_data(progress=not os.environ.get("TQDM_DISABLE"))
        info = ClusterInfo.current()
        plans = [plan_op(i, op, recipe.np, recipe.ray_require_gpus, info)
                 for i, op in enumerate(self.ops)]  # every resource problem before any work
        ship_custom_operators(recipe.custom_operator_paths)
        report = RunReport(recipe.work_dir)
        self.fps = fingerprints(recipe)
        ckpt = Checkpoint(recipe.work_dir, self.fps, True,
                          name="checkpoint_ray" if recipe.use_checkpoint else "ray_stages")
        state = ckpt.last_done() if recipe.use_checkpoint else None
        if state is not None:
            files = st.stage_files(ckpt.data_path(state))
            rows_in = state["rows_in"]
            report.ops = [OpCounts(**c) for c in state["counts"]]
            start = state["op_index"] + 1
            rows = report.ops[-1].rows_out
            logger.info("resuming after op %d (%s) from %s", state["op_index"],
                        recipe.process[state["op_index"]][0], ckpt.dir)
        else:
            files, rows_in = self._input_blocks(ckpt.dir, info)
            rows, start = rows_in, 0
        logger.info("dataset %s: %d rows in %d blocks; %d ops on Ray", recipe.dataset_path,
                    rows_in, len(files), len(self.ops))
        index = start
        while index < len(self.ops):
            group = self._fusable(index, plans)
            t0 = time.time()
            if rows and op_kind(self.ops[index]) != "aggregator":
                self._execute(group, plans[index], files, ckpt.dir)
            shares = st.split_seconds(time.time() - t0, [  # fused ops split their pass
                st.busy_seconds(st.stage_files(self._work_dir(ckpt.dir, j))) for j in group])
            for j, share in zip(group, shares):
                counts = self._account(j, files, rows, ckpt.dir, report, share)
                report.add(counts)
                ckpt.save(j, functools.partial(os.replace, self._work_dir(ckpt.dir, j)),
                          {"rows_in": rows_in, "counts": [asdict(c) for c in report.ops],
                           "executor": "ray"})
                files = st.stage_files(os.path.join(ckpt.dir, f"data_{j:03d}"))
                rows = counts.rows_out
            index = group[-1] + 1
        export_path = self._export_target(rows)
        if export_path != recipe.export_path or is_folder_export(export_path):
            if export_options(recipe):
                logger.warning("export_shard_size / keep_stats_in_res_ds / keep_hashes_in_res_ds "
                               "apply to single-file exports; the parts in %s keep every column",
                               export_path)
            n = export_sharded(files, export_path, max(1, int(info.total.get("CPU", 1))))
        else:
            n = export_batches(st.iter_batches(files, "kept", bookkeeping=False), export_path,
                               **export_options(recipe))
        logger.info("exported %d rows to %s", n, export_path)
        summary = report.finish(rows_in, n, export_path,
                                {"executor": "ray", "project_name": recipe.project_name})
        if not recipe.use_checkpoint:
            shutil.rmtree(ckpt.dir, ignore_errors=True)
        return summary

    def _input_blocks(self, root: str, info: ClusterInfo) -> tuple[list[str], int]:
        """The prepared dataset as parquet blocks; reused when an interrupted run of the same
        recipe already wrote them (its first op then resumes block by block)."""
        folder = os.path.join(root, f"data_input_{self.fps[0] if self.fps else 'none'}")
        done = os.path.join(folder, "_rows")
        if self.recipe.use_checkpoint and os.path.exists(done):
            with open(done, encoding="utf-8") as fh:
                return st.stage_files(folder), int(fh.read())
        shutil.rmtree(root, ignore_errors=True)
        if is_sharded(self.recipe.dataset_path):  # workers read the shards, not the driver
            rows = write_sharded_input(self.recipe.dataset_path, folder,
                                       self.recipe.image_columns, st.MAX_BLOCK_ROWS,
                                       max(1, int(info.total.get("CPU", 1))),
                                       self.recipe.image_roots)
            with open(done, "w", encoding="utf-8") as fh:
                fh.write(str(rows))
            return st.stage_files(folder), rows
        table = prepare_table(read_rows(self.recipe.dataset_path,
                                        **dataset_options(self.recipe)),
                              self.recipe.dataset_path, self.recipe.image_columns,
                              self.recipe.image_roots)
        min_rows = max([op.batch_size for op in self.ops] or [1])
        files = st.write_input(table, folder, info.total.get("CPU", 1), min_rows)
        with open(done, "w", encoding="utf-8") as fh:
            fh.write(str(table.num_rows))
        return files, table.num_rows

    def _export_target(self, rows: int) -> str:
        """``export_path``; a large result bound for one file goes to a folder of parts."""
        path = self.recipe.export_path
        if not is_folder_export(path) and rows > LARGE_EXPORT_ROWS:
            logger.warning("%d rows is more than %d: exporting parts + manifest into %s "
                           "instead of one file", rows, LARGE_EXPORT_ROWS, folder_for(path))
            return folder_for(path)
        return path

    def _work_dir(self, root: str, index: int) -> str:
        return os.path.join(root, f"work_{index:03d}_{self.fps[index]}")

    # ---------------------------------------------------------------- ops
    def _fusable(self, index: int, plans: list[OpPlan]) -> list[int]:
        """Consecutive mappers / filters that run as tasks with the same resources share one
        Ray pass (each still writes its own output, so accounting and resume stay per op)."""
        group = [index]
        if plans[index].fuse_key is None or op_kind(self.ops[index]) not in ("mapper", "filter"):
            return group
        while group[-1] + 1 < len(self.ops):
            j = group[-1] + 1
            if plans[j].fuse_key != plans[index].fuse_key or \
                    op_kind(self.ops[j]) not in ("mapper", "filter"):
                break
            group.append(j)
        return group

    def _execute(self, group: list[int], plan: OpPlan, files: list[str], root: str) -> None:
        """Block k of ``files`` through the ops of ``group``, writing block k of each op's
        output folder; blocks already written (an interrupted run) are not computed again."""
        import ray.data

        ops = [self.ops[j] for j in group]
        works = [self._work_dir(root, j) for j in group]
        for j, work in zip(group, works):
            _remove_stale(root, j, work)
            os.makedirs(work, exist_ok=True)
        todo = [f for f in files if not os.path.exists(os.path.join(works[-1],
                                                                    os.path.basename(f)))]
        names = ", ".join(f"{j}:{op.name}" for j, op in zip(group, ops))
        logger.info("ops %s: %d blocks, %s", names, len(files), plan.text)
        if len(todo) < len(files):
            logger.info("ops %s: %d of %d blocks already done, resuming", names,
                        len(files) - len(todo), len(files))
        if not todo:
            return
        if plan.actors:
            fn, extra = st.OpActor, {"fn_constructor_args": (ops, works)}
        else:
            key = f"{self.run_key}:{group[0]}"
            fn, extra = functools.partial(st.run_task, key, ops, works), {}
        args = dict(plan.map_args, **extra)
        if not plan.actors:  # no more tasks than blocks (Ray warns otherwise)
            args["compute"] = ray.data.TaskPoolStrategy(size=min(plan.size, len(todo)))
        ds = ray.data.from_items([{"src": f} for f in todo], override_num_blocks=len(todo))
        with warnings.catch_warnings():
            # Ray 2.60 names no parameter for task / actor-task retries yet; the generic
            # remote args it still accepts warn about their future removal.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
            ds = ds.map_batches(fn, batch_size=1, **args)
        try:
            for _ in ds.iter_batches(batch_size=None):
                pass
        except Exception as exc:
            raise RayOpError(f"process[{group[0]}] op '{ops[0].name}'"
                             + (f" (fused with {', '.join(o.name for o in ops[1:])})"
                                if len(ops) > 1 else "")
                             + f" failed on Ray: {_short_error(exc)}") from exc

    def _account(self, index: int, files: list[str], rows: int, root: str,
                 report: RunReport, seconds: float) -> OpCounts:
        """Counts, dropped-row reports and trace of one op whose output blocks are written."""
        op = self.ops[index]
        kind = op_kind(op)
        counts = OpCounts(index=index, op=op.name, kind=kind, rows_in=rows)
        t0 = time.time()
        work = self._work_dir(root, index)
        tracing = self.recipe.open_tracer
        before = [dict(r) for r in public_rows(_columnar(
            st.head_rows(files, "kept", TRACE_WINDOW)))] if tracing else []
        if kind == "aggregator":
            _remove_stale(root, index, work)
            counts.artifacts = op.run_aggregate(
                st.iter_batches(files, "kept", batch_rows=op.batch_size, bookkeeping=False))
            counts.kept = counts.rows_out = rows
            st.link_files(files, work)
        else:
            os.makedirs(work, exist_ok=True)
            out_files = st.stage_files(work)
            if kind == "deduplicator" and out_files:
                st.apply_group(op, out_files)
            c = st.count_statuses(out_files)
            set_counts(counts, kind, c[Status.error], c[Status.filtered], c[Status.kept])
            report.write_dropped(counts, st.iter_batches(out_files, "dropped"))
        if tracing:
            self._trace(index, op, before, st.stage_files(work))
        counts.seconds = round(seconds + time.time() - t0, 3)
        return counts

    def _trace(self, index: int, op: OP, before: list[dict], out_files: list[str]) -> None:
        limit = self.recipe.trace_num
        ids = {r.get(Fields.id) for r in before if r.get(Fields.id) is not None}
        after = [dict(r) for r in public_rows(_columnar(
            st.rows_by_id(out_files, ids, 4 * len(ids) or 1)))]
        dropped = []
        head = st.head_rows(out_files, "dropped", limit)
        for row, raw in zip(public_rows(_columnar(head)), head):
            dropped.append({"id": row.get(Fields.id), "sample": row,
                            "reason": raw.get(Fields.reason)})
        trace_op(self.recipe.work_dir, index, op.name, before, after, dropped, limit)


def _remove_stale(root: str, index: int, keep: str) -> None:
    """Drop another recipe's half-done work for this op (its blocks must not be reused)."""
    prefix = f"work_{index:03d}_"
    for entry in os.listdir(root) if os.path.isdir(root) else []:
        path = os.path.join(root, entry)
        if entry.startswith(prefix) and path != keep:
            shutil.rmtree(path, ignore_errors=True)
    for tmp in glob.glob(os.path.join(keep, "*.tmp")):
        os.remove(tmp)


def _columnar(rows: list[dict]) -> dict:
    cols: list = []
    for r in rows:
        for c in r:
            if c not in cols:
                cols.append(c)
    return {c: [r.get(c) for r in rows] for c in cols}


def _short_error(exc: BaseException) -> str:
    cause = exc
    while getattr(cause, "__cause__", None) is not None:
        cause = cause.__cause__
    text = str(cause).strip() or type(cause).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else type(cause).__name__
