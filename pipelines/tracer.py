"""Tracer: up to N examples per op of what it changed or dropped, in ``work_dir/trace/``."""
from __future__ import annotations

import os

from ops.base import dumps
from ops.fields import Fields


def _keys(before: dict, after: dict) -> list:
    """Both rows' keys in a fixed order (a set's order changes from process to process)."""
    return list(before) + [k for k in after if k not in before]


def _diff(before: dict, after: dict) -> dict:
    changed = {}
    for k in _keys(before, after):
        if k == Fields.id:
            continue
        b, a = before.get(k), after.get(k)
        if b != a:
            if isinstance(b, dict) and isinstance(a, dict):
                sub = {kk: {"before": b.get(kk), "after": a.get(kk)}
                       for kk in _keys(b, a) if b.get(kk) != a.get(kk)}
                changed[k] = sub
            else:
                changed[k] = {"before": b, "after": a}
    return changed


def trace_op(work_dir: str, index: int, op_name: str, before: list[dict], after: list[dict],
             dropped: list[dict], limit: int) -> str:
    """Write ``trace/<i>_<op>.jsonl``: changed samples (by id) then dropped ones with reasons."""
    d = os.path.join(work_dir, "trace")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{index:03d}_{op_name}.jsonl")
    by_id = {r.get(Fields.id): r for r in before}
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for r in after:
            if n >= limit:
                break
            rid = r.get(Fields.id)
            src = by_id.get(rid)
            if src is None and isinstance(rid, str) and "/" in rid:  # fan-out child
                src = by_id.get(rid.rsplit("/", 1)[0])
            if src is None:
                continue
            changes = _diff(src, r)
            if changes:
                fh.write(dumps({"id": rid, "kind": "changed", "changes": changes}) + "\n")
                n += 1
        for rec in dropped[: max(0, limit)]:
            fh.write(dumps({"id": rec.get("id"), "kind": "dropped",
                            "reason": rec.get("reason") or rec.get("error"),
                            "sample": rec.get("sample")}) + "\n")
    return path
