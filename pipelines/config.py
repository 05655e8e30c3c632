"""Recipe YAML -> validated, typed op configs (jsonargparse), before any work starts."""
from __future__ import annotations

import inspect
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ops.base import OP
from ops.extras import missing_extra_message, missing_modules
from ops.registry import OPERATORS, RegistryError, load_custom_operators
from pipelines import preflight


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the key (and op) at fault."""


@dataclass
class Recipe:
    project_name: str
    dataset_path: str
    export_path: str
    work_dir: str
    np: int
    executor_type: str
    process: list                       # [(name, params dict)]
    custom_operator_paths: list = field(default_factory=list)
    ray_address: Optional[str] = None
    ray_require_gpus: bool = False
    open_tracer: bool = True
    trace_num: int = 10
    use_checkpoint: bool = True
    op_fusion: bool = True              # consecutive mappers / filters share one pass
    image_columns: Optional[list] = None
    config_path: Optional[str] = None
    validated: bool = False             # parse_recipe: process holds validated, typed params
    image_roots: Optional[list] = None  # confine image paths (pipelines.paths); None: off
    compat: Optional[Any] = None        # pipelines.compat.CompatSettings (Data-Juicer keys)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d.pop("validated", None)
        d["process"] = [{n: p} for n, p in self.process]
        if self.compat is not None:
            d["compat"] = self.compat.as_dict()
        return d


def _parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    p = ArgumentParser(prog="dj-process", exit_on_error=False,
                       description="Run an imgjuicer recipe.")
    p.add_argument("--config", action=ActionConfigFile, help="recipe YAML")
    p.add_argument("--project_name", type=str, default="imgjuicer")
    p.add_argument("--dataset_path", type=Optional[str], default=None,
                   help="jsonl, json, parquet, or a folder of images")
    p.add_argument("--export_path", type=Optional[str], default=None,
                   help="jsonl, json or parquet, by extension (default <work_dir>/result.jsonl)")
    p.add_argument("--work_dir", type=Optional[str], default=None,
                   help="logs, trace, checkpoints, error report (default ./outputs/<project>)")
    p.add_argument("--np", type=int, default=1, help="worker processes for CPU ops")
    p.add_argument("--executor_type", type=typing.Literal["local", "ray", "default"],
                   default="local", help="local (Data-Juicer's 'default') or ray")
    p.add_argument("--ray_address", type=Optional[str], default=None,
                   help="'auto' joins a running cluster; absent starts a local Ray")
    p.add_argument("--ray_require_gpus", type=bool, default=False,
                   help="fail fast instead of falling back to CPU when a CUDA op finds no GPU")
    p.add_argument("--custom_operator_paths", type=list[str], default=[])
    p.add_argument("--open_tracer", type=bool, default=True)
    p.add_argument("--trace_num", type=int, default=10)
    p.add_argument("--use_checkpoint", type=bool, default=True)
    p.add_argument("--op_fusion", type=bool, default=True,
                   help="run consecutive mappers / filters in one pass per batch (same output)")
    p.add_argument("--image_columns", type=Optional[list[str]], default=None,
                   help="columns holding image paths, resolved relative to the dataset file")
    p.add_argument("--image_roots", type=Optional[list[str]], default=None,
                   help="refuse a dataset whose image paths lie outside these folders "
                        "(or URL prefixes); default: no restriction")
    p.add_argument("--comparison", type=Optional[dict], default=None,
                   help="deprecated: give these settings to comparison_figure_aggregator")
    p.add_argument("--process", type=Optional[list[Any]], default=None)
    from pipelines.compat import add_arguments
    p.dj_compat_keys = add_arguments(p)   # Data-Juicer's recipe keys (docs/data-juicer.md)
    return p


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # jsonargparse nests the reason after "Problem with given class ..." lines: keep it short
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:3]) if lines else type(exc).__name__


def parse_recipe(argv: Optional[list[str]] = None) -> Recipe:
    """Parse ``--config recipe.yaml`` plus overrides; validate everything; build nothing."""
    p = _parser()
    for a in argv or []:
        if a.startswith("--config="):
            _check_config_path(a.split("=", 1)[1])
    if argv and "--config" in argv:
        i = argv.index("--config")
        if i + 1 < len(argv):
            _check_config_path(argv[i + 1])
    try:
        ns = p.parse_args(argv)
    except Exception as exc:
        raise RecipeError(_first_line(exc)) from None
    cfg = ns.as_dict()
    cfg_files = cfg.pop("config", None) or []
    config_path = str(cfg_files[-1]) if cfg_files else None
    compat = _apply_compat(cfg, p.dj_compat_keys)
    if not cfg.get("dataset_path"):
        raise RecipeError("dataset_path: missing (set it in the recipe or with --dataset_path)")
    if not cfg.get("process"):
        raise RecipeError("process: the recipe lists no operators")
    dataset_path = _check_dataset_path(cfg["dataset_path"], config_path)
    work_dir = cfg.get("work_dir") or os.path.join("outputs", cfg["project_name"])
    export_path = cfg.get("export_path") or os.path.join(work_dir, "result.jsonl")
    folder_export = export_path.endswith("/") or not Path(export_path).suffix or \
        os.path.isdir(export_path)
    if folder_export and cfg["executor_type"] != "ray":
        raise RecipeError(f"export_path: '{export_path}' is a folder (sharded export: one file "
                          "per block + manifest.json), which executor_type: ray writes; give "
                          "a .jsonl, .json or .parquet file for the local executor")
    if not folder_export and Path(export_path).suffix.lower() not in (".jsonl", ".json",
                                                                       ".parquet"):
        raise RecipeError(f"export_path: '{export_path}' must end in .jsonl, .json or .parquet"
                          " (or be a folder, for a sharded export on Ray)")
    if cfg["np"] < 1:
        raise RecipeError("np: must be >= 1")
    if cfg["trace_num"] < 0:
        raise RecipeError("trace_num: must be >= 0")
    if cfg["executor_type"] == "ray" and missing_modules("ray"):
        raise RecipeError(missing_extra_message("executor_type: ray", "ray", missing_modules("ray")))
    process = merge_legacy_comparison(normalise_process(cfg["process"]),
                                      cfg.get("comparison"), config_path or "recipe")
    process = _apply_op_compat(process, compat)
    try:
        preflight.check_outputs(dataset_path, os.path.abspath(export_path),
                                os.path.abspath(work_dir), folder_export)
        plugins = preflight.resolve_plugin_paths(cfg.get("custom_operator_paths") or [],
                                                 *preflight.plugin_base(argv, config_path))
        image_roots = _image_roots(cfg.get("image_roots"))
    except preflight.PreflightError as exc:
        raise RecipeError(str(exc)) from None
    # A plugin is code: it runs only once everything else in the recipe has passed.  Built-in
    # (and entry-point) ops are validated first; names still unknown may be the plugins'.
    typed: dict[int, dict] = {}
    for idx, (name, params) in enumerate(process):
        if not (plugins and name not in OPERATORS):
            typed[idx] = validate_op(name, params, idx)
    try:
        load_custom_operators(plugins)
    except RegistryError as exc:
        raise RecipeError(str(exc)) from None
    # plugin ops get Data-Juicer's parameters mapped too, now that they are registered
    process = [(name, typed[idx] if idx in typed else validate_op(name, params, idx))
               for idx, (name, params) in enumerate(_apply_op_compat(process, compat))]
    return Recipe(
        project_name=cfg["project_name"], dataset_path=dataset_path,
        export_path=export_path if "://" in export_path else os.path.abspath(export_path) + (
            "/" if export_path.endswith("/") else ""), work_dir=os.path.abspath(work_dir),
        np=cfg["np"], executor_type=cfg["executor_type"], process=process,
        custom_operator_paths=plugins, image_roots=image_roots,
        ray_address=cfg.get("ray_address"), ray_require_gpus=cfg.get("ray_require_gpus", False),
        open_tracer=cfg["open_tracer"], trace_num=cfg["trace_num"],
        use_checkpoint=cfg["use_checkpoint"], op_fusion=cfg["op_fusion"],
        image_columns=cfg.get("image_columns"),
        config_path=config_path,
        validated=True, compat=compat)


def _apply_compat(cfg: dict, keys: list):
    from pipelines.compat import CompatError, apply_recipe
    try:
        return apply_recipe(cfg, keys)
    except CompatError as exc:
        raise RecipeError(str(exc)) from None


def _apply_op_compat(process: list, compat) -> list:
    from pipelines.compat import CompatError, apply_ops

    def accepted_of(name):
        try:
            return set(op_parameters(OPERATORS.get(name)))
        except RegistryError:
            return None
    try:
        return apply_ops(process, compat, accepted_of)
    except CompatError as exc:
        raise RecipeError(str(exc)) from None


def _check_dataset_path(path: str, config_path: Optional[str]) -> str:
    """The dataset path made absolute (URLs as given); RecipeError when nothing is there."""
    from pipelines.shards import is_glob
    if "://" in path:  # object storage: list it now (credentials, bucket, any shard at all)
        from pipelines.dataset import DatasetError
        from pipelines.shards import list_shards
        try:
            list_shards(path)
        except DatasetError as exc:
            raise RecipeError(str(exc)) from None
        return path
    full = os.path.abspath(os.path.expanduser(path))
    if is_glob(full):
        import glob
        if not glob.glob(full, recursive=True):
            raise RecipeError(f"dataset_path: the pattern '{path}' matches no file")
        return full
    if not os.path.exists(full):
        hint = _recipe_needs(config_path) or preflight.demo_data_hint(path, full)
        raise RecipeError(f"dataset_path: '{path}' does not exist" + (f" ({hint})" if hint
                                                                      else ""))
    return full


def _recipe_needs(config_path: Optional[str]) -> str:
    """The recipe's own one-line note on what to run first (a comment starting '# Needs')."""
    if not config_path or not os.path.isfile(config_path):
        return ""
    with open(config_path, encoding="utf-8") as fh:
        for line in fh:
            if line.lstrip().lower().startswith("# needs"):
                return line.strip().lstrip("#").strip()
    return ""


