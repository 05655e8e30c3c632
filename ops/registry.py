"""OPERATORS registry and plugin loading.

Built-in ops are found lazily: one op per file and the file stem is the registered name, so
``OPERATORS.get("image_shape_filter")`` imports ``ops/filter/image_shape_filter.py`` and
nothing else (a recipe of header-only filters never imports torch).  Plugins come from
``custom_operator_paths`` (files or package folders) and the entry-point group
``imgjuicer.ops``.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

logger = logging.getLogger("imgjuicer")

OP_KINDS = ("mapper", "filter", "deduplicator", "aggregator")
ENTRY_POINT_GROUP = "imgjuicer.ops"
_OPS_DIR = Path(__file__).resolve().parent


class RegistryError(KeyError):
    def __str__(self):  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class Registry:
    def __init__(self, name: str):
        self.name = name
        self._modules: dict[str, type] = {}
        self._entry_points_loaded = False

    # ---------------------------------------------------------------- registration
    def register_module(self, name: Optional[str] = None, force: bool = False) -> Callable:
        """Class decorator: ``@OPERATORS.register_module("my_op")``."""

        def deco(cls):
            key = name or cls.__name__
            old = self._modules.get(key)
            if old is not None and old is not cls and not force:
                # the same class re-imported (reload, or one file imported under two module
                # names, e.g. by pytest and by custom_operator_paths) replaces itself quietly
                same = old.__qualname__ == cls.__qualname__ and (
                    old.__module__ == cls.__module__ or _source(old) == _source(cls))
                if not same:
                    raise RegistryError(
                        f"operator '{key}' is already registered by {old.__module__}."
                        f"{old.__qualname__}; pass force=True to replace it")
            cls.name = key
            self._modules[key] = cls
            return cls

        return deco

    register = register_module

    # ---------------------------------------------------------------- lookup
    def builtin_names(self) -> list[str]:
        names = []
        for kind in OP_KINDS:
            names += [p.stem for p in (_OPS_DIR / kind).glob("*.py") if not p.stem.startswith("_")]
        return sorted(names)

    def list(self) -> list[str]:
        self.load_entry_points()
        return sorted(set(self._modules) | set(self.builtin_names()))

    def get(self, name: str) -> type:
        if name in self._modules:
            return self._modules[name]
        for kind in OP_KINDS if name.isidentifier() else ():  # never a path ("../base")
            if (_OPS_DIR / kind / f"{name}.py").exists():
                try:
                    importlib.import_module(f"ops.{kind}.{name}")
                except ModuleNotFoundError as exc:
                    raise RegistryError(_missing_dependency(name, exc)) from exc
                if name in self._modules:
                    return self._modules[name]
                raise RegistryError(f"ops/{kind}/{name}.py does not register '{name}'")
        self.load_entry_points()
        if name in self._modules:
            return self._modules[name]
        import difflib
        close = difflib.get_close_matches(name, self.list(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RegistryError(f"unknown operator '{name}'{hint}")

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
            return True
        except RegistryError:
            return False

    # ---------------------------------------------------------------- plugins
    def load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()  # importing the module registers its ops
            except Exception as exc:
                raise RegistryError(f"entry point '{ep.name} = {ep.value}' in group "
                                    f"{ENTRY_POINT_GROUP} failed to load: {exc}") from exc


def _missing_dependency(name: str, exc: ModuleNotFoundError) -> str:
    from ops.extras import extra_for_module, install_hint
    extra = extra_for_module(exc.name or "")
    how = f"; install it with: {install_hint(extra)}" if extra else ""
    return f"operator '{name}' cannot be imported: no module named '{exc.name}'{how}"


def _source(cls) -> Optional[str]:
    import inspect
    try:
        return str(Path(inspect.getfile(cls)).resolve())
    except (TypeError, OSError):
        return None


OPERATORS = Registry("operators")


def load_custom_operators(paths: list[str]) -> list[str]:
    """Import user op files or package folders; return the module names imported."""
    names = []
    for raw in paths or []:
        path = Path(raw).expanduser().resolve()
        if not path.exists():
            raise RegistryError(f"custom_operator_paths: '{raw}' does not exist")
        if path.is_dir():
            if not (path / "__init__.py").exists():
                # a plain folder of op files
                for f in sorted(path.glob("*.py")):
                    names.append(_import_file(f))
                continue
            parent = str(path.parent)
            if parent not in sys.path:
                sys.path.insert(0, parent)
            importlib.import_module(path.name)
            names.append(path.name)
        else:
            names.append(_import_file(path))
    return names


def _import_file(path: Path) -> str:
    mod_name = f"imgjuicer_user_{path.stem}"
    if mod_name in sys.modules and getattr(sys.modules[mod_name], "__file__", None) == str(path):
        return mod_name
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"custom_operator_paths: cannot import '{path}'")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[mod_name]
        raise RegistryError(f"custom_operator_paths: importing '{path}' failed: "
                            f"{type(exc).__name__}: {exc}") from exc
    return mod_name
