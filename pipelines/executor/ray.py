"""Ray executor: the same recipe on Ray Data; CPU ops as tasks, CUDA ops as actor pools.

The dataset lives as parquet block files under ``work_dir/checkpoint_ray``.  Ray Data schedules
one task (or actor call) per block; it runs the op (or a run of consecutive CPU mappers /
filters, fused in one pass) over the block and writes the pass's output block.  The driver only
counts statuses per op, writes the reports and the tracer, runs deduplicator grouping and
aggregators, and streams the export, one block at a time.  Finished passes and finished blocks
are not redone by a rerun.
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
from typing import Optional

from ops.base import OP
from pipelines.checkpoint import Checkpoint, fingerprints
from pipelines.compat import dataset_options, export_options
from pipelines.dataset import (export_batches, jsonl_line_export, prepare_table, public_rows,
                               read_rows)
from pipelines.executor import ray_stage as st
from pipelines.executor.base import Executor
from pipelines.executor.common import TRACE_WINDOW, op_kind
from pipelines.executor.ray_cluster import (ClusterInfo, OpPlan, connect, plan_op,
                                            ray_data_module, ship_custom_operators)
from pipelines.executor.ray_export import (LARGE_EXPORT_ROWS, export_sharded, folder_for,
                                           is_folder_export)
from pipelines.executor.ray_input import write_sharded_input
from pipelines.executor.ray_jsonl import rows_per_block, write_jsonl_input
from pipelines.executor.ray_tasks import run_tasks, warm_workers
from pipelines.report import OpCounts, RunReport
from pipelines.shards import is_sharded
from pipelines.tracer import trace_op

logger = logging.getLogger("imgjuicer")


class RayOpError(RuntimeError):
    """An op failed as a whole on Ray (not one sample): setup error, lost cluster, ..."""


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, recipe, ops: list[OP]):
        super().__init__(recipe, ops)
        self.run_key = uuid.uuid4().hex[:12]
        self.plans: list[OpPlan] = []
        self._warm: list = []  # warm-up tasks, kept so they are not cancelled

    def fuse_key(self, index: int):
        """Mappers / filters that run as tasks with the same resources share one Ray pass."""
        return self.plans[index].fuse_key

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
        info = ClusterInfo.current()
        self.plans = [plan_op(i, op, recipe.np, recipe.ray_require_gpus, info)
                      for i, op in enumerate(self.ops)]  # every resource problem before work
        ship_custom_operators(recipe.custom_operator_paths)
        tasks = [p.size for p in self.plans if not p.actors]
        if tasks:  # workers import what the tasks need while the driver prepares the run
            self._warm = warm_workers(sorted({type(op).__module__ for op in self.ops}) +
                                      [st.__name__, "pipelines.executor.ray_jsonl", "pandas"],
                                      min(max(tasks), int(info.total.get("CPU", 1))))
        report = RunReport(recipe.work_dir)
        self.fps = fingerprints(recipe)
        ckpt = Checkpoint(recipe.work_dir, self.fps, True,
                          name="checkpoint_ray" if recipe.use_checkpoint else "ray_stages")
        state = ckpt.last_done() if recipe.use_checkpoint else None
        if state is not None:
            files = st.stage_files(ckpt.data_path(state))
            rows_in = state["rows_in"]
            start = self.restore(state, report)
            rows = report.ops[-1].rows_out
            logger.info("resuming after op %d (%s) from %s", state["op_index"],
                        recipe.process[state["op_index"]][0], ckpt.dir)
        else:
            files, rows_in = self._input_blocks(ckpt.dir, info)
            rows, start = rows_in, 0
        groups = self.groups(start)
        logger.info("dataset %s: %d rows in %d blocks; %d ops in %d passes on Ray",
                    recipe.dataset_path, rows_in, len(files), len(self.ops), len(groups))
        for group in groups:
            t0 = time.time()
            work = self._work_dir(ckpt.dir, group[-1])
            if op_kind(self.ops[group[0]]) == "aggregator":
                counts = [self._aggregate(group[0], files, rows, ckpt.dir)]
                busy = [1.0]
            else:
                if rows:
                    last = group is groups[-1] and rows_in <= LARGE_EXPORT_ROWS
                    self._execute(group, files, ckpt.dir, self._part_export() if last else None)
                counts, busy = self._account(group, rows, work, report)
            self.add_timed(report, counts, busy, time.time() - t0)
            ckpt.save(group[-1], functools.partial(os.replace, work),
                      {"rows_in": rows_in, "counts": [asdict(c) for c in report.ops],
                       "executor": "ray"})
            files = st.stage_files(os.path.join(ckpt.dir, f"data_{group[-1]:03d}"))
            rows = counts[-1].rows_out
        export_path = self._export_target(rows)
        if export_path != recipe.export_path or is_folder_export(export_path):
            if export_options(recipe):
                logger.warning("export_shard_size / keep_stats_in_res_ds / keep_hashes_in_res_ds "
                               "apply to single-file exports; the parts in %s keep every column",
                               export_path)
            n = export_sharded(files, export_path, max(1, int(info.total.get("CPU", 1))))
        else:
            n = self._export_parts(files, export_path)
            if n is None:
                n = export_batches(st.iter_batches(files, "kept", bookkeeping=False),
                                   export_path, **export_options(recipe))
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
        min_rows = max([op.batch_size for op in self.ops] or [1])
        if self.recipe.dataset_path.lower().endswith(".jsonl") and \
                os.path.isfile(self.recipe.dataset_path):  # parsed by Ray workers
            per = rows_per_block(info.total.get("CPU", 1), min_rows, st.MAX_BLOCK_ROWS)
            read = write_jsonl_input(self.recipe.dataset_path, folder,
                                     self.recipe.image_columns, self.recipe.image_roots, per,
                                     max(1, int(info.total.get("CPU", 1))))
            if read is not None:
                with open(done, "w", encoding="utf-8") as fh:
                    fh.write(str(read[1]))
                return read
        table = prepare_table(read_rows(self.recipe.dataset_path,
                                        **dataset_options(self.recipe)),
                              self.recipe.dataset_path, self.recipe.image_columns,
                              self.recipe.image_roots)
        files = st.write_input(table, folder, info.total.get("CPU", 1), min_rows)
        with open(done, "w", encoding="utf-8") as fh:
            fh.write(str(table.num_rows))
        return files, table.num_rows

    def _part_export(self) -> Optional[dict]:
        """Export settings the last pass's workers write jsonl lines for: a single jsonl
        file, not split by size (the driver then only concatenates the lines)."""
        return jsonl_line_export(self.recipe.export_path, export_options(self.recipe))

    def _export_parts(self, files: list[str], path: str) -> Optional[int]:
        """The export as the concatenation of the lines the last pass's workers wrote per
        block, in block order; None when a block has none (an aggregator or dedup last, a
        run resumed from other settings): the driver then writes the export itself."""
        spec = self._part_export()
        parts = [st.export_part(f, spec) for f in files] if spec is not None else []
        if spec is None or not all(os.path.exists(p) for p in parts):
            return None
        os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        rows = 0
        with open(path + ".tmp", "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    data = fh.read()
                rows += data.count(b"\n")
                out.write(data)
        os.replace(path + ".tmp", path)
        return rows

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
    def _execute(self, group: list[int], files: list[str], root: str,
                 export: Optional[dict] = None) -> None:
        """Block k of ``files`` through the pass of ``group``, writing block k of the pass's
        output folder; blocks already written (an interrupted run) are not computed again.
        ``export``: the settings of the export lines the (last) pass writes per block."""
        plan = self.plans[group[0]]
        ops = [self.ops[j] for j in group]
        work = self._work_dir(root, group[-1])
        for j in group:
            _remove_stale(root, j, work)
        os.makedirs(work, exist_ok=True)
        todo = [f for f in files if not os.path.exists(os.path.join(work, os.path.basename(f)))]
        names = self.describe(group)
        logger.info("ops %s: %d blocks, %s", names, len(files), plan.text)
        if len(todo) < len(files):
            logger.info("ops %s: %d of %d blocks already done, resuming", names,
                        len(files) - len(todo), len(files))
        if not todo:
            return
        dedup = op_kind(ops[0]) == "deduplicator"  # its rows drop after grouping
        spec = st.PassSpec(group, work, os.path.basename(files[0]), self.trace_rows(),
                           reports=not dedup, export=None if dedup else export)
        failed = (f"process[{group[0]}] op '{ops[0].name}'"
                  + (f" (fused with {', '.join(o.name for o in ops[1:])})" if len(ops) > 1
                     else "") + " failed on Ray: ")
        try:
            if plan.actors:
                self._execute_on_actors(plan, ops, spec, todo)
            else:  # plain tasks: no Ray Data machinery for a pass of CPU ops
                fn = functools.partial(st.run_task, f"{self.run_key}:{group[0]}", ops, spec)
                for _ in run_tasks(fn, todo, plan.size, desc=f"ops {names}",
                                   **plan.map_args):
                    pass
        except Exception as exc:
            raise RayOpError(failed + _short_error(exc)) from exc

    @staticmethod
    def _execute_on_actors(plan: OpPlan, ops: list[OP], spec: st.PassSpec,
                           todo: list[str]) -> None:
        """A pass with a model op: an actor pool (Ray Data), each actor set up once."""
        ray_data = ray_data_module()
        args = dict(plan.map_args, fn_constructor_args=(ops, spec))
        ds = ray_data.from_items([{"src": f} for f in todo], override_num_blocks=len(todo))
        with warnings.catch_warnings():
            # Ray 2.60 names no parameter for task / actor-task retries yet; the generic
            # remote args it still accepts warn about their future removal.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
            ds = ds.map_batches(st.OpActor, batch_size=1, **args)
        for _ in ds.iter_batches(batch_size=None):
            pass

    def _account(self, group: list[int], rows: int, work: str,
                 report: RunReport) -> tuple[list[OpCounts], list[float]]:
        """Counts, dropped-row reports and trace of a pass whose output blocks are written;
        also each op's seconds measured inside the pass."""
        os.makedirs(work, exist_ok=True)
        out_files = st.stage_files(work)
        op = self.ops[group[0]]
        if op_kind(op) == "deduplicator" and out_files:
            st.apply_group(op, out_files)
        infos = st.pass_infos(out_files)
        counts = self.account(group, rows, st.tally_files(out_files), infos)
        for c in counts:
            parts = [st.report_parts(f, c.index) for f in out_files]
            if all(os.path.exists(p) for pair in parts for p in pair):
                report.write_dropped_parts(c, parts)  # written by the pass's workers
            else:
                report.write_dropped(c, st.iter_dropped(out_files, c.index))
        busy = [sum(i["seconds"][k] for i in infos) for k in range(len(group))]
        snapshots = next((i["trace"] for i in infos if "trace" in i), None)
        self.trace_pass(group, snapshots, functools.partial(st.dropped_head, out_files))
        return counts, busy

    def _aggregate(self, index: int, files: list[str], rows: int, root: str) -> OpCounts:
        """An aggregator on the driver over the kept rows; its output is its input."""
        op = self.ops[index]
        counts = OpCounts(index=index, op=op.name, kind="aggregator", rows_in=rows)
        work = self._work_dir(root, index)
        _remove_stale(root, index, work)
        before = []
        if self.recipe.open_tracer:
            head = next(st.iter_batches(files, "kept", batch_rows=TRACE_WINDOW,
                                        bookkeeping=False), None)
            before = list(public_rows(head)) if head else []
        counts.artifacts = op.run_aggregate(
            st.iter_batches(files, "kept", batch_rows=op.batch_size, bookkeeping=False))
        counts.kept = counts.rows_out = rows
        st.link_files(files, work)
        if self.recipe.open_tracer:
            trace_op(self.recipe.work_dir, index, op.name, before, before, [],
                     self.recipe.trace_num)
        return counts


def _remove_stale(root: str, index: int, keep: str) -> None:
    """Drop another recipe's half-done work for this op (its blocks must not be reused)."""
    prefix = f"work_{index:03d}_"
    for entry in os.listdir(root) if os.path.isdir(root) else []:
        path = os.path.join(root, entry)
        if entry.startswith(prefix) and path != keep:
            shutil.rmtree(path, ignore_errors=True)
    for tmp in glob.glob(os.path.join(keep, "*.tmp")):
        os.remove(tmp)


def _short_error(exc: BaseException) -> str:
    cause = exc
    while getattr(cause, "__cause__", None) is not None:
        cause = cause.__cause__
    text = str(cause).strip() or type(cause).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else type(cause).__name__
