"""The operator catalogue, generated from the registry: every built-in op with its kind, its
parameters (types and defaults, as recipe validation reads them) and its docstring.

``docs/operators.md`` is this text (``python tools/gen_operator_docs.py`` writes it, and a test
fails when it is out of date); ``dj-process --list-ops [NAME ...]`` prints it.
"""
from __future__ import annotations

import enum
import inspect
import re
import typing
from typing import Iterable, Optional

from ops.base import OP, Aggregator, Deduplicator, Filter, Mapper
from ops.registry import OPERATORS
from pipelines.config import op_parameters

KINDS = (("mapper", Mapper, "Mappers"), ("filter", Filter, "Filters"),
         ("deduplicator", Deduplicator, "Deduplicators"), ("aggregator", Aggregator, "Aggregators"))
GENERATED_BY = "python tools/gen_operator_docs.py"


def kind_of(cls: type) -> str:
    for kind, base, _ in KINDS:
        if issubclass(cls, base):
            return kind
    raise TypeError(f"{cls.__qualname__} is not a Mapper, Filter, Deduplicator or Aggregator")


def type_name(annotation) -> str:
    """``Optional[int]``, ``Literal['any', 'all']``, ``dict[str, float]`` ... as a reader writes it."""
    if annotation is inspect.Parameter.empty:
        return "any"
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    text = inspect.formatannotation(annotation)
    return re.sub(r"\b(typing|collections\.abc)\.", "", text).replace("NoneType", "None")


def default_text(prm: inspect.Parameter) -> str:
    if prm.default is inspect.Parameter.empty:
        return "required"
    value = prm.default
    if isinstance(value, enum.Enum):
        value = value.value
    return repr(value)


def _cell(text: str) -> str:
    """A markdown table cell holding ``text`` as code (pipes escaped, one line)."""
    text = " ".join(text.split()).replace("|", "\\|")
    return f"``{text}``" if "`" in text else f"`{text}`"


def own_docstring(cls: type) -> str:
    """The class's own docstring (not one inherited from its base), dedented."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def builtin_ops() -> list[tuple[str, type]]:
    """(name, class) of every op in ops/<kind>/, importing each op file."""
    return [(name, OPERATORS.get(name)) for name in OPERATORS.builtin_names()]


def _common_parameters() -> dict[str, inspect.Parameter]:
    return op_parameters(OP)


def op_section(name: str, cls: type) -> str:
    common = _common_parameters()
    # its own parameters, and common ones it redeclares with another default or type
    own = {k: p for k, p in op_parameters(cls).items()
           if k not in common or (p.default, p.annotation) != (common[k].default, common[k].annotation)}
    facts = [f"kind: {kind_of(cls)}"]
    if getattr(cls, "accelerator", "cpu") == "cuda":
        facts.append("model op (uses a GPU when one exists)")
    extra = getattr(cls, "extra", None)
    facts.append(f"needs: `pip install 'imgjuicer[{extra}]'`" if extra else "needs: the base install")
    lines = [f"### `{name}`", "", " · ".join(facts), ""]
    doc = own_docstring(cls)
    lines += [doc if doc else "(no docstring)", ""]
    if own:
        lines += ["| parameter | type | default |", "|---|---|---|"]
        for pname, prm in own.items():
            lines.append(f"| `{pname}` | {_cell(type_name(prm.annotation))} | "
                         f"{_cell(default_text(prm))} |")
    else:
        lines.append("No parameters of its own (only the common ones).")
    lines.append("")
    return "\n".join(lines)


def render(names: Optional[Iterable[str]] = None) -> str:
    """The catalogue as markdown; ``names`` limits it to those ops (any registered op)."""
    if names:
        ops = [(n, OPERATORS.get(n)) for n in names]
    else:
        ops = builtin_ops()
    by_kind = {kind: [] for kind, _, _ in KINDS}
    for name, cls in ops:
        by_kind[kind_of(cls)].append((name, cls))
    out = ["# Operators", "",
           f"Generated from the registry by `{GENERATED_BY}`; `dj-process --list-ops [NAME ...]` "
           "prints the same catalogue. Do not edit this page by hand: a test fails when it is out "
           "of date.", ""]
    counts = ", ".join(f"{len(by_kind[k])} {title.lower()}" for k, _, title in KINDS if by_kind[k])
    out += [f"{len(ops)} operators: {counts}. How ops work and how to write one: "
            "[ops-contract.md](ops-contract.md).", ""]
    out += ["## Common parameters", "",
            "Every op also accepts these (declared by `ops.base.OP`, validated like the op's own):",
            "", "| parameter | type | default |", "|---|---|---|"]
    for pname, prm in _common_parameters().items():
        out.append(f"| `{pname}` | {_cell(type_name(prm.annotation))} | {_cell(default_text(prm))} |")
    out.append("")
    for kind, _, title in KINDS:
        if not by_kind[kind]:
            continue
        out += [f"## {title}", ""]
        out += [f"- [`{n}`](#{n})" for n, _ in by_kind[kind]]
        out.append("")
        for name, cls in by_kind[kind]:
            out.append(op_section(name, cls))
    return "\n".join(out).rstrip() + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    """Write docs/operators.md (``--check``: only say whether it is up to date, exit 1 if not)."""
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(prog="gen_operator_docs", description=main.__doc__)
    ap.add_argument("--out", default=str(Path("docs") / "operators.md"))
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    text = render()
    out = Path(a.out)
    current = out.read_text(encoding="utf-8") if out.exists() else None
    if a.check:
        if current == text:
            print(f"{out} is up to date")
            return 0
        print(f"{out} is out of date: run {GENERATED_BY}")
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({text.count(chr(10))} lines)")
    return 0
