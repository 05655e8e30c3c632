"""Ray executor internals: the op adapter run on workers, and parquet stage files on the driver.

A dataset is a folder of parquet block files.  Each op turns block ``k`` of its input folder
into block ``k`` of its output folder (every row that entered the op, with its status); the
next op reads only the kept rows.  The driver only ever holds one block at a time.
"""
from __future__ import annotations

import glob
import math
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ops.base import DICT_COLUMNS, OP, Deduplicator, dumps
from ops.fields import BOOKKEEPING, Fields, Status
from pipelines.executor.base import tally_statuses
from pipelines.executor.common import mark_group_decision
from pipelines.executor.fused import batch_infos, run_pass
from pipelines.dataset import export_rows
from pipelines.report import dropped_lines

STRING_COLUMNS = (Fields.id, Fields.status, Fields.reason, Fields.batch_info) + \
    tuple(DICT_COLUMNS)
MAX_BLOCK_ROWS = 50_000

# ---------------------------------------------------------------------------- on workers
_WORKER_OPS: dict = {}  # op key -> op already set up in this worker process


def read_block(path: str, columns: Optional[list] = None) -> pa.Table:
    """A stage block file (``pq.read_table`` would import pyarrow.dataset, ~0.3 s per
    worker process, for one local file)."""
    with pq.ParquetFile(path) as pf:
        return pf.read(columns=columns)


def kept_input(table: pa.Table) -> pa.Table:
    """Rows the previous op kept, without its bookkeeping columns."""
    if Fields.status in table.column_names:
        table = table.filter(pc.equal(table[Fields.status], Status.kept))
    return table.drop_columns([c for c in BOOKKEEPING if c in table.column_names])


def to_table(batch: dict) -> pa.Table:
    cols = {}
    for c, values in batch.items():
        try:
            cols[c] = pa.array(values, pa.string() if c in STRING_COLUMNS else None)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise TypeError(f"column '{c}' holds values of mixed types: {exc}") from None
    return pa.table(cols)


@dataclass(frozen=True)
class PassSpec:
    """What a pass's worker needs besides its ops: op indices, the output folder, the first
    block's name (whose first batch records the tracer's rows, ``trace_rows``), whether it
    writes its dropped rows' report lines (``reports``; not for a deduplicator, whose rows
    drop after grouping) and, for the recipe's last pass, the export settings of a jsonl
    export it writes its kept rows' lines for (``export``)."""

    indices: list
    work: str
    first: str
    trace_rows: int = 0
    reports: bool = True
    export: Optional[dict] = None   # {"drop_stats", "drop_hashes"} of export_rows


def report_parts(block: str, index: int) -> tuple[str, str]:
    """Where a pass's worker writes the report lines (errors, filtered) of the rows op
    ``index`` dropped in output block ``block``."""
    return f"{block}.{index:03d}.errors.jsonl", f"{block}.{index:03d}.filtered.jsonl"


def export_part(block: str, export: dict) -> str:
    """Where the last pass's worker writes the export lines of block ``block``'s kept rows
    (named by the export settings, so other settings never reuse them)."""
    tag = "".join("1" if export.get(k) else "0" for k in ("drop_stats", "drop_hashes"))
    return f"{block}.export-{tag}.jsonl"


