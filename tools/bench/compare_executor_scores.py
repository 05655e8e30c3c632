"""Run the generation-loss recipe on the local and the Ray executor and print how far their
scores differ (docs/run-promises.md: floats agree within a tolerance, not bit for bit).

    python tools/bench/compare_executor_scores.py FOLDER_OF_COPIES OUT_DIR [--key value ...]

Extra arguments are recipe overrides for both runs (e.g. ``--process '[...]'``).
"""
from __future__ import annotations

import json
import os
import sys

from pipelines.cli import run_recipe
from pipelines.config import parse_recipe

RECIPE = "recipes/generation-loss.yaml"


def scores(work: str) -> dict:
    """id -> generation-loss scores of every scored sample (kept or filtered)."""
    out = {}
    for name in ("result.jsonl", "filtered.jsonl"):
        with open(os.path.join(work, name), encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                row = row.get("sample", row)
                out[row["__dj__id__"]] = row["__dj__stats__"]["generation_loss"]
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    data, out, extra = argv[0], argv[1], argv[2:]
    got = {}
    for executor in ("local", "ray"):
        work = os.path.join(out, executor)
        run_recipe(parse_recipe(["--config", RECIPE, "--dataset_path", data, "--work_dir", work,
                                 "--export_path", os.path.join(work, "result.jsonl"),
                                 "--executor_type", executor, *extra]))
        got[executor] = scores(work)
    a, b = got["local"], got["ray"]
    pairs = [(x, y) for k in a for x, y in zip(a[k], b[k])]
    diffs = [abs(x - y) for x, y in pairs]
    print(f"{len(pairs)} scores: {sum(d == 0 for d in diffs)} identical; max |local - ray| "
          f"{max(diffs):.3g}, max relative {max(d / abs(x) for d, (x, _) in zip(diffs, pairs)):.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
