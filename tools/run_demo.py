"""Run the main recipes end to end on the demo data (offline) and say where the results are.

Recipes whose inputs are missing on this machine (e.g. model weights that were never fetched)
are reported with the reason and the command that fixes it; the others still run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# (label, recipe, extra args)
RECIPES = [
    ("framework demo", "recipes/demo.yaml", []),
    ("codec study (format comparison, 3 photos) + comparison figures", "recipes/format-comparison.yaml",
     ["--dataset_path", "data/demo/images_3.jsonl"]),
    ("generation-loss dedup", "recipes/generation-loss.yaml", []),
    ("ImgDiff difference areas", "recipes/imgdiff.yaml", []),
]


def run(label: str, recipe: str, extra: list[str]) -> tuple[str, str]:
    if not (REPO / recipe).exists():
        return label, f"skipped: {recipe} is not in this checkout"
    t0 = time.time()
    r = subprocess.run([str(BIN / "dj-process"), "--config", recipe, *extra], cwd=REPO,
                       capture_output=True, text=True)
    dt = time.time() - t0
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith(("dj-process:", " ",
                                                                              "Searched", "Fetch"))]
        reason = "\n      ".join(lines[:12]) or "(no message)"
        return label, f"did not run ({dt:.0f}s):\n      {reason}"
    tail = [ln for ln in r.stdout.splitlines() if ln.startswith(("total:", "result:", "errors:",
                                                                 "filtered:")) or ": /" in ln]
    return label, f"done in {dt:.0f}s\n      " + "\n      ".join(tail)


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    results = [run(*r) for r in RECIPES]
    print("\nimgjuicer demo results")
    for label, msg in results:
        print(f"  - {label}: {msg}")
    return 0 if results and results[0][1].startswith("done") else 1


if __name__ == "__main__":
    raise SystemExit(main())
