"""Op fusion for pixel ops: three pixel-reading filters fused in one pass vs run op by op.

The recipe: pixel_mean_filter + pixel_area_filter + pixel_std_filter (custom ops loaded from
tests/plugins/pixel_filters_op.py the way a user loads theirs; each decodes the image through
ops.image.io.load_image, the decode path of every pixel op, and computes a cheap statistic on a
sparse pixel grid, so the decode is most of their work).  The same data, the same
executor, ``op_fusion: true`` vs ``false``, interleaved, best of ``--repeat``; np 1 runs
in-process and also counts decodes.

    .venv/bin/python tools/bench/bench_pixel_fusion.py [--rows 200] [--repeat 2] [--np 1 2]
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

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests" / "plugins" / "pixel_filters_op.py"
PHOTOS = REPO / "data" / "scorer" / "photos"
PROCESS = [
    {"pixel_mean_filter": {"low": 20}},
    {"pixel_area_filter": {"low": 20_000}},
    {"pixel_std_filter": {"low": 10}},
]


def make_data(root: Path, rows: int) -> Path:
    """``rows`` JPEGs of 1024-2048 x 768-1536 px, the size of typical web photos (the scorer
    photos resized, when present)."""
    import numpy as np
    from PIL import Image

    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(1)
    sources = sorted(PHOTOS.rglob("*.png"))[:12] if PHOTOS.is_dir() else []
    pics = [Image.open(p).convert("RGB") for p in sources]
    if not pics:
        pics = [Image.fromarray(rng.integers(0, 255, (720, 960, 3), dtype=np.uint8))]
    with open(root / "data.jsonl", "w") as fh:
        for i in range(rows):
            src = pics[i % len(pics)]
            w, h = int(rng.integers(1024, 2048)), int(rng.integers(768, 1536))
            path = root / "img" / f"{i:05d}.jpg"
            src.resize((w, h)).save(path, quality=85)
            fh.write(json.dumps({"images": [str(path)], "n": i}) + "\n")
    return root / "data.jsonl"


def run(data: Path, work: Path, np_: int, fusion: bool) -> tuple[float, dict, int]:
    from ops.image import io
    from pipelines.cli import run_recipe
    from pipelines.config import parse_recipe

    shutil.rmtree(work, ignore_errors=True)
    recipe_path = work.parent / "pixel.yaml"
    recipe_path.write_text(json.dumps({"project_name": "pixel", "process": PROCESS}))
    recipe = parse_recipe(["--config", str(recipe_path), "--dataset_path", str(data),
                           "--work_dir", str(work), "--export_path", str(work / "out.jsonl"),
                           "--np", str(np_), "--op_fusion", str(fusion).lower(),
                           "--custom_operator_paths", json.dumps([str(PLUGIN)])])
    before = io.counters["decodes"]
    c0 = _cpu()
    t0 = time.perf_counter()
    summary = run_recipe(recipe)
    summary["cpu_seconds"] = _cpu() - c0
    return time.perf_counter() - t0, summary, io.counters["decodes"] - before


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the worker pools)."""
    import resource
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                  resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--np", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    logging.getLogger("imgjuicer").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench_pixel_fusion_"))
    try:
        data = make_data(tmp / "data", args.rows)
        best: dict = {}
        cpu: dict = {}
        info: dict = {}
        for _ in range(args.repeat):
            for np_ in args.np:
                for fusion in (True, False):
                    secs, summary, decodes = run(data, tmp / "work", np_, fusion)
                    key = (np_, fusion)
                    best[key] = min(secs, best.get(key, float("inf")))
                    cpu[key] = min(summary["cpu_seconds"], cpu.get(key, float("inf")))
                    info[key] = (summary["kept"], decodes, [c["rows_in"] for c in
                                                            summary["ops"]])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.rows} rows, 3 pixel-reading filters, best of {args.repeat}")
    print(f"{'np':>3} {'fusion':>7} {'seconds':>8} {'rows/s':>7} {'CPU s':>6} {'decodes':>9} "
          f"{'kept':>5}")
    for (np_, fusion), secs in sorted(best.items()):
        kept, decodes, _ = info[(np_, fusion)]
        shown = str(decodes) if np_ == 1 else "(workers)"
        print(f"{np_:>3} {str(fusion):>7} {secs:>8.2f} {args.rows / secs:>7.0f} "
              f"{cpu[(np_, fusion)]:>6.1f} {shown:>9} {kept:>5}")
    for np_ in args.np:
        on, off = best[(np_, True)], best[(np_, False)]
        print(f"np {np_}: fused {off / on:.2f}x the throughput of op by op (wall), "
              f"{cpu[(np_, False)] / cpu[(np_, True)]:.2f}x less CPU; rows entering each op "
              f"{info[(np_, True)][2]}")
    assert len({v[0] for v in info.values()}) == 1, "fused and unfused runs disagree"
    return 0


if __name__ == "__main__":
    sys.exit(main())
