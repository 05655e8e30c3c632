"""Checks a recipe passes before any work starts (each failure is a RecipeError, exit 2).

The recipe parser (pipelines.config) calls these; they look at the file system only: the
recipe file's shape, where outputs go, what a missing dataset needs, where user op files
live.  Nothing here imports user code.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "data" / "demo"


class PreflightError(ValueError):
    """Raised here; pipelines.config turns it into a RecipeError."""


def check_recipe_file(path: str) -> None:
    """The recipe file exists and holds a mapping of keys (not nothing, not a list)."""
    import yaml

    if not os.path.exists(path):
        raise PreflightError(f"config: recipe file '{path}' does not exist")
    if os.path.isdir(path):
        raise PreflightError(f"config: '{path}' is a folder, not a recipe file")
    try:
        with open(path, encoding="utf-8") as fh:
            body = yaml.safe_load(fh)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PreflightError(f"config: recipe file '{path}' is not valid YAML: "
                             f"{str(exc).splitlines()[0]}") from None
    if body is None:
        raise PreflightError(f"config: recipe file '{path}' is empty (it needs at least "
                             "dataset_path and process)")
    if not isinstance(body, dict):
        raise PreflightError(f"config: recipe file '{path}' must be a mapping of keys "
                             f"(dataset_path: ..., process: [...]), not a {type(body).__name__}")


def demo_data_hint(raw: str, resolved: str) -> str:
    """For a missing dataset_path that is the shipped demo data: the command that makes it."""
    if Path(resolved).is_relative_to(DEMO_DATA) or Path(raw).parts[:2] == ("data", "demo"):
        return ("it is the demo data, built by `python tools/make_demo_data.py --out data/demo`"
                " (or `make demo`, which also runs the recipes)")
    return ""


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _writable_folder(folder: str, what: str) -> None:
    """``folder`` exists or can be made, and a file can be created in it."""
    existing = folder
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        raise PreflightError(f"{what}: cannot create '{folder}': '{existing}' is a file")
    probe_in = folder if os.path.isdir(folder) else existing
    try:
        with tempfile.TemporaryFile(dir=probe_in):
            pass
    except OSError as exc:
        raise PreflightError(f"{what}: cannot write in '{probe_in}': "
                             f"{exc.strerror or exc}") from None


def check_outputs(dataset_path: str, export_path: str, work_dir: str,
                  export_is_folder: bool = False) -> None:
    """Outputs never overwrite or land inside the input, and can be written (a folder
    export_path is a sharded export, written by the Ray executor)."""
    if os.path.realpath(export_path) == os.path.realpath(dataset_path):
        raise PreflightError(f"export_path: '{export_path}' is the input dataset itself; "
                             "exporting there would replace it: choose another file")
    if os.path.isdir(dataset_path):
        for key, path in (("work_dir", work_dir), ("export_path", export_path)):
            if _inside(path, dataset_path):
                raise PreflightError(
                    f"{key}: '{path}' is inside the dataset folder '{dataset_path}': the run's "
                    "own files would become its input (and change its fingerprint, so it "
                    "never resumes); put it outside that folder")
    _writable_folder(work_dir, "work_dir")
    _writable_folder(export_path if export_is_folder else
                     os.path.dirname(os.path.abspath(export_path)), "export_path")


def resolve_plugin_paths(paths: list[str], base: str, origin: str) -> list[str]:
    """``custom_operator_paths`` as absolute paths; relative ones are resolved against ``base``
    (the recipe file's folder, or the current directory for command-line values).  Nothing is
    imported here."""
    out = []
    for raw in paths or []:
        path = os.path.abspath(os.path.join(base, os.path.expanduser(raw)))
        if not os.path.exists(path):
            where = "" if os.path.isabs(os.path.expanduser(raw)) else \
                f" (relative paths are resolved against {origin}: {base})"
            raise PreflightError(f"custom_operator_paths: '{raw}' not found: looked for "
                                 f"'{path}'{where}")
        out.append(path)
    return out


def plugin_base(argv: Optional[list[str]], config_path: Optional[str]) -> tuple[str, str]:
    """Where relative custom_operator_paths point: the recipe file's folder unless the value
    was given on the command line."""
    on_cli = any(a == "--custom_operator_paths" or a.startswith("--custom_operator_paths=")
                 for a in argv or [])
    if config_path and not on_cli:
        return os.path.dirname(os.path.abspath(config_path)), "the recipe file's folder"
    return os.getcwd(), "the current directory"
