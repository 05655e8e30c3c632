"""Run the main recipes end to end on the demo data (offline) and say where the results are.

Recipes whose inputs are missing on this machine (e.g. model weights that were never fetched)
are reported with the reason and the command that fixes it; the others still run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]       # the checkout: recipes/ and data/demo
BIN = Path(sys.executable).parent
BAR_EVERY_S = 15  # a running op's progress bar is echoed at most this often

# (label, recipe, extra args)
RECIPES = [
    ("framework demo", "recipes/demo.yaml", []),
    ("codec study (format comparison, 3 photos) + comparison figures", "recipes/format-comparison.yaml",
     ["--dataset_path", "data/demo/images_3.jsonl"]),
    ("generation-loss dedup", "recipes/generation-loss.yaml", []),
    ("ImgDiff difference areas", "recipes/imgdiff.yaml", []),
]


def _progress(line: str) -> str | None:
    """The part of a dj-process log line worth showing while a recipe runs."""
    if " INFO " not in line:
        return None
    msg = line.split(" INFO ", 1)[1].strip()
    return msg if msg.startswith(("dataset ", "op ", "ops ", "exported ", "resuming ")) else None


def run(label: str, recipe: str, extra: list[str], step: str = "") -> tuple[str, str]:
    if not (REPO / recipe).exists():
        return label, f"skipped: {recipe} is not in this checkout"
    t0 = time.time()
    print(f"{step}{label}: running {recipe} ...", flush=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen([str(BIN / "dj-process"), "--config", recipe, *extra], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as proc:
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
        reader.start()
        err: list[str] = []
        last_bar = 0.0
        for line in proc.stderr:  # text mode: tqdm's "\r" updates arrive as lines too
            err.append(line)
            shown = _progress(line)
            now = time.time()
            if shown is None and "%|" in line and now - last_bar >= BAR_EVERY_S:
                shown, last_bar = " ".join(line.split()), now  # a long op's progress bar
            if shown:
                print(f"    [{now - t0:5.0f}s] {shown}", flush=True)
        proc.wait()
        reader.join()
    dt = time.time() - t0
    if proc.returncode != 0:
        lines = [ln.rstrip() for ln in err if ln.startswith(("dj-process:", " ", "Searched",
                                                              "Fetch"))]
        reason = "\n      ".join(lines[:12]) or "(no message)"
        return label, f"did not run ({dt:.0f}s):\n      {reason}"
    tail = [ln.rstrip() for ln in out if ln.startswith(("total:", "result:", "errors:",
                                                         "filtered:")) or ": /" in ln]
    return label, f"done in {dt:.0f}s\n      " + "\n      ".join(tail)


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    results = [run(*r, step=f"[{i}/{len(RECIPES)}] ") for i, r in enumerate(RECIPES, 1)]
    print("\nimgjuicer demo results")
    for label, msg in results:
        print(f"  - {label}: {msg}")
    return 0 if results and results[0][1].startswith("done") else 1


if __name__ == "__main__":
    raise SystemExit(main())
