"""Streaming a large header-only recipe on Ray: 100,000 vs 1,000,000 rows.

Rows point at a few hundred real image files (the committed recipe photos, resized to varied
sizes); the dataset is a folder of 50,000-row jsonl shards that Ray workers read; the export is
sharded (parquet parts + manifest).  Each size runs as the real CLI in its own process; a
sampler records the peak RSS of the driver and of every Ray worker process.  Linear cost means
the 1,000,000-row run takes ~10x the time of the 100,000-row run at the same throughput, with
the same peak memory per process.

    .venv/bin/python tools/bench/bench_ray_scale.py [--rows 100000 1000000] [--files 300]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARD_ROWS = 50_000
PROCESS = [
    {"image_shape_filter": {"min_width": 64, "min_height": 64}},
    {"image_size_filter": {"min_size": "1KB", "max_size": "5MB"}},
    {"image_aspect_ratio_filter": {"min_ratio": 0.5, "max_ratio": 2.0}},
]


def make_files(root: Path, n: int) -> list[str]:
    """``n`` real JPEG / PNG files: the committed pair photos at varied sizes."""
    photos = sorted((REPO / "recipes" / "data" / "pairs").glob("*.jpg"))
    (root / "img").mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = Image.open(photos[i % len(photos)]).convert("RGB")
        side = 40 + (i * 37) % 360
        img = src.resize((side, max(8, side * src.height // src.width)), Image.BILINEAR)
        p = root / "img" / f"{i:04d}.{'png' if i % 4 == 0 else 'jpg'}"
        img.save(p)
        out.append(f"../img/{p.name}")
    return out


def make_shards(root: Path, files: list[str], rows: int) -> Path:
    data = root / f"data_{rows}"
    data.mkdir(parents=True, exist_ok=True)
    for s in range(0, rows, SHARD_ROWS):
        with open(data / f"part-{s // SHARD_ROWS:05d}.jsonl", "w") as fh:
            for i in range(s, min(rows, s + SHARD_ROWS)):
                fh.write(json.dumps({"images": [files[i % len(files)]], "n": i}) + "\n")
    return data


class PeakRss(threading.Thread):
    """Samples the RSS of the driver process and of every Ray worker, keeps the maxima."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop, self.driver, self.worker = pid, threading.Event(), 0, 0

    def run(self):
        while not self.stop.is_set():
            try:
                self.driver = max(self.driver, psutil.Process(self.pid).memory_info().rss)
            except psutil.Error:
                pass
            for p in psutil.process_iter(["name", "cmdline"]):
                try:
                    cmd = " ".join(p.info["cmdline"] or [])
                    if "ray::" in (p.info["name"] or "") or "default_worker.py" in cmd:
                        self.worker = max(self.worker, p.memory_info().rss)
                except psutil.Error:
                    continue
            time.sleep(0.5)


def run(root: Path, data: Path, rows: int) -> dict:
    work = root / f"work_{rows}"
    recipe = root / f"recipe_{rows}.yaml"
    recipe.write_text(yaml.safe_dump({
        "project_name": f"scale-{rows}", "dataset_path": str(data),
        "export_path": str(root / f"out_{rows}") + "/", "work_dir": str(work),
        "executor_type": "ray", "np": os.cpu_count() or 1, "use_checkpoint": False,
        "open_tracer": False, "process": PROCESS}))
    env = dict(os.environ, PYTHONPATH=str(REPO), TQDM_DISABLE="1", RAY_USAGE_STATS_ENABLED="0")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "--config", str(recipe)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    sampler = PeakRss(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"run of {rows} rows failed:\n{err[-3000:]}")
    manifest = json.loads((root / f"out_{rows}" / "manifest.json").read_text())
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "exported": manifest["rows"], "parts": len(manifest["parts"]),
            "driver_peak_mib": sampler.driver / 2**20, "worker_peak_mib": sampler.worker / 2**20}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--files", type=int, default=300)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_ray_scale_") as tmp:
        root = Path(tmp)
        files = make_files(root, args.files)
        results = []
        for rows in args.rows:
            data = make_shards(root, files, rows)
            r = run(root, data, rows)
            results.append(r)
            print(f"{rows:>9,} rows: {r['seconds']:7.1f} s  {r['rows_per_s']:8,.0f} rows/s  "
                  f"exported {r['exported']:,} in {r['parts']} parts  driver peak "
                  f"{r['driver_peak_mib']:.0f} MiB  worker peak {r['worker_peak_mib']:.0f} MiB",
                  flush=True)
        if len(results) >= 2:
            a, b = results[0], results[-1]
            print(f"{b['rows'] / a['rows']:.0f}x rows: {b['seconds'] / a['seconds']:.2f}x time, "
                  f"driver peak {b['driver_peak_mib'] / a['driver_peak_mib']:.2f}x, worker peak "
                  f"{b['worker_peak_mib'] / max(a['worker_peak_mib'], 1):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
