"""Per-op accounting shared by every executor: counts, error / filtered reports, summary."""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator, Optional

from ops.base import dumps
from ops.fields import Fields, Status
from .dataset import public_rows

logger = logging.getLogger("imgjuicer")


@dataclass
class OpCounts:
    index: int
    op: str
    kind: str
    rows_in: int = 0
    kept: int = 0          # input rows that went on (for a fan-out mapper: parents kept)
    filtered: int = 0
    errored: int = 0
    rows_out: int = 0      # rows handed to the next op (differs from kept only on fan-out)
    seconds: float = 0.0   # wall time; ops fused in one pass share it by busy_seconds
    busy_seconds: float = 0.0  # time inside the op, summed over batches and workers
    artifacts: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.rows_in != self.kept + self.filtered + self.errored:
            raise RuntimeError(f"{self.op}: in {self.rows_in} != kept {self.kept} + filtered "
                               f"{self.filtered} + errored {self.errored}")


def dropped_lines(op: str, index: int, batch: dict) -> tuple[list[str], list[str]]:
    """The report lines (errors, filtered) of the rows op ``index`` dropped in a storage
    batch: the full sample as users see it, the op and the error / reason."""
    errors: list[str] = []
    filtered: list[str] = []
    for _, is_error, line in dropped_records(op, index, batch):
        (errors if is_error else filtered).append(line)
    return errors, filtered


def dropped_records(op: str, index: int, batch: dict) -> Iterator[tuple[int, bool, str]]:
    """``(position in the batch, is an error, report line)`` of each row op ``index``
    dropped in a storage batch, in batch order."""
    statuses = batch[Fields.status]
    by_op = batch.get(Fields.op) or [index] * len(statuses)
    picked = [i for i, (st, by) in enumerate(zip(statuses, by_op))
              if by == index and st in (Status.error, Status.filtered)]
    for i, row in zip(picked, public_rows(batch, picked)):
        rec = {"id": row.get(Fields.id), "op": op, "op_index": index}
        is_error = statuses[i] == Status.error
        rec["error" if is_error else "reason"] = batch[Fields.reason][i]
        rec["sample"] = row
        yield i, is_error, dumps(rec) + "\n"


