"""dj-process: run a recipe (``python -m pipelines.cli`` runs it too)."""
from __future__ import annotations

import logging
import os
import sys
from typing import Optional

logger = logging.getLogger("imgjuicer")


def setup_logging(work_dir: Optional[str] = None, level: int = logging.INFO) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    logger.setLevel(logging.DEBUG)
    logger.handlers.clear()
    sh = logging.StreamHandler(sys.stderr)
    sh.setLevel(level)
    sh.setFormatter(fmt)
    logger.addHandler(sh)
    if work_dir:
        os.makedirs(work_dir, exist_ok=True)
        fh = logging.FileHandler(os.path.join(work_dir, "run.log"))
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    logger.propagate = False


def run_recipe(recipe, ops=None) -> dict:
    """Build the ops (unless given, already built from ``recipe``), make sure every model they
    need is on this machine (downloading the missing ones when online), then run the recipe
    on its executor -- holding its work_dir for the whole run (see pipelines.lock)."""
    from ops.models.requirements import ensure_models
    from pipelines.compat import CompatError, validate_dataset, warn_ignored
    from pipelines.config import RecipeError, build_ops
    from pipelines.executor import make_executor
    from pipelines.lock import work_dir_lock

    warn_ignored(recipe.compat)
    try:
        validate_dataset(recipe)
    except CompatError as exc:
        raise RecipeError(str(exc)) from None
    with work_dir_lock(recipe.work_dir):
        ops = build_ops(recipe) if ops is None else ops
        ensure_models(ops)
        return make_executor(recipe, ops).run()


def log_level(recipe) -> int:
    """DEBUG when the recipe says ``debug: true`` (Data-Juicer's key), else INFO."""
    return logging.DEBUG if recipe.compat is not None and recipe.compat.debug else logging.INFO


def list_ops(names: list[str]) -> int:
    """dj-process --list-ops [NAME ...]: the operator catalogue (docs/operators.md)."""
    from ops.registry import RegistryError
    from pipelines.catalogue import render

    try:
        print(render(names), end="")
    except RegistryError as exc:
        print(f"dj-process: {exc}", file=sys.stderr)
        return 2
    return 0


def process_main(argv: Optional[list[str]] = None) -> int:
    """dj-process --config recipe.yaml [--key value ...] | --list-ops [NAME ...]"""
    from pipelines.config import RecipeError, parse_recipe
    from pipelines.lock import WorkDirBusy, WorkDirUnusable, acquire, release
    from pipelines.report import format_summary

    from pipelines.compat import flag_args
    argv = flag_args(list(sys.argv[1:] if argv is None else argv))
    if argv and argv[0] == "--list-ops":
        return list_ops(argv[1:])
    if any(a in ("-h", "--help") for a in argv):
        from pipelines.config import _parser
        _parser().print_help()
        print("\nother uses:\n  --list-ops [NAME ...]  print the operator catalogue (every op, its kind, "
              "parameters and docstring; docs/operators.md) and exit")
        return 0
    try:
        recipe = parse_recipe(argv)
    except RecipeError as exc:
        print(f"dj-process: recipe error: {exc}", file=sys.stderr)
        return 2
    if recipe.compat is not None and recipe.compat.auto:
        print("dj-process: recipe error: auto: true analyzes a dataset with every stats "
              "filter; it is dj-analyze's setting (as in Data-Juicer)", file=sys.stderr)
        return 2
    try:  # before the log file opens: a refused run must not write into another's work_dir
        acquire(recipe.work_dir)
    except (WorkDirBusy, WorkDirUnusable) as exc:
        print(f"dj-process: {exc}", file=sys.stderr)
        return 2
    try:
        return _process(recipe, format_summary)
    finally:
        release(recipe.work_dir)


def _process(recipe, format_summary) -> int:
    from pipelines.config import RecipeError
    from pipelines.dataset import DatasetError

    setup_logging(recipe.work_dir, log_level(recipe))
    from ops.models.requirements import ModelsMissingError
    try:
        summary = run_recipe(recipe)
    except RecipeError as exc:
        print(f"dj-process: recipe error: {exc}", file=sys.stderr)
        return 2
    except DatasetError as exc:  # raised while loading, before any op ran
        print(f"dj-process: dataset error: {exc}", file=sys.stderr)
        return 2
    except ModelsMissingError as exc:
        print(f"dj-process: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dj-process: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a run-level failure (not a sample's): say what, log the rest
        logger.debug("run failed", exc_info=True)
        print(f"dj-process: run failed: {type(exc).__name__}: {exc}\n(traceback in "
              f"{os.path.join(recipe.work_dir, 'run.log')}; rerun resumes after the last "
              "finished op)", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0


def main() -> None:  # python -m pipelines.cli
    sys.exit(process_main())


if __name__ == "__main__":
    main()
