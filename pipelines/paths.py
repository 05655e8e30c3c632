"""Confining a dataset's image paths to given roots (the recipe's ``image_roots``).

A dataset is data, but its image paths decide which files the run opens: a row saying
``../../../../etc/passwd`` is read like any other.  With ``image_roots`` set, every local image
path must resolve -- symlinks followed, ``..`` collapsed -- to a file inside one of the roots,
and URLs must start with one of the roots given as URL prefixes (``s3://bucket/images/``).
Off by default: local files are trusted unless the recipe says otherwise.
"""
from __future__ import annotations

import os
from typing import Iterable, Optional

MAX_LISTED = 5


def normalise_roots(roots: Optional[Iterable[str]], base: str = ".") -> Optional[list[str]]:
    """Local roots as real absolute folders (resolved against ``base``), URL roots as given."""
    if roots is None:
        return None
    out = []
    for r in roots:
        if "://" in r:
            out.append(r)
        else:
            out.append(os.path.realpath(os.path.join(base, os.path.expanduser(r))))
    return out


def inside(path: str, roots: list[str]) -> bool:
    """True when ``path`` (a resolved local path or a URL) lies inside one of ``roots``."""
    if "://" in path:
        return any("://" in r and path.startswith(r.rstrip("/") + "/") for r in roots)
    real = os.path.realpath(path)
    return any("://" not in r and (real == r or real.startswith(r.rstrip(os.sep) + os.sep))
               for r in roots)


def _paths(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value if isinstance(v, str) and v]


def outside_roots(columns: dict[str, list], roots: list[str], ids: list) -> list[str]:
    """``"row <id> column <c>: <path>"`` for every image path outside the roots."""
    bad = []
    for col, values in columns.items():
        for rid, value in zip(ids, values):
            for p in _paths(value):
                if not inside(p, roots):
                    bad.append(f"row {rid} column '{col}': {p}")
    return bad


def describe(bad: list[str], roots: list[str]) -> str:
    shown = "; ".join(bad[:MAX_LISTED]) + (f"; and {len(bad) - MAX_LISTED} more"
                                           if len(bad) > MAX_LISTED else "")
    return (f"{len(bad)} image path(s) lie outside image_roots ({', '.join(roots)}): {shown}. "
            "Fix the dataset, or add the folder to image_roots if it is meant to be read")
