"""Benchmark: the same CPU-op image recipe on the local executor and on Ray, at equal worker
counts (np = 1 and 2), over generated small images.

    .venv/bin/python tools/bench/bench_executors.py [--n 5000] [--repeat 2] [--workers 1 2]
        [--json out.json]

Recipe: image_metadata_mapper, image_shape_filter, image_aspect_ratio_filter,
image_size_filter (header reads, no decode), checkpoints and tracer on (the defaults).
Ray is started once, before the timed runs: its startup is reported on its own line.  A run's
time is the executor's wall time from recipe to exported file; best of --repeat, the two
executors interleaved so that background load hits both alike.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

PROCESS = [
    {"image_metadata_mapper": {}},
    {"image_shape_filter": {"min_width": 32, "max_width": 4096}},
    {"image_aspect_ratio_filter": {"min_ratio": 0.5, "max_ratio": 2.0}},
    {"image_size_filter": {"min_size": "100B", "max_size": "1MB"}},
]


def make_images(root: Path, n: int) -> Path:
    """n small JPEG / PNG images of varied sizes and a jsonl listing them."""
    import numpy as np
    from PIL import Image

    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
             for w, h in [(48, 32), (32, 32), (96, 24), (40, 64), (64, 48)]]
    with open(root / "data.jsonl", "w") as fh:
        for i in range(n):
            ext = "png" if i % 4 == 0 else "jpg"
            name = f"img/{i:05d}.{ext}"
            Image.fromarray(tiles[i % len(tiles)]).save(root / name)
            fh.write(json.dumps({"images": [name], "n": i}) + "\n")
    return root / "data.jsonl"


def run_once(executor: str, np_: int, data: Path, work: Path) -> tuple[float, dict]:
    from pipelines.cli import run_recipe
    from pipelines.config import parse_recipe

    shutil.rmtree(work, ignore_errors=True)
    recipe_path = work.parent / "bench_recipe.yaml"
    recipe_path.write_text(json.dumps({"project_name": "bench", "process": PROCESS}))
    recipe = parse_recipe(["--config", str(recipe_path), "--dataset_path", str(data),
                           "--work_dir", str(work), "--export_path", str(work / "out.jsonl"),
                           "--np", str(np_), "--executor_type", executor])
    t0 = time.perf_counter()
    summary = run_recipe(recipe)
    return time.perf_counter() - t0, summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    logging.getLogger("imgjuicer").setLevel(logging.WARNING)

    import ray

    tmp = Path(tempfile.mkdtemp(prefix="bench_executors_"))
    try:
        t0 = time.perf_counter()
        data = make_images(tmp / "data", args.n)
        print(f"generated {args.n} images in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=max(args.workers), include_dashboard=False,
                 logging_level=logging.WARNING)
        ray_start = time.perf_counter() - t0
        print(f"ray startup (excluded below): {ray_start:.2f}s")
        best: dict = {}
        kept: dict = {}
        for _ in range(args.repeat):
            for w in args.workers:
                for ex in ("local", "ray"):
                    secs, summary = run_once(ex, w, data, tmp / f"work_{ex}_{w}")
                    best[(ex, w)] = min(secs, best.get((ex, w), float("inf")))
                    kept[(ex, w)] = summary["kept"]
        ray.shutdown()
        print(f"\n{'executor':<8} {'np':>3} {'seconds':>8} {'samples/s':>10} {'kept':>6}")
        rows = []
        for w in args.workers:
            for ex in ("local", "ray"):
                s = best[(ex, w)]
                rows.append({"executor": ex, "np": w, "seconds": round(s, 3),
                             "samples_per_s": round(args.n / s, 1), "kept": kept[(ex, w)]})
                print(f"{ex:<8} {w:>3} {s:>8.2f} {args.n / s:>10.0f} {kept[(ex, w)]:>6}")
        print()
        for w in args.workers:
            ratio = best[("local", w)] / best[("ray", w)]
            print(f"np={w}: ray throughput = {ratio:.2f} x local (target >= 0.90: "
                  f"{'met' if ratio >= 0.9 else 'NOT met'})")
        lo, hi = min(args.workers), max(args.workers)
        if hi > lo:
            for ex in ("local", "ray"):
                print(f"{ex}: np {lo} -> {hi} speed-up {best[(ex, lo)] / best[(ex, hi)]:.2f}x")
        assert len({kept[k] for k in kept}) == 1, f"executors disagree on kept rows: {kept}"
        if args.json:
            Path(args.json).write_text(json.dumps({"n": args.n, "ray_startup_s": ray_start,
                                                   "runs": rows}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