def process_block(ops: list[OP], spec: PassSpec, src: str) -> int:
    """One block file through a fused pass of ``ops``, ``batch`` rows at a time (the largest
    op batch size).  The pass's output block (every row that entered it, tagged with the op
    that decided it) appears atomically in ``spec.work``, so a retried or resumed block never
    leaves a half-written file, and a block already written is not computed again.  The
    report and export lines (``PassSpec``) are written beside it first: the driver then
    only concatenates them."""
    name = os.path.basename(src)
    dest = os.path.join(spec.work, name)
    if os.path.exists(dest):
        return pq.read_metadata(dest).num_rows
    table = kept_input(read_block(src))
    size = max(op.batch_size for op in ops)
    outs = []
    for i in range(0, table.num_rows, size):
        trace = spec.trace_rows if name == spec.first and i == 0 else 0
        outs.append(to_table(run_pass(ops, spec.indices,
                                      table.slice(i, size).to_pydict(), trace)))
    if outs:
        table = pa.concat_tables(outs, promote_options="permissive")
    else:
        table = table.append_column(Fields.status, pa.array([], pa.string())) \
            .append_column(Fields.reason, pa.array([], pa.string())) \
            .append_column(Fields.op, pa.array([], pa.int64())) \
            .append_column(Fields.batch_info, pa.array([], pa.string()))
    if spec.reports:
        for op, index in zip(ops, spec.indices):
            errors, filtered = [], []
            for b in _dropped_batches(table, index):
                e, f = dropped_lines(op.name, index, b)
                errors += e
                filtered += f
            for part, lines in zip(report_parts(dest, index), (errors, filtered)):
                _write_atomic(part, "".join(lines))
    if spec.export is not None:
        kept = _select(table, "kept")
        kept = kept.drop_columns([c for c in BOOKKEEPING if c in kept.column_names])
        rows = export_rows([kept.to_pydict()], **spec.export) if kept.num_rows else []
        _write_atomic(export_part(dest, spec.export), "".join(dumps(r) + "\n" for r in rows))
    tmp = f"{dest}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, dest)
    return table.num_rows


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _run_blocks(ops: list[OP], spec: PassSpec, batch: dict) -> dict:
    srcs = [str(s) for s in batch["src"]]
    return {"src": srcs, "rows": [process_block(ops, spec, s) for s in srcs]}


def run_task(key: str, ops: list[OP], spec: PassSpec, src: str) -> int:
    """Task entry point (one block file): ops are set up once per worker process, not once
    per task."""
    cached = _WORKER_OPS.get(key)
    if cached is None:
        if len(_WORKER_OPS) > 16:
            _WORKER_OPS.clear()
        for op in ops:
            op.ensure_setup()
        cached = _WORKER_OPS[key] = ops
    return process_block(cached, spec, src)


class OpActor:
    """Actor entry point: ``setup()`` (model loading) runs once, when the actor starts."""

    def __init__(self, ops: list[OP], spec: PassSpec):
        self.ops, self.spec = ops, spec
        for op in ops:
            op.ensure_setup()

    def __call__(self, batch: dict) -> dict:
        return _run_blocks(self.ops, self.spec, batch)


# ---------------------------------------------------------------------------- on the driver
def stage_files(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "*.parquet")))


def write_input(table: pa.Table, folder: str, n_cpus: float, min_rows: int) -> list[str]:
    """Split the prepared source table into parquet blocks sized for the cluster."""
    os.makedirs(folder, exist_ok=True)
    n = table.num_rows
    per = max(min_rows, math.ceil(n / max(1.0, 4 * n_cpus)))
    per = max(1, min(per, MAX_BLOCK_ROWS))
    files = []
    for k, start in enumerate(range(0, n, per)):
        path = os.path.join(folder, f"block-{k:06d}.parquet")
        pq.write_table(table.slice(start, per), path)
        files.append(path)
    return files


def _select(table: pa.Table, which: Optional[str]) -> pa.Table:
    if which is None or Fields.status not in table.column_names:
        return table if which != "dropped" else table.slice(0, 0)
    kept = pc.equal(table[Fields.status], Status.kept)
    return table.filter(kept if which == "kept" else pc.invert(kept))


def iter_batches(files: Iterable[str], which: Optional[str] = None, batch_rows: int = 1000,
                 bookkeeping: bool = True, columns: Optional[list] = None) -> Iterator[dict]:
    """Storage batches (dict of lists) of the ``kept`` / ``dropped`` / all rows, file by file."""
    for f in files:
        pf = pq.ParquetFile(f)
        names = pf.schema_arrow.names
        cols = None
        if columns is not None:
            cols = [c for c in columns if c in names]
            if which is not None and Fields.status in names and Fields.status not in cols:
                cols.append(Fields.status)
        for rb in pf.iter_batches(batch_size=batch_rows, columns=cols):
            t = _select(pa.Table.from_batches([rb]), which)
            if not bookkeeping:
                t = t.drop_columns([c for c in BOOKKEEPING if c in t.column_names])
            elif columns is not None:
                t = t.drop_columns([c for c in t.column_names if c not in columns])
            if t.num_rows:
                d = t.to_pydict()
                for c in columns or []:
                    d.setdefault(c, [None] * t.num_rows)
                yield d


