"""Header-only filters (shape, size, aspect ratio; np 2) on 5,000 rows: imgjuicer vs Data-Juicer.

Both run as their real CLIs on the same generated data in the same run; wall time includes
start-up (what a user waits for).  Data-Juicer 1.6.1 lives in its own venv (created on first use,
reusing this venv's torch/ray through a .pth file so nothing multi-GB is downloaded).

    .venv/bin/python tools/bench/bench_header_filters.py [--rows 5000] [--dj-venv PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
DJ_VERSION = "1.6.1"


def make_data(root: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    recs = []
    for i in range(rows):
        w, h = int(rng.integers(16, 400)), int(rng.integers(16, 400))
        arr = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(arr).resize((w, h), Image.NEAREST)
        p = root / "img" / f"{i:05d}.jpg"
        img.save(p, quality=80)
        recs.append({"images": [str(p)], "text": f"row {i}"})
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return data


PROCESS = [
    {"image_shape_filter": {"min_width": 64, "max_width": 300, "min_height": 64,
                            "max_height": 8192}},
    {"image_size_filter": {"min_size": "1KB", "max_size": "5MB"}},
    {"image_aspect_ratio_filter": {"min_ratio": 0.5, "max_ratio": 2.0}},
]


def recipe(root: Path, name: str, data: Path) -> Path:
    out = root / name
    cfg = {"project_name": name, "dataset_path": str(data), "np": 2,
           "export_path": str(out / "result.jsonl"), "work_dir": str(out), "process": PROCESS}
    if name == "dj":
        cfg.update({"use_cache": False, "open_tracer": False, "executor_type": "default"})
    p = root / f"{name}.yaml"
    p.write_text(json.dumps(cfg))
    return p


def ensure_dj_venv(path: Path) -> Path:
    py = path / "bin" / "python"
    if py.exists():
        return path
    subprocess.run(["python3", "-m", "venv", str(path)], check=True)
    site = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # torch / ray from this venv: Data-Juicer otherwise installs them at run time
    Path(site, "zz_imgjuicer_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"py-data-juicer=={DJ_VERSION}",
                    "aiohttp"], check=True)
    return path


def timed(cmd: list[str], cwd: Path, env: dict, work_dir: Path) -> float:
    shutil.rmtree(work_dir, ignore_errors=True)  # no checkpoint / cache to resume from
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{r.stderr[-3000:]}")
    return dt


def count_rows(path: Path) -> int:
    with open(path) as fh:
        return sum(1 for line in fh if line.strip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dj-venv", default=os.path.expanduser("~/.cache/imgjuicer-djvenv"))
    ap.add_argument("--skip-dj", action="store_true")
    args = ap.parse_args(argv)
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0", TQDM_DISABLE="1",
               HF_DATASETS_DISABLE_PROGRESS_BARS="1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_data(root, args.rows)
        ours_cmd = [str(Path(sys.executable).parent / "dj-process"), "--config",
                    str(recipe(root, "ours", data))]
        results = {}
        ours = [timed(ours_cmd, REPO, env, root / "ours") for _ in range(args.repeat)]
        results["imgjuicer"] = (min(ours), count_rows(root / "ours" / "result.jsonl"))
        if not args.skip_dj:
            venv = ensure_dj_venv(Path(args.dj_venv))
            dj_cmd = [str(venv / "bin" / "dj-process"), "--config", str(recipe(root, "dj", data))]
            dj = [timed(dj_cmd, root, env, root / "dj") for _ in range(args.repeat)]
            results[f"data-juicer {DJ_VERSION}"] = (min(dj), count_rows(root / "dj" /
                                                                         "result.jsonl"))
    print(f"{args.rows} rows, 3 header-only filters, np 2, best of {args.repeat} "
          "(wall time incl. start-up)")
    print(f"{'tool':<22} {'seconds':>8} {'samples/s':>10} {'kept':>6}")
    for name, (sec, kept) in results.items():
        print(f"{name:<22} {sec:>8.2f} {args.rows / sec:>10.0f} {kept:>6}")
    if len(results) == 2:
        (a, ka), (b, kb) = results.values()
        print(f"speed-up: {b / a:.1f}x; same kept rows: {ka == kb}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
