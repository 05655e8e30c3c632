"""The op contract: OP, Mapper, Filter, Deduplicator, Aggregator.

Executors call only the ``run_*`` methods defined here; op authors implement the
``process_*`` / ``compute_*`` hooks.  A batch is columnar (dict of lists).  In storage,
``Fields.stats`` and ``Fields.meta`` are JSON strings (so any Arrow/Ray block can carry
them whatever an op writes); ops always see them as dicts.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional

from .fields import Fields, MetaKeys, Status
from .ranges import RangeDecisions

logger = logging.getLogger("imgjuicer")

DICT_COLUMNS = (Fields.stats, Fields.meta)


class OpError(Exception):
    """A per-sample failure with a message meant for the user."""


class OpAbort(RuntimeError):
    """A sample failed in an op whose ``skip_op_error`` is false: the run stops."""


@dataclass
class RunContext:
    """What an op may know about the run (never which executor runs it)."""

    work_dir: str = "."
    dataset_dir: str = "."
    config_path: Optional[str] = None       # the recipe file, for provenance only
    # in-memory results an aggregator hands to the aggregators after it (they all run on the
    # driver, in recipe order), e.g. the quality document of a codec study
    documents: dict = field(default_factory=dict)


def _json_default(obj):
    # numpy scalars / arrays and other array-likes written by ops
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj) -> str:
    return json.dumps(obj, default=_json_default, ensure_ascii=False, allow_nan=True)


def decode_dict(value) -> dict:
    if value is None or value == "" or value == "{}":
        return {}
    if isinstance(value, dict):
        return value
    return json.loads(value)


def rows_of(batch: dict) -> list[dict]:
    """Columnar batch (storage form) -> list of sample dicts (op form)."""
    cols = list(batch)
    n = len(batch[cols[0]]) if cols else 0
    dict_cols = [c for c in DICT_COLUMNS if c in batch]
    rows = [dict(zip(cols, values)) for values in zip(*(batch[c] for c in cols))] if n else []
    for row in rows:
        for c in dict_cols:
            row[c] = decode_dict(row[c])
    return rows


def batch_of(rows: list[dict], columns: Optional[Iterable[str]] = None) -> dict:
    """List of sample dicts (op form) -> columnar batch (storage form)."""
    cols: list[str] = list(columns) if columns is not None else []
    seen = set(cols)
    for r in rows:
        if len(r) != len(seen) or not seen.issuperset(r):
            for c in r:
                if c not in seen:
                    seen.add(c)
                    cols.append(c)
    out = {}
    for c in cols:
        values = [r.get(c) for r in rows]
        if c in DICT_COLUMNS:
            values = [dumps(v) if v else "{}" for v in values]
        out[c] = values
    return out


def _error_text(op_name: str, exc: BaseException) -> str:
    msg = str(exc) or type(exc).__name__
    if not isinstance(exc, OpError):
        msg = f"{type(exc).__name__}: {msg}"
    return f"{op_name}: {msg}"


class OP:
    """Base of every operator.

    Common parameters (accepted by every op, validated like the op's own):
    ``batch_size`` rows per batch (model ops choose a smaller default);
    ``num_proc`` worker processes (local executor, CPU ops; default: the recipe's ``np``, used
    when the op has enough work to pay for starting workers);
    ``num_cpus`` / ``num_gpus`` / ``memory`` (bytes) resources per Ray task or actor;
    ``accelerator`` "cpu" or "cuda" to override the class default;
    ``image_key`` / ``text_key`` the columns holding image paths and text;
    ``skip_op_error`` (default True) a failing sample is reported as an error and the run goes
    on; False stops the run at the first failing sample, naming it.
    """

    name: str = ""              # set by the registry
    accelerator: str = "cpu"    # "cuda": use a GPU when one exists, run as a model op
    batched: bool = False       # informational: True when the op implements *_batched
    # Models setup() loads: {attribute holding the model name: kind ("hf", "clip",
    # "ultralytics")}.  Checked for the whole recipe before any op runs
    # (ops/models/requirements.py); override required_models() for anything fancier.
    model_params: dict = {}
    extra: Optional[str] = None  # the optional extra its dependencies come from (ops/extras.py)

    def __init__(self, batch_size: int = 1000, num_proc: Optional[int] = None,
                 num_cpus: Optional[float] = None, num_gpus: Optional[float] = None,
                 memory: Optional[int] = None, accelerator: Optional[str] = None,
                 image_key: str = "images", text_key: str = "text",
                 skip_op_error: bool = True):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        for pname, value, low in (("num_proc", num_proc, 1), ("num_cpus", num_cpus, 0),
                                  ("num_gpus", num_gpus, 0), ("memory", memory, 1)):
            if value is not None and value < low:
                raise ValueError(f"{pname} must be >= {low}, got {value}")
        if accelerator is not None:
            if accelerator not in ("cpu", "cuda"):
                raise ValueError("accelerator must be 'cpu' or 'cuda'")
            self.accelerator = accelerator
        self.batch_size = batch_size
        self.num_proc = num_proc
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.memory = memory
        self.image_key = image_key
        self.text_key = text_key
        self.skip_op_error = skip_op_error
        self.context = RunContext()
        self._is_setup = False
        self.device = "cpu"

    # ------------------------------------------------------------------ lifecycle
    @property
    def uses_accelerator(self) -> bool:
        return self.accelerator == "cuda"

    def setup(self) -> None:
        """Load models here: called once per worker process or Ray actor, before any batch."""

    def required_models(self) -> list:
        """``ModelSpec`` of every model ``setup()`` will load (from ``model_params``)."""
        from .models.requirements import ModelSpec
        return [ModelSpec(str(getattr(self, attr)), kind, attr)
                for attr, kind in self.model_params.items() if getattr(self, attr, None)]

    def ensure_setup(self) -> None:
        if not self._is_setup:
            self.device = pick_device(self.accelerator)
            self.setup()
            self._is_setup = True

    def __getstate__(self):
        # Loaded models never travel: each worker calls setup() itself.
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_m_")}
        state["_is_setup"] = False
        return state

    def bind(self, context: RunContext) -> "OP":
        self.context = context
        return self

    # ------------------------------------------------------------------ helpers for ops
    def image_paths(self, sample: dict, key: Optional[str] = None,
                    none_ok: bool = False) -> list[str]:
        """The sample's image paths.  A column the dataset lacks is an error naming the
        columns it has (a misspelt ``image_key`` must not let every check pass on "no
        image"); a null value is ``[]`` with ``none_ok``, else an error."""
        key = key or self.image_key
        if key not in sample:
            have = ", ".join(c for c in sample if not c.startswith("__dj__")) or "none"
            raise OpError(f"the dataset has no column '{key}' (columns: {have}); set "
                          f"image_key to the column holding image paths")
        value = sample[key]
        if value is None:
            if none_ok:
                return []
            raise OpError(f"sample has no image ('{key}' is null)")
        return [value] if isinstance(value, str) else list(value)

    def first_image(self, sample: dict) -> str:
        """The sample's first image path (ops that look at one image per sample)."""
        paths = self.image_paths(sample)
        if not paths:
            raise OpError(f"sample has no image ('{self.image_key}' is an empty list)")
        return paths[0]

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


def pick_device(accelerator: str) -> str:
    """The torch device for this process: the GPU Ray or CUDA_VISIBLE_DEVICES gave us, else CPU."""
    if accelerator != "cuda":
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    if not torch.cuda.is_available():
        if os.environ.get("CUDA_VISIBLE_DEVICES"):
            logger.info("GPU assigned (CUDA_VISIBLE_DEVICES=%s) but torch sees no CUDA: using CPU",
                        os.environ["CUDA_VISIBLE_DEVICES"])
        return "cpu"
    # Ray sets CUDA_VISIBLE_DEVICES to the assigned GPU(s), so index 0 is ours.
    return "cuda:0"


def _copy_row(row: dict) -> dict:
    """A copy of a row that a failed hook call cannot have changed: the row and its
    stats / meta dicts are copied (values inside them are replaced by ops, not edited)."""
    out = dict(row)
    for c in DICT_COLUMNS:
        v = out.get(c)
        if isinstance(v, dict):
            out[c] = dict(v)
    return out


class _RowOp(OP):
    """Shared batch loop: errors are caught per sample, never per batch.

    ``run_rows(rows)`` works on op-form rows (dicts, stats / meta decoded) and returns them
    with ``Fields.status`` / ``Fields.reason`` set; ``run_batched(batch)`` is the same on a
    storage batch.  A fused pass hands the rows from op to op without re-encoding them."""

    def _isolate(self, rows: list[dict], fn, per_row: bool):
        """Run ``fn(list_of_rows) -> list`` on ``rows``.  With ``per_row`` (the op only has a
        single-sample hook) or when the batched call raises, call it once per row, on copies
        taken before the call (the failed call may have changed the rows in place), so only
        the failing sample is marked.  Returns ``[(indices, input_rows, outputs | None,
        error | None)]``; ``self._m_saved`` keeps the copies."""
        self._m_partial = {}
        if not per_row:
            saved = self._m_saved = [_copy_row(r) for r in rows]
            try:
                return [(range(len(rows)), rows, list(fn(rows)), None)]
            except Exception as exc:
                if len(rows) == 1:
                    return self._unless_stopping(
                        [(range(1), saved, None, _error_text(self.name, exc))])
                rows = saved
        groups = []
        self._m_saved = []
        for i, r in enumerate(rows):
            saved = _copy_row(r)
            self._m_saved.append(saved)
            try:
                groups.append(([i], [r], list(fn([r])), None))
            except Exception as exc:
                groups.append(([i], [saved], None, _error_text(self.name, exc)))
        return self._unless_stopping(groups)

    def _unless_stopping(self, groups):
        """With ``skip_op_error: false`` the first failing sample stops the run."""
        if not self.skip_op_error:
            for _, inputs, _, err in groups:
                if err is not None:
                    raise OpAbort(f"{err} (sample {inputs[0].get(Fields.id)!r}; the op's "
                                  "skip_op_error is false, so the run stops here)")
        return groups

    def remember(self, sample: dict, value) -> None:
        """Keep an expensive per-sample result while a batch is processed: when the batched
        hook raises (one bad sample), each sample is retried alone on fresh rows, and
        ``recall`` hands back what the failed call had already computed for it."""
        self._m_partial[sample.get(Fields.id)] = value

    def recall(self, sample: dict, default=None):
        return getattr(self, "_m_partial", {}).get(sample.get(Fields.id), default)

    def _map_rows(self, rows: list[dict], fn, per_row: bool) -> list[dict]:
        """Apply a rows -> rows hook; failing samples pass through marked as errors."""
        def ids_clash(inputs, outputs) -> bool:
            return len(outputs) != len(inputs) and \
                len({o.get(Fields.id) for o in outputs}) != len(outputs)

        groups = self._isolate(rows, fn, per_row)
        if len(groups) == 1 and len(groups[0][1]) > 1 and groups[0][3] is None and \
                ids_clash(groups[0][1], groups[0][2]):
            # one row at a time, on the rows as they came in: only the culprit errs
            groups = self._isolate(self._m_saved, fn, True)
        out_rows = []
        for _, inputs, outputs, err in groups:
            if err is None and ids_clash(inputs, outputs):
                err = (f"{self.name}: returned {len(outputs)} rows for {len(inputs)} without "
                       f"a distinct {Fields.id} on each (fan-out rows use '<parent>/<k>')")
            if err is not None:
                for r in inputs:
                    r[Fields.status], r[Fields.reason] = Status.error, err
                out_rows.extend(inputs)
                continue
            for o in outputs:
                o[Fields.status], o[Fields.reason] = Status.kept, ""
            out_rows.extend(outputs)
        return out_rows

    def run_rows(self, rows: list[dict]) -> list[dict]:
        raise NotImplementedError

    def run_batched(self, batch: dict) -> dict:
        """``run_rows`` on a storage batch (dict of lists, stats / meta as JSON)."""
        return batch_of(self.run_rows(rows_of(batch)), list(batch))

    @staticmethod
    def _overrides(obj, base, *names) -> bool:
        return any(getattr(type(obj), n) is not getattr(base, n) for n in names)


class Mapper(_RowOp):
    """Changes or adds columns.  Implement ``process_single(sample) -> sample`` or
    ``process_batched(samples: list[dict]) -> list[dict]``.  A batched mapper may return more
    rows than it got (fan-out); each output row then carries ``Fields.id`` of the form
    ``"<parent id>/<k>"``."""

    def process_single(self, sample: dict) -> dict:
        raise NotImplementedError(f"{type(self).__name__} implements neither process_single "
                                  "nor process_batched")

    def process_batched(self, samples: list[dict]) -> list[dict]:
        return [self.process_single(s) for s in samples]

    def run_rows(self, rows: list[dict]) -> list[dict]:
        self.ensure_setup()
        per_row = not self._overrides(self, Mapper, "process_batched")
        return self._map_rows(rows, self.process_batched, per_row)


class Filter(RangeDecisions, _RowOp):
    """Keeps or drops rows.  Implement ``compute_stats_single(sample) -> sample`` (write under
    ``sample[Fields.stats]``) and ``process_single(sample) -> bool | (bool, reason)``, or their
    ``_batched`` forms (``compute_stats_batched(samples) -> samples``,
    ``process_batched(samples) -> list[bool | (bool, reason)]``).

    Range filters decide with ``in_range(value, lo, hi)``, which honours the common filter
    parameters (Data-Juicer's): ``min_closed_interval`` / ``max_closed_interval`` (default
    True) say whether a value equal to the bound is kept; ``reversed_range`` keeps the values
    outside the range instead of inside.  With ``keep_all`` set (the analyzer does), stats are
    computed and the would-be decision is noted in ``meta.would_drop`` (``{op, id, reason}``),
    but every sample is kept."""

    keep_all: bool = False

    def __init__(self, min_closed_interval: bool = True, max_closed_interval: bool = True,
                 reversed_range: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.min_closed_interval = min_closed_interval
        self.max_closed_interval = max_closed_interval
        self.reversed_range = reversed_range

    def compute_stats_single(self, sample: dict) -> dict:
        return sample

    def compute_stats_batched(self, samples: list[dict]) -> list[dict]:
        return [self.compute_stats_single(s) for s in samples]

    def process_single(self, sample: dict):
        raise NotImplementedError(f"{type(self).__name__} implements neither process_single "
                                  "nor process_batched")

    def process_batched(self, samples: list[dict]) -> list:
        return [self.process_single(s) for s in samples]

    def _decide(self, samples: list[dict]) -> list:
        for s in samples:
            if not isinstance(s.get(Fields.stats), dict):
                s[Fields.stats] = decode_dict(s.get(Fields.stats))
        return self.process_batched(self.compute_stats_batched(samples))

    def run_rows(self, rows: list[dict]) -> list[dict]:
        self.ensure_setup()
        per_row = not self._overrides(self, Filter, "compute_stats_batched", "process_batched")
        out_rows = []
        for idx, inputs, outputs, err in self._isolate(rows, self._decide, per_row):
            if err is None and len(outputs) != len(inputs):
                err = (f"{self.name}: process_batched returned {len(outputs)} decisions for "
                       f"{len(inputs)} samples")
            for i, r, d in zip(idx, inputs, outputs if err is None else [None] * len(inputs)):
                out_rows.append(r)
                if err is not None:
                    r[Fields.status], r[Fields.reason] = Status.error, err
                    continue
                keep, reason = (d if isinstance(d, tuple) else (d, None))
                if keep:
                    r[Fields.status], r[Fields.reason] = Status.kept, ""
                    continue
                if reason is None:  # name what the op measured: stats it added or changed
                    before = decode_dict(self._m_saved[i].get(Fields.stats))
                    stats = r.get(Fields.stats) or {}
                    changed = {k: v for k, v in stats.items()
                               if before.get(k, _MISSING) != v}
                    shown = changed or stats
                    reason = ", ".join(f"{k}={_short(v)}" for k, v in shown.items()) or \
                        "rejected"
                if self.keep_all:
                    r.setdefault(Fields.meta, {}).setdefault(MetaKeys.would_drop, []).append(
                        {"op": self.name, "id": r.get(Fields.id), "reason": reason})
                    r[Fields.status], r[Fields.reason] = Status.kept, ""
                    continue
                r[Fields.status], r[Fields.reason] = Status.filtered, f"{self.name}: {reason}"
        return out_rows


_MISSING = object()


def _short(v) -> str:
    s = dumps(v)
    return s if len(s) <= 80 else s[:77] + "..."


class Deduplicator(_RowOp):
    """Drops near-copies.  Two phases: ``compute_hash_single(sample) -> sample`` (or
    ``_batched``) runs in parallel and writes a key under ``Fields.meta``/``Fields.stats``;
    then ``group(samples)`` sees every row of the dataset at once (only ``group_columns``
    are loaded, plus ``Fields.id``) and returns one ``(keep, info)`` per row.  ``info`` (a
    dict or None) is stored under ``meta[self.name]``; dropped rows are reported as filtered
    with it as their reason."""

    group_columns: tuple = (Fields.meta, Fields.stats)
    keep_all: bool = False   # analyzer: keep every row; meta[name].would_drop: the others' ids

    def compute_hash_single(self, sample: dict) -> dict:
        return sample

    def compute_hash_batched(self, samples: list[dict]) -> list[dict]:
        return [self.compute_hash_single(s) for s in samples]

    def group(self, samples: list[dict]) -> list[tuple[bool, Optional[dict]]]:
        raise NotImplementedError

    def run_rows(self, rows: list[dict]) -> list[dict]:
        self.ensure_setup()
        per_row = not self._overrides(self, Deduplicator, "compute_hash_batched")
        return self._map_rows(rows, self.compute_hash_batched, per_row)

    def run_group(self, columns: dict) -> tuple[list[bool], list[Optional[dict]]]:
        """Whole-dataset phase, run once on the driver."""
        rows = rows_of(columns)
        decisions = self.group(rows)
        if len(decisions) != len(rows):
            raise OpError(f"{self.name}.group returned {len(decisions)} decisions for "
                          f"{len(rows)} samples")
        keep, infos = [bool(k) for k, _ in decisions], [i for _, i in decisions]
        if self.keep_all:  # analyzer: keep every row, note which would have been dropped
            infos = [i if k else {**(i or {}), MetaKeys.would_drop: r.get(Fields.id)}
                     for k, i, r in zip(keep, infos, rows)]
            keep = [True] * len(keep)
        return keep, infos


class Aggregator(OP):
    """Sees the whole (filtered) dataset and writes artifacts; rows pass through unchanged.
    Implement ``aggregate_batched(samples)`` (called on the driver for every batch, in order)
    and ``finalize() -> dict`` (write files under ``self.context.work_dir``; return a summary
    such as the paths written)."""

    def aggregate_batched(self, samples: list[dict]) -> None:
        raise NotImplementedError

    def finalize(self) -> dict:
        return {}

    def run_aggregate(self, batches: Iterable[dict]) -> dict:
        self.ensure_setup()
        for b in batches:
            self.aggregate_batched(rows_of(b))
        return self.finalize() or {}