def _check_config_path(path: str) -> None:
    try:
        preflight.check_recipe_file(path)
    except preflight.PreflightError as exc:
        raise RecipeError(str(exc)) from None


def _image_roots(roots: Optional[list]) -> Optional[list]:
    if roots is None:
        return None
    from pipelines.paths import normalise_roots
    out = normalise_roots(roots)
    for raw, root in zip(roots, out):
        if "://" not in root and not os.path.isdir(root):
            raise preflight.PreflightError(f"image_roots: '{raw}' is not a folder")
    if not out:
        raise preflight.PreflightError("image_roots: an empty list would refuse every image; "
                                       "leave it unset for no restriction")
    return out


def normalise_process(process: list) -> list[tuple[str, dict]]:
    out = []
    for idx, item in enumerate(process):
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise RecipeError(f"process[{idx}]: each entry must be a single '<op_name>: "
                              f"{{params}}' mapping, got {item!r}")
        (name, params), = item.items()
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise RecipeError(f"process[{idx}] op '{name}': parameters must be a mapping, "
                              f"got {params!r}")
        out.append((name, dict(params)))
    return out


FIGURE_OP = "comparison_figure_aggregator"
LEGACY_COMPARISON_KEYS = ("targets", "tile_parameter", "exclude_images")


