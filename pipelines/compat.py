"""Data-Juicer recipes run unchanged: its recipe keys and common op parameters are accepted.

Keys that mean something here are mapped onto ours (``executor_type: default``, ``text_keys``,
``cpu_required`` ...); the ones with no meaning here are accepted and named in one warning per
run.  The mapping table is ``docs/data-juicer.md``.  Every key is one Data-Juicer's config
schema (``data_juicer/config/config.py``, ``ops/base_op.py``) knows.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

logger = logging.getLogger("imgjuicer")

EXPORT_TYPES = ("jsonl", "json", "parquet")
DEFAULT_PERCENTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

# recipe keys of Data-Juicer's schema that imgjuicer maps (type, as its parser declares it)
RECIPE_MAPPED: dict[str, Any] = {
    "text_keys": Union[str, list[str]], "image_key": str, "skip_op_error": bool,
    "export_type": str, "export_shard_size": int, "keep_stats_in_res_ds": bool,
    "keep_hashes_in_res_ds": bool, "suffixes": Union[str, list[str]],
    "dataset": Union[dict, list[dict]], "validators": list[dict], "percentiles": list[float],
    "export_original_dataset": bool, "save_stats_in_one_file": bool, "debug": bool,
    "auto": bool, "auto_num": int,
}
# recipe keys accepted with no effect here, and why
RECIPE_IGNORED: dict[str, tuple[Any, str]] = {
    "generated_dataset_config": (dict, "generated datasets"),
    "export_in_parallel": (bool, "the export streams in one pass"),
    "export_extra_args": (dict, "WebDataset-style export options"),
    "image_bytes_key": (str, "images are read from paths"),
    "image_special_token": (str, "no special tokens in text"),
    "audio_key": (str, "no audio"), "audio_special_token": (str, "no audio"),
    "video_key": (str, "no video"), "video_special_token": (str, "no video"),
    "eoc_special_token": (str, "no chunked text"),
    "turbo": (bool, "Ray batch-size-1 mode"),
    "use_cache": (bool, "the datasets cache is always off; use_checkpoint resumes"),
    "ds_cache_dir": (str, "the datasets cache is always off"),
    "cache_compress": (str, "the datasets cache is always off"),
    "temp_dir": (str, "no temp caches"),
    "open_monitor": (bool, "per-op seconds are in summary.json"),
    "op_list_to_trace": (list[str], "the tracer traces every op"),
    "open_insight_mining": (bool, "insight mining"), "op_list_to_mine": (list[str], ""),
    "fusion_strategy": (str, "ops fuse by position and worker settings (op_fusion)"),
    "adaptive_batch_size": (bool, "batch sizes are per op"),
    "hpo_config": (str, "hyper-parameter search"),
    "data_probe_algo": (str, "sandbox sampling"), "data_probe_ratio": (float, ""),
}
# op parameters (Data-Juicer's OP / Filter base) renamed here
OP_RENAMED = {"cpu_required": "num_cpus", "gpu_required": "num_gpus", "mem_required": "memory"}
# op parameters accepted with no effect here
OP_IGNORED = ("turbo", "image_bytes_key", "audio_key", "video_key", "system_key",
              "instruction_key", "prompt_key", "query_key", "response_key", "history_key",
              "index_key", "work_dir", "image_special_token", "audio_special_token",
              "video_special_token", "eoc_special_token", "stats_export_path")


@dataclass
class CompatSettings:
    """What Data-Juicer keys of a recipe set beyond our own keys."""

    op_defaults: dict = field(default_factory=dict)     # text_key, image_key, skip_op_error
    suffixes: Optional[list] = None                      # folder datasets: file suffixes read
    export_options: dict = field(default_factory=dict)   # for pipelines.dataset.export_batches
    percentiles: tuple = DEFAULT_PERCENTILES             # analyzer
    export_original_dataset: bool = False                # analyzer: keep the full rows
    save_stats_in_one_file: bool = False                 # analyzer: one figure of all stats
    auto: bool = False                                   # analyzer: every header filter
    auto_num: int = 1000
    debug: bool = False
    validators: list = field(default_factory=list)       # required_fields checks on load
    ignored: list = field(default_factory=list)          # "key" / "process[i] op: key"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def add_arguments(parser) -> list[str]:
    """Declare the Data-Juicer recipe keys our parser lacks (all default None: unset)."""
    have = {a.dest for a in parser._actions}
    added = []
    types = dict(RECIPE_MAPPED, **{k: t for k, (t, _) in RECIPE_IGNORED.items()})
    for key, typ in types.items():
        if key in have:
            continue
        parser.add_argument(f"--{key}", type=Optional[typ], default=None,
                            help="Data-Juicer recipe key (see docs/data-juicer.md)")
        added.append(key)
    return added


class CompatError(ValueError):
    """A Data-Juicer setting that imgjuicer cannot honour (message names the key)."""


def apply_recipe(cfg: dict, keys: list[str]) -> CompatSettings:
    """Pop the Data-Juicer keys (``keys``: the ones ``add_arguments`` declared) from the parsed
    recipe ``cfg``, rewrite ours they map to, and return the rest as settings."""
    given = {k: cfg.pop(k) for k in keys if k in cfg}
    given = {k: v for k, v in given.items() if v is not None}
    s = CompatSettings()
    if cfg.get("executor_type") == "default":
        cfg["executor_type"] = "local"
    if "text_keys" in given:
        tk = given["text_keys"]
        tk = tk if isinstance(tk, str) else (tk[0] if tk else "text")
        if not isinstance(given["text_keys"], str) and len(given["text_keys"]) > 1:
            logger.info("text_keys: ops use the first key, '%s' (as in Data-Juicer)", tk)
        s.op_defaults["text_key"] = tk
    if "image_key" in given:
        s.op_defaults["image_key"] = given["image_key"]
        if not cfg.get("image_columns"):
            from pipelines.dataset import DEFAULT_IMAGE_COLUMNS
            if given["image_key"] not in DEFAULT_IMAGE_COLUMNS:
                cfg["image_columns"] = [given["image_key"]]
    if "skip_op_error" in given:
        s.op_defaults["skip_op_error"] = given["skip_op_error"]
    _dataset(cfg, given.get("dataset"))
    _export(cfg, given, s)
    if "suffixes" in given:
        suf = given["suffixes"]
        suf = [suf] if isinstance(suf, str) else list(suf)
        s.suffixes = [x.lower() if x.startswith(".") else f".{x.lower()}" for x in suf] or None
    if "percentiles" in given:
        bad = [p for p in given["percentiles"] if not 0.0 <= p <= 1.0]
        if bad:
            raise CompatError(f"percentiles: values must lie in [0, 1], got {bad}")
        s.percentiles = tuple(sorted(set(DEFAULT_PERCENTILES) | set(given["percentiles"])))
    for key in ("export_original_dataset", "save_stats_in_one_file", "auto", "debug"):
        if key in given:
            setattr(s, key, bool(given[key]))
    if "auto_num" in given:
        if given["auto_num"] < 1:
            raise CompatError("auto_num: must be >= 1")
        s.auto_num = given["auto_num"]
    for i, v in enumerate(given.get("validators") or []):
        if v.get("type") == "required_fields":
            s.validators.append(_required_fields(i, v))
        else:   # conversation / code validators check text formats
            s.ignored.append(f"validators[{i}] (type {v.get('type')!r})")
    if s.auto:    # Data-Juicer's analyzer: every stats filter replaces the process list
        cfg["process"] = [{name: {}} for name in auto_filters()]
    s.ignored = [k for k in given if k in RECIPE_IGNORED] + s.ignored
    return s


TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": list,
         "dict": dict}


def _required_fields(i: int, v: dict) -> dict:
    where = f"validators[{i}] required_fields"
    extra = set(v) - {"type", "required_fields", "field_types", "allow_missing", "sample_size"}
    fields = v.get("required_fields")
    if extra or not isinstance(fields, list) or not fields:
        raise CompatError(f"{where}: needs a non-empty 'required_fields' list (and optionally "
                          f"field_types, allow_missing, sample_size); got {v!r}")
    types = v.get("field_types") or {}
    bad = {k: t for k, t in types.items() if t not in TYPES}
    if bad:
        raise CompatError(f"{where}: unknown field_types {bad} (known: {', '.join(TYPES)})")
    return {"fields": list(fields), "types": dict(types),
            "allow_missing": float(v.get("allow_missing", 0.0)),
            "sample_size": int(v.get("sample_size", 100))}


def validate_dataset(recipe) -> None:
    """Data-Juicer's ``required_fields`` validators on the first rows of the dataset: every
    field present, at most ``allow_missing`` of the values null, values of ``field_types``."""
    compat = getattr(recipe, "compat", None)
    if compat is None or not compat.validators:
        return
    rows = _head(recipe, max(v["sample_size"] for v in compat.validators))
    columns = set(rows[0]) if rows else set()
    for i, v in enumerate(compat.validators):
        missing = [f for f in v["fields"] if f not in columns]
        if missing:
            raise CompatError(f"validators: the dataset lacks required fields {missing} "
                              f"(columns: {', '.join(sorted(columns))})")
        sample = rows[:v["sample_size"]]
        for f in v["fields"]:
            nulls = sum(r.get(f) is None for r in sample)
            if sample and nulls / len(sample) > v["allow_missing"]:
                raise CompatError(f"validators: field '{f}' is null in {nulls} of the first "
                                  f"{len(sample)} rows (allow_missing {v['allow_missing']})")
            want = v["types"].get(f)
            wrong = {type(r[f]).__name__ for r in sample if r.get(f) is not None and
                     (not isinstance(r[f], TYPES[want]) or
                      (want in ("int", "float") and isinstance(r[f], bool)))} if want else set()
            if wrong:
                raise CompatError(f"validators: field '{f}' should hold {want}, found "
                                  f"{', '.join(sorted(wrong))}")


def _head(recipe, n: int) -> list[dict]:
    from pipelines.dataset import prepare_table, read_rows
    from pipelines.shards import dataset_root, is_sharded, list_shards, read_shard
    path = recipe.dataset_path
    if is_sharded(path):
        table = next(read_shard(list_shards(path)[0], dataset_root(path), recipe.image_columns,
                                rows=n), None)
    else:
        table = prepare_table(read_rows(path, **dataset_options(recipe)), path,
                              recipe.image_columns)
    return table.slice(0, n).to_pylist() if table is not None else []


def auto_filters() -> list[str]:
    """``auto: true``: every built-in filter that needs no model and computes stats of its
    own (not one that judges another op's stats, such as generation_loss_gap_filter)."""
    from ops.base import Filter
    from ops.registry import OPERATORS

    def own_stats(cls) -> bool:
        return any(getattr(cls, m) is not getattr(Filter, m)
                   for m in ("compute_stats_single", "compute_stats_batched"))
    return [n for n in OPERATORS.builtin_names()
            if issubclass(OPERATORS.get(n), Filter) and OPERATORS.get(n).accelerator == "cpu"
            and own_stats(OPERATORS.get(n))]


def _dataset(cfg: dict, dataset) -> None:
    """Data-Juicer's ``dataset: {configs: [{type: local, path: ...}]}``: one local source."""
    if dataset is None or dataset == [] or dataset == {}:
        return
    configs = dataset.get("configs") if isinstance(dataset, dict) else dataset
    extra = sorted(set(dataset) - {"configs"}) if isinstance(dataset, dict) else []
    if extra or not isinstance(configs, list) or len(configs) != 1:
        raise CompatError("dataset: only one local source is supported here "
                          "({configs: [{type: local, path: ...}]}); mixtures, "
                          f"max_sample_num and remote sources are not (got {dataset!r})")
    (c,) = configs
    if c.get("type", "local") != "local" or not c.get("path") or \
            float(c.get("weight", 1.0)) != 1.0 or set(c) - {"type", "path", "weight"}:
        raise CompatError(f"dataset: only {{type: local, path: ..., weight: 1.0}} is "
                          f"supported here, got {c!r}")
    if cfg.get("dataset_path") and cfg["dataset_path"] != c["path"]:
        raise CompatError(f"dataset: its path '{c['path']}' contradicts dataset_path "
                          f"'{cfg['dataset_path']}'")
    cfg["dataset_path"] = c["path"]


def _export(cfg: dict, given: dict, s: CompatSettings) -> None:
    et = given.get("export_type")
    if et is not None:
        et = et.lower().lstrip(".")
        if et not in EXPORT_TYPES:
            raise CompatError(f"export_type: '{et}' is not supported here "
                              f"({', '.join(EXPORT_TYPES)})")
        path = cfg.get("export_path")
        if path and (path.endswith("/") or os.path.isdir(path)):
            pass        # a folder: imgjuicer's sharded export on Ray (parts + manifest)
        elif path:
            suffix = Path(path).suffix.lower().lstrip(".")
            if suffix in EXPORT_TYPES and suffix != et:
                raise CompatError(f"export_type: '{et}' contradicts export_path '{path}'")
            if suffix not in EXPORT_TYPES:
                cfg["export_path"] = f"{path}.{et}"
        else:
            work_dir = cfg.get("work_dir") or os.path.join("outputs", cfg["project_name"])
            cfg["export_path"] = os.path.join(work_dir, f"result.{et}")
    size = given.get("export_shard_size")
    if size is not None:
        if size < 0:
            raise CompatError("export_shard_size: must be >= 0 (0: one file)")
        if size:
            s.export_options["shard_size"] = int(size)
    if given.get("keep_stats_in_res_ds") is False:
        s.export_options["drop_stats"] = True
    if given.get("keep_hashes_in_res_ds") is False:
        s.export_options["drop_hashes"] = True


def apply_ops(process: list, s: CompatSettings, accepted_of) -> list:
    """Rename Data-Juicer op parameters, set the recipe-wide defaults, drop (and note) the ones
    with no effect.  ``accepted_of(name)`` -> the op's accepted parameter names, or None for an
    unknown op (left to validation)."""
    out = []
    for idx, (name, params) in enumerate(process):
        accepted = accepted_of(name)
        if accepted is None:
            out.append((name, params))
            continue
        params = dict(params)
        for dj, ours in OP_RENAMED.items():
            if dj not in params or dj in accepted:
                continue
            value = params.pop(dj)
            if value is None:
                continue
            if dj == "mem_required":
                value = memory_bytes(value)
            if params.get(ours) is not None and params[ours] != value:
                raise CompatError(f"process[{idx}] op '{name}': {dj} and {ours} disagree "
                                  f"({value!r} vs {params[ours]!r})")
            params[ours] = value
        if params.get("num_proc") == -1 and "num_proc" in accepted:
            params["num_proc"] = None      # Data-Juicer's "automatic"
        dropped = [k for k in params if k in OP_IGNORED and k not in accepted]
        dropped = [k for k in dropped if params.pop(k) is not None]   # null: not set
        dropped += _nested_common(params)
        if dropped:
            s.ignored.append(f"process[{idx}] {name}: {', '.join(dropped)}")
        for k, v in s.op_defaults.items():
            if k in accepted and params.get(k) is None:
                params[k] = v
        out.append((name, params))
    return out


# common op parameters inside a fused op's sub-op arguments (ImgDiff's
# ``image_text_matching_filter_args: {num_proc: 1}``): the fused op runs its sub-ops itself
SUB_OP_COMMON = set(OP_IGNORED) | set(OP_RENAMED) | {
    "num_proc", "batch_size", "accelerator", "skip_op_error", "trust_remote_code",
    "num_cpus", "num_gpus", "memory"}


def _nested_common(params: dict) -> list[str]:
    """Drop common op parameters from ``*_args`` sub-op dicts; return them as ``a.b``."""
    out = []
    for key, value in params.items():
        if key.endswith("_args") and isinstance(value, dict):
            inner = [k for k in value if k in SUB_OP_COMMON]
            params[key] = {k: v for k, v in value.items() if k not in SUB_OP_COMMON}
            out += [f"{key}.{k}" for k in inner]
    return out


def memory_bytes(value) -> int:
    """Data-Juicer's ``mem_required``: a number of GB, or a size such as '2GB' / '512MB'."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*", value, re.IGNORECASE)
        if not m:
            raise CompatError(f"mem_required: cannot read {value!r}: a number of GB or a size "
                              "such as '2GB', '512MB'")
        return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise CompatError(f"mem_required: a number of GB or a size such as '2GB', got {value!r}")
    return int(value * 1024 ** 3)


FLAG_KEYS = ("auto", "debug")   # store_true flags in Data-Juicer's command line


def flag_args(argv: list[str]) -> list[str]:
    """Data-Juicer's bare flags (``dj-analyze --auto``, ``--debug``) -> ``--auto true``."""
    out = []
    for i, a in enumerate(argv):
        out.append(a)
        if a in tuple(f"--{k}" for k in FLAG_KEYS) and \
                (i + 1 == len(argv) or argv[i + 1].startswith("--")):
            out.append("true")
    return out


def dataset_options(recipe) -> dict:
    """Keyword arguments of ``pipelines.dataset.load_dataset`` / ``read_rows`` a recipe sets."""
    compat = getattr(recipe, "compat", None)
    return {"suffixes": compat.suffixes} if compat is not None and compat.suffixes else {}


def export_options(recipe) -> dict:
    """Keyword arguments of ``pipelines.dataset.export_batches`` a recipe sets."""
    compat = getattr(recipe, "compat", None)
    return dict(compat.export_options) if compat is not None else {}


def warn_ignored(settings: Optional[CompatSettings]) -> None:
    """One warning naming every Data-Juicer setting this run accepted without effect."""
    if settings is None or not settings.ignored:
        return
    recipe = [k for k in settings.ignored if not k.startswith("process[")]
    ops = [k for k in settings.ignored if k.startswith("process[")]
    parts = ([f"recipe: {', '.join(recipe)}"] if recipe else []) + ops
    logger.warning("Data-Juicer settings accepted but without effect in imgjuicer: %s "
                   "(see docs/data-juicer.md)", "; ".join(parts))