class RunReport:
    """Writes ``work_dir/report/<i>_<op>.{errors,filtered}.jsonl`` per op (so a rerun of one op
    overwrites only its own files), and at the end ``errors.jsonl``, ``filtered.jsonl`` and
    ``summary.json`` in work_dir."""

    def __init__(self, work_dir: str):
        self.work_dir = work_dir
        self.dir = os.path.join(work_dir, "report")
        os.makedirs(self.dir, exist_ok=True)
        self.ops: list[OpCounts] = []
        self.started = time.time()

    def _path(self, counts: OpCounts, what: str) -> str:
        return os.path.join(self.dir, f"{counts.index:03d}_{counts.op}.{what}.jsonl")

    def write_dropped(self, counts: OpCounts, batches: Iterable[dict]) -> None:
        """Record every errored / filtered row of one op (full sample + op + reason)."""
        with open(self._path(counts, "errors") + ".tmp", "w", encoding="utf-8") as ef, \
                open(self._path(counts, "filtered") + ".tmp", "w", encoding="utf-8") as ff:
            for b in batches:
                errors, filtered = dropped_lines(counts.op, counts.index, b)
                ef.writelines(errors)
                ff.writelines(filtered)
        self._publish(counts)

    def write_lines(self, counts: OpCounts, errors: Iterable[str],
                    filtered: Iterable[str]) -> None:
        """``write_dropped`` from report lines made elsewhere (a local pass's workers)."""
        with open(self._path(counts, "errors") + ".tmp", "w", encoding="utf-8") as ef, \
                open(self._path(counts, "filtered") + ".tmp", "w", encoding="utf-8") as ff:
            ef.writelines(errors)
            ff.writelines(filtered)
        self._publish(counts)

    def write_dropped_parts(self, counts: OpCounts, parts: Iterable[tuple[str, str]]) -> None:
        """``write_dropped`` from files of ``dropped_lines`` written elsewhere (Ray workers):
        ``(errors part, filtered part)`` per block, in order, copied as they are."""
        with open(self._path(counts, "errors") + ".tmp", "wb") as ef, \
                open(self._path(counts, "filtered") + ".tmp", "wb") as ff:
            for err_part, filt_part in parts:
                for src, out in ((err_part, ef), (filt_part, ff)):
                    with open(src, "rb") as fh:
                        shutil.copyfileobj(fh, out)
        self._publish(counts)

    def _publish(self, counts: OpCounts) -> None:
        for what in ("errors", "filtered"):
            os.replace(self._path(counts, what) + ".tmp", self._path(counts, what))

    def add(self, counts: OpCounts) -> None:
        counts.check()
        self.ops = [c for c in self.ops if c.index != counts.index] + [counts]
        self.ops.sort(key=lambda c: c.index)
        left = counts.rows_out
        logger.info("op %d %s: %.2fs, in %d -> kept %d, filtered %d, errored %d; %d samples "
                    "left", counts.index, counts.op, counts.seconds, counts.rows_in,
                    counts.kept, counts.filtered, counts.errored, left)

    def finish(self, rows_in: int, rows_out: int, export_path: str,
               extra: Optional[dict] = None) -> dict:
        """Merge per-op files, write summary.json, return the summary."""
        for what in ("errors", "filtered"):
            with open(os.path.join(self.work_dir, f"{what}.jsonl"), "w", encoding="utf-8") as out:
                for c in self.ops:
                    p = self._path(c, what)
                    if os.path.exists(p):
                        with open(p, encoding="utf-8") as fh:
                            out.writelines(fh)
        summary = {
            "rows_in": rows_in,
            "kept": rows_out,
            "filtered": sum(c.filtered for c in self.ops),
            "errored": sum(c.errored for c in self.ops),
            "fan_out": any(c.rows_out != c.kept for c in self.ops),
            "export_path": export_path,
            "errors_path": os.path.join(self.work_dir, "errors.jsonl"),
            "filtered_path": os.path.join(self.work_dir, "filtered.jsonl"),
            "seconds": round(time.time() - self.started, 3),
            "ops": [asdict(c) for c in self.ops],
        }
        if extra:
            summary.update(extra)
        with open(os.path.join(self.work_dir, "summary.json"), "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)
        return summary


def format_summary(summary: dict) -> str:
    """The end-of-run table: per op and in total, in = kept + filtered + errored."""
    lines = [f"{'#':>3}  {'op':<40} {'in':>8} {'kept':>8} {'filtered':>9} {'errored':>8} "
             f"{'out':>8} {'sec':>7}"]
    for c in summary["ops"]:
        lines.append(f"{c['index']:>3}  {c['op']:<40} {c['rows_in']:>8} {c['kept']:>8} "
                     f"{c['filtered']:>9} {c['errored']:>8} {c['rows_out']:>8} "
                     f"{c['seconds']:>7.2f}")
    total = (f"total: in {summary['rows_in']} = kept {summary['kept']} + filtered "
             f"{summary['filtered']} + errored {summary['errored']}")
    if summary.get("fan_out"):
        total = (f"total: in {summary['rows_in']} sources, out {summary['kept']} rows "
                 f"(an op fans out); filtered {summary['filtered']}, errored "
                 f"{summary['errored']}")
    lines.append(total)
    lines.append(f"result: {summary['export_path']}")
    if summary["errored"]:
        lines.append(f"errors: {summary['errors_path']}")
    if summary["filtered"]:
        lines.append(f"filtered: {summary['filtered_path']}")
    for c in summary["ops"]:
        for k, v in (c.get("artifacts") or {}).items():
            lines.append(f"{c['op']} {k}: {v}")
    return "\n".join(lines)