def merge_legacy_comparison(process: list[tuple[str, dict]], section: Optional[dict],
                            where: str) -> list[tuple[str, dict]]:
    """Old recipes put the figure settings in a top-level ``comparison:`` section; they are
    the figure op's own parameters now.  Move them there (the op's own values win) with a
    deprecation message."""
    if not section:
        return process
    import logging
    if not isinstance(section, dict):
        raise RecipeError(f"comparison: expected a mapping, got {section!r}")
    unknown = sorted(set(section) - set(LEGACY_COMPARISON_KEYS))
    if unknown:
        raise RecipeError(f"comparison: unknown key(s) {unknown}; allowed: "
                          f"{', '.join(LEGACY_COMPARISON_KEYS)}")
    logging.getLogger("imgjuicer").warning(
        "%s: the top-level 'comparison:' section is deprecated; give %s to the %s op "
        "instead (used as its parameters this time)", where, ", ".join(sorted(section)),
        FIGURE_OP)
    out = []
    for name, params in process:
        if name == FIGURE_OP:
            params = {**section, **params}
        out.append((name, params))
    return out


def study_figure_settings(recipe: dict, where: str) -> dict:
    """The figure op's parameters in a recipe read as a mapping (dj-compare): the same
    normalisation and legacy merge as dj-process; {} when the recipe has no figure op (then a
    legacy ``comparison:`` section alone still counts)."""
    process = normalise_process(recipe.get("process") or [])
    section = recipe.get("comparison")
    if section and not any(n == FIGURE_OP for n, _ in process):
        process = process + [(FIGURE_OP, {})]
    for name, params in merge_legacy_comparison(process, section, where):
        if name == FIGURE_OP:
            return params
    return {}