def tally_files(files: Iterable[str]) -> dict:
    """``{(op index, status): rows}`` over a pass's output blocks (counted in Python: Arrow's
    group_by would import its query engine, pyarrow.dataset and pandas into the driver,
    which cost more than counting)."""
    counts: Counter = Counter()
    for f in files:
        t = read_block(f, [Fields.op, Fields.status])
        counts.update(zip(t.column(Fields.op).to_pylist(), t.column(Fields.status).to_pylist()))
    return tally_statuses((op, status, n) for (op, status), n in counts.items())


def pass_infos(files: Iterable[str]) -> list[dict]:
    """Every batch's timing (and the trace snapshots) a pass wrote into its blocks."""
    out: list[dict] = []
    for f in files:
        col = read_block(f, [Fields.batch_info]).column(Fields.batch_info)
        out += batch_infos(col.filter(pc.is_valid(col)).to_pylist())
    return out


def iter_dropped(files: Iterable[str], index: int, batch_rows: int = 1000) -> Iterator[dict]:
    """Storage batches of the rows op ``index`` dropped, block by block."""
    for f in files:
        yield from _dropped_batches(read_block(f), index, batch_rows)


def _dropped_batches(t: pa.Table, index: int, batch_rows: int = 1000) -> Iterator[dict]:
    t = t.filter(pc.and_(pc.equal(t[Fields.op], index),
                         pc.not_equal(t[Fields.status], Status.kept)))
    for rb in t.to_batches(max_chunksize=batch_rows):
        yield pa.Table.from_batches([rb]).to_pydict()


def dropped_head(files: Iterable[str], index: int, n: int) -> list:
    """The first ``n`` rows op ``index`` dropped, as (public row, reason)."""
    from pipelines.dataset import public_rows
    out: list = []
    for b in iter_dropped(files, index, batch_rows=max(1, n)):
        out += list(zip(public_rows(b), b[Fields.reason]))
        if len(out) >= n:
            break
    return out[:n]


def apply_group(op: Deduplicator, files: list[str]) -> None:
    """A deduplicator's whole-dataset phase on the driver, then mark the dropped rows.  The
    marked blocks are written beside the originals and swapped in only once all exist, so an
    interruption never leaves a half-marked dataset to be grouped again."""
    folder = os.path.dirname(files[0])
    marker = os.path.join(folder, "_grouped")
    if not os.path.exists(marker):
        for f in glob.glob(os.path.join(folder, "*.grouped")):
            os.remove(f)
        _mark_groups(op, files)
        open(marker, "w").close()
    for f in files:
        if os.path.exists(f + ".grouped"):
            os.replace(f + ".grouped", f)


def _mark_groups(op: Deduplicator, files: list[str]) -> None:
    cols = [Fields.id] + [c for c in op.group_columns if c != Fields.id]
    present = set()
    for f in files:
        present |= set(pq.read_schema(f).names)
    cols = [c for c in cols if c in present]
    gathered: dict = {c: [] for c in cols}
    for b in iter_batches(files, "kept", batch_rows=10_000, columns=cols):
        for c in cols:
            gathered[c].extend(b[c])
    keep, infos = op.run_group(gathered)
    pos = 0
    for f in files:
        t = read_block(f)
        statuses = t[Fields.status].to_pylist()
        metas = t[Fields.meta].to_pylist()
        reasons = t[Fields.reason].to_pylist()
        changed = False
        for j, status in enumerate(statuses):
            if status != Status.kept:
                continue
            k, info = keep[pos], infos[pos]
            pos += 1
            if info is not None or not k:
                metas[j], statuses[j], reasons[j] = mark_group_decision(
                    op.name, k, info, metas[j], statuses[j], reasons[j])
                changed = True
        if changed:
            for c, v in ((Fields.status, statuses), (Fields.meta, metas), (Fields.reason, reasons)):
                t = t.set_column(t.column_names.index(c), c, pa.array(v, pa.string()))
            pq.write_table(t, f + ".grouped")


def link_files(files: Iterable[str], folder: str) -> None:
    """An op that changes no row (aggregator): its output is its input, hard-linked."""
    os.makedirs(folder, exist_ok=True)
    for f in files:
        dest = os.path.join(folder, os.path.basename(f))
        try:
            os.link(f, dest)
        except OSError:
            shutil.copy2(f, dest)
