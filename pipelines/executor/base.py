"""What every executor shares: the run's op groups, per-op accounting, tracing, reporting.

An executor runs a recipe as a list of *groups*: consecutive mappers / filters that it can run
in one fused pass (``fused.run_pass``) form a group; every other op is a group of its own.  A
pass's output holds every row that entered it, tagged with the op that decided its status, so
``account`` turns status counts per op into exact ``OpCounts``, and ``trace`` writes the
tracer's examples from the snapshots the pass took.  Subclasses say which ops may share a pass
(``fuse_key``) and how a group runs on their storage.
"""
from __future__ import annotations

import logging
from typing import Iterable, Optional

from ops.base import OP
from ops.fields import Fields, Status
from pipelines.executor.common import bind_ops, op_kind, set_counts
from pipelines.report import OpCounts, RunReport
from pipelines.tracer import trace_op

logger = logging.getLogger("imgjuicer")

FUSABLE_KINDS = ("mapper", "filter")


class Executor:
    name = ""

    def __init__(self, recipe, ops: list[OP]):
        self.recipe = recipe
        self.ops = ops
        self.context = bind_ops(recipe, ops)

    # ---------------------------------------------------------------- groups
    def fuse_key(self, index: int) -> Optional[tuple]:
        """Ops with equal, non-None keys may share a pass; None: the op runs alone."""
        return None

    def fusion_enabled(self) -> bool:
        return getattr(self.recipe, "op_fusion", True)

    def groups(self, start: int = 0) -> list[list[int]]:
        """The ops from ``start`` on, as runs of consecutive ops that share a pass."""
        out: list[list[int]] = []
        for i in range(start, len(self.ops)):
            key = self.fuse_key(i) if self.fusion_enabled() and \
                op_kind(self.ops[i]) in FUSABLE_KINDS else None
            if out and key is not None and out[-1][1] == key:
                out[-1][0].append(i)
            else:
                out.append(([i], key))
        return [g for g, _ in out]

    def describe(self, group: list[int]) -> str:
        return ", ".join(f"{i}:{self.ops[i].name}" for i in group)

    # ---------------------------------------------------------------- accounting
    def account(self, group: list[int], rows_in: int, tally: dict,
                infos: list[dict]) -> list[OpCounts]:
        """``OpCounts`` of each op of a pass, from ``tally[(op index, status)] -> rows`` of its
        output (every row that entered the pass, tagged with the op that decided it) and the
        rows each op saw, as the pass's batches recorded them (``infos``)."""
        entered = [sum(i["rows_in"][pos] for i in infos) for pos in range(len(group))]
        entered.append(tally.get((group[-1], Status.kept), 0))  # after a dedup's grouping too
        out = []
        for pos, index in enumerate(group):
            op = self.ops[index]
            kind = op_kind(op)
            counts = OpCounts(index=index, op=op.name, kind=kind,
                              rows_in=rows_in if pos == 0 else entered[pos])
            set_counts(counts, kind, tally.get((index, Status.error), 0),
                       tally.get((index, Status.filtered), 0), entered[pos + 1])
            out.append(counts)
        return out

    @staticmethod
    def add_timed(report: RunReport, counts: list[OpCounts], busy: list[float],
                  wall: float) -> None:
        """Set each op's seconds and add it to the report.  ``busy`` is each op's time
        measured inside the pass (summed over batches and workers); the pass's wall time is
        shared out in those proportions."""
        total = sum(busy)
        for c, b in zip(counts, busy):
            c.seconds = round(wall * (b / total if total > 0 else 1.0 / len(counts)), 3)
            c.busy_seconds = round(b, 3)
            report.add(c)

    # ---------------------------------------------------------------- tracer
    def trace_pass(self, group: list[int], snapshots: Optional[list], dropped_head) -> None:
        """Tracer files of a pass's ops: before / after rows as the pass recorded them on
        the dataset's first batch, dropped rows (``dropped_head(index, n)`` -> public rows
        with their reasons) from its output."""
        if not self.recipe.open_tracer:
            return
        limit = self.recipe.trace_num
        for pos, index in enumerate(group):
            snap = snapshots[pos] if snapshots and pos < len(snapshots) else {}
            dropped = [{"id": row.get(Fields.id), "sample": row, "reason": reason}
                       for row, reason in dropped_head(index, limit)]
            trace_op(self.recipe.work_dir, index, self.ops[index].name,
                     snap.get("before") or [], snap.get("after") or [], dropped, limit)

    def trace_rows(self) -> int:
        from pipelines.executor.common import TRACE_WINDOW
        return TRACE_WINDOW if self.recipe.open_tracer else 0

    # ---------------------------------------------------------------- run
    @staticmethod
    def restore(state: dict, report: RunReport) -> int:
        """Counts of the ops a resumed run does not redo; returns the first op to run."""
        report.ops = [OpCounts(**c) for c in state["counts"]]
        return state["op_index"] + 1

    def run(self) -> dict:
        raise NotImplementedError


def tally_statuses(pairs: Iterable[tuple[int, str, int]]) -> dict:
    """``{(op index, status): rows}`` from ``(op index, status, rows)`` triples."""
    out: dict = {}
    for index, status, n in pairs:
        key = (int(index), status)
        out[key] = out.get(key, 0) + int(n)
    return out