def op_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """Every keyword an op accepts: its own ``__init__`` plus, through ``**kwargs``, its bases'."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        sig = inspect.signature(init)
        try:
            hints = typing.get_type_hints(init)
        except Exception:
            hints = {}
        forwards = False
        for pname, prm in list(sig.parameters.items())[1:]:
            if prm.kind is prm.VAR_KEYWORD:
                forwards = True
            elif prm.kind is prm.VAR_POSITIONAL:
                continue
            elif pname not in params:
                params[pname] = prm.replace(annotation=hints.get(pname, prm.annotation))
        if not forwards or klass is OP:
            break
    return params


def validate_op(name: str, params: dict, idx: int = 0) -> dict:
    """Check op name, keys and types; return the typed parameters."""
    from jsonargparse import ArgumentParser

    where = f"process[{idx}] op '{name}'"
    try:
        cls = OPERATORS.get(name)
    except RegistryError as exc:
        raise RecipeError(f"process[{idx}]: {exc}") from None
    if cls.extra:
        missing = missing_modules(cls.extra)
        if missing:
            raise RecipeError(missing_extra_message(where, cls.extra, missing))
    accepted = op_parameters(cls)
    unknown = [k for k in params if k not in accepted]
    if unknown:
        import difflib
        k = unknown[0]
        close = difflib.get_close_matches(k, list(accepted), n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise RecipeError(f"{where}: unknown parameter '{k}'{hint} "
                          f"(accepted: {', '.join(sorted(accepted))})")
    p = ArgumentParser(exit_on_error=False)
    for pname, prm in accepted.items():
        ann = prm.annotation if prm.annotation is not inspect.Parameter.empty else Any
        if prm.default is inspect.Parameter.empty:
            p.add_argument(f"--{pname}", type=ann, required=True)
        else:
            p.add_argument(f"--{pname}", type=ann, default=prm.default)
    try:
        ns = p.parse_object(params)
    except Exception as exc:
        raise RecipeError(f"{where}: {_first_line(exc)}") from None
    typed = {k: getattr(ns, k) for k in params}
    for k, v in typed.items():
        if hasattr(v, "as_dict"):
            typed[k] = v.as_dict()
    return typed


def build_ops(recipe: Recipe) -> list[OP]:
    """Instantiate every op (no models load here: that is setup()'s job)."""
    ops = []
    for idx, (name, params) in enumerate(recipe.process):
        typed = params if recipe.validated else validate_op(name, params, idx)
        cls = OPERATORS.get(name)
        try:
            ops.append(cls(**typed))
        except (ValueError, TypeError) as exc:
            raise RecipeError(f"process[{idx}] op '{name}': {exc}") from None
    return ops
