"""dj-compare: comparison figures and the interactive report of a codec study.

The figure settings are comparison_figure_aggregator's parameters: taken from the study
recipe (through the same config code as dj-process), then from the flags below, which are
built from the same definition (ops/compare/options.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import typing
from typing import Optional

from ops.compare.options import OPTION_FIELDS
from ops.compare.study import StudyError, list_studies, load_study

FIGURE_OP = "comparison_figure_aggregator"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _yaml_value(text: str):
    import yaml
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"not YAML: {exc}") from None


def _add_option(p: argparse.ArgumentParser, f, hint) -> None:
    """One flag per figure setting, typed from its annotation; absent flags leave the
    recipe's value alone (argparse.SUPPRESS)."""
    helptext = f.metadata.get("help", "")
    default = None if f.default is dataclasses.MISSING else f.default   # list: default_factory
    if default not in (None, [], "") and not callable(default):
        helptext += f" (default {default})"
    kw = {"default": argparse.SUPPRESS, "help": helptext, "dest": f.name}
    base = hint
    if typing.get_origin(hint) is typing.Union:            # Optional[X] -> X
        base = next(a for a in typing.get_args(hint) if a is not type(None))
    if f.metadata.get("yaml"):
        p.add_argument(_flag(f.name), type=_yaml_value, metavar="YAML", **kw)
    elif base is bool:
        p.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, **kw)
    elif typing.get_origin(base) is typing.Literal:
        p.add_argument(_flag(f.name), choices=typing.get_args(base), **kw)
    else:
        p.add_argument(_flag(f.name), type=base if base in (int, float) else str, **kw)


def _parser() -> argparse.ArgumentParser:
    from ops.compare.options import FigureOptions
    p = argparse.ArgumentParser(
        prog="dj-compare",
        description="Matched-quality / matched-size comparison figures, Butteraugli distortion "
                    "maps and an interactive HTML report for a codec study "
                    "(docs/comparison-figures.md).  Settings come from the study recipe's "
                    f"{FIGURE_OP} entry; flags override them.")
    p.add_argument("study", nargs="?", help="study recipe (.yaml), quality.json, or study name "
                   "(recipes/<name>.yaml, outputs/<name>/quality.json, or a name --list shows)")
    hints = typing.get_type_hints(FigureOptions)
    for f in OPTION_FIELDS:
        _add_option(p, f, hints[f.name])
    p.add_argument("--output", default=None,
                   help="figures go to OUTPUT/comparison/ (default: the study's work_dir)")
    p.add_argument("--list", action="store_true",
                   help="list studies with quality measurements and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")
    return p


def _print_list() -> int:
    rows = list_studies()
    if not rows:
        print("no study recipes (recipes/*.yaml with quality_report_aggregator) and no "
              "outputs/*/quality.json here")
        return 0
    print(f"{'study':<24} {'measured':<9} {'images':>6} {'variants':>8}  quality.json")
    for r in rows:
        print(f"{r['study']:<24} {'yes' if r['measured'] else 'no':<9} {r['images']:>6} "
              f"{r['variants']:>8}  {os.path.relpath(r['quality_json'])}"
              + (f"  (recipe {r['recipe']})" if r["recipe"] else ""))
    return 0


def figure_op(study, overrides: dict):
    """The figure op as the study recipe configures it, with ``overrides`` on top, validated
    by the same code as dj-process."""
    from ops.registry import OPERATORS
    from pipelines.config import RecipeError, study_figure_settings, validate_op
    params = study_figure_settings(study.recipe, study.recipe_path) if study.recipe else {}
    params = {**params, **overrides}
    try:
        typed = validate_op(FIGURE_OP, params)
        return OPERATORS.get(FIGURE_OP)(**typed)
    except RecipeError as exc:
        raise StudyError(str(exc).replace(f"process[0] op '{FIGURE_OP}': ", "")) from None
    except ValueError as exc:
        raise StudyError(str(exc)) from None


def main(argv: Optional[list[str]] = None) -> int:
    """Run dj-compare; returns the exit status (0 ok, 1 nothing drawn, 2 bad study or
    arguments)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if args.list:
        return _print_list()
    if not args.study:
        print("dj-compare: give a STUDY (or --list)", file=sys.stderr)
        return 2
    from ops.image.codecs import CodecError
    from ops.image.io import ImageLoadError
    from ops.compare.generate import generate_figures
    overrides = {f.name: getattr(args, f.name) for f in OPTION_FIELDS if hasattr(args, f.name)}
    try:
        study = load_study(args.study)
        opts = figure_op(study, overrides).options
        out = args.output or study.work_dir
        manifest = generate_figures(study, out, opts)
    except (StudyError, CodecError, ImageLoadError, FileNotFoundError) as exc:
        print(f"dj-compare: {exc}", file=sys.stderr)
        return 2
    comp = os.path.join(out, "comparison")
    done = [g for g in manifest["groups"] if not g.get("skipped")]
    for g in manifest["groups"]:
        if g.get("skipped"):
            print(f"skipped {g['level'] + '/' if g['level'] else ''}{g['metric']}: {g['skipped']}")
    print(f"{len(done)} figure groups in {manifest['seconds']} s under {comp}")
    if manifest.get("report"):
        print(f"report: {os.path.join(comp, manifest['report'])}")
        if opts.index_dir:
            from ops.compare.interactive import write_index
            print(f"index of studies: {write_index(opts.index_dir)}")
    return 0 if done else 1


if __name__ == "__main__":          # python -m pipelines.cli.compare
    sys.exit(main())
