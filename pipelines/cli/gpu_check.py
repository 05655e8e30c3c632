"""Check the chained recipe on real CUDA actors: GPUs seen, per-op throughput, GPU memory, and
the batch sizes the model ops use.  Run it on a machine (or Ray cluster) with GPUs:

    python tools/gpu_check.py                               # local Ray on this machine
    python tools/gpu_check.py --ray-address auto            # an existing cluster
    python tools/gpu_check.py --repeat 20                   # 20x the committed pairs
    python tools/gpu_check.py --recipe recipes/imgdiff.yaml

It runs the recipe with ``ray_require_gpus: true`` (a CUDA op that would fall back to CPU
fails instead), samples ``nvidia-smi`` every 0.5 s for the peak memory used on each GPU, and
prints one line per op: rows in, seconds, rows/s, where it ran.  Models missing on this
machine are fetched first when it has network (or listed, with the command to fetch them).
``--allow-cpu`` runs the same check without GPUs (the CPU fallback), for a dry run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]       # the checkout: recipes/ and their data


def cuda_devices() -> list[dict]:
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [{"index": i, "name": torch.cuda.get_device_name(i),
             "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
            for i in range(torch.cuda.device_count())]


class GpuMemory(threading.Thread):
    """Peak ``memory.used`` (MiB) per GPU from nvidia-smi while the recipe runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.peak = threading.Event(), {}
        self.tool = shutil.which("nvidia-smi")

    def run(self):
        while self.tool and not self.stop.is_set():
            r = subprocess.run([self.tool, "--query-gpu=index,memory.used",
                                "--format=csv,noheader,nounits"], capture_output=True,
                               text=True)
            for line in r.stdout.splitlines():
                idx, _, used = line.partition(",")
                if used.strip().isdigit():
                    self.peak[idx.strip()] = max(self.peak.get(idx.strip(), 0), int(used))
            time.sleep(0.5)


def repeated_dataset(src: Path, repeat: int, dest: Path) -> Path:
    """The recipe's pairs ``repeat`` times, with absolute image paths."""
    base = src.parent
    lines = []
    for line in src.read_text().splitlines():
        row = json.loads(line)
        for k in ("image_path1", "image_path2"):
            row[k] = str((base / row[k]).resolve())
        if "images" in row:
            row["images"] = [row["image_path1"], row["image_path2"]]
        lines.append(row)
    with open(dest, "w") as fh:
        for _ in range(repeat):
            for row in lines:
                fh.write(json.dumps(row) + "\n")
    return dest


def batch_sizes(recipe: dict) -> list[str]:
    out = []
    for item in recipe.get("process", []):
        (name, params), = item.items()
        params = params or {}
        keys = {k: v for k, v in params.items() if k.endswith("batch_size")}
        if keys or params.get("accelerator") == "cuda":
            out.append(f"{name}: " + ", ".join(f"{k}={v}" for k, v in keys.items()))
    return out


def main(argv=None) -> int:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(REPO / "recipes" / "imgdiff-dataset.yaml"))
    ap.add_argument("--repeat", type=int, default=4, help="copies of the recipe's pairs")
    ap.add_argument("--ray-address", default=None, help="'auto' joins a running cluster")
    ap.add_argument("--allow-cpu", action="store_true", help="run without GPUs (CPU fallback)")
    args = ap.parse_args(argv)

    gpus = cuda_devices()
    print("CUDA devices:", ", ".join(f"{g['index']}: {g['name']} ({g['memory_gib']} GiB)"
                                     for g in gpus) or "none")
    if not gpus and not args.allow_cpu and not args.ray_address:
        print("gpu_check: torch sees no CUDA device here (driver, CUDA build of torch, "
              "CUDA_VISIBLE_DEVICES?); --allow-cpu checks the CPU fallback instead, "
              "--ray-address auto a cluster whose nodes have GPUs", file=sys.stderr)
        return 1
    recipe = yaml.safe_load(Path(args.recipe).read_text())
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        tmp = Path(tmp)
        data = repeated_dataset((REPO / recipe["dataset_path"]).resolve(), args.repeat,
                                tmp / "pairs.jsonl")
        recipe.update(dataset_path=str(data), work_dir=str(tmp / "work"), executor_type="ray",
                      export_path=str(tmp / "work" / "result.jsonl"), use_checkpoint=False,
                      ray_require_gpus=not args.allow_cpu)
        if args.ray_address:
            recipe["ray_address"] = args.ray_address
        path = tmp / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        sampler = GpuMemory()
        sampler.start()
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pipelines.cli", "--config", str(path)],
                           cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                           capture_output=True, text=True)
        total = time.perf_counter() - t0
        sampler.stop.set()
        if r.returncode != 0:
            print(r.stderr[-4000:], file=sys.stderr)
            return r.returncode
        summary = json.loads((tmp / "work" / "summary.json").read_text())
        log = (tmp / "work" / "run.log").read_text()
    plans = dict(re.findall(r"ops? ([\d]+:[^:]+?(?:, [\d]+:[^:]+?)*): \d+ blocks, (.+)", log))
    print(f"\n{'op':<46} {'rows in':>8} {'sec':>8} {'rows/s':>8}  runs as")
    for c in summary["ops"]:
        where = next((v for k, v in plans.items() if f"{c['index']}:{c['op']}" in k), "")
        rate = c["rows_in"] / c["seconds"] if c["seconds"] else float("inf")
        print(f"{c['op']:<46} {c['rows_in']:>8} {c['seconds']:>8.2f} {rate:>8.1f}  {where}")
    print(f"\nwhole run: {total:.1f} s for {summary['rows_in']} pairs")
    print("peak GPU memory used (nvidia-smi, MiB):",
          ", ".join(f"GPU {k}: {v}" for k, v in sorted(sampler.peak.items())) or "n/a")
    print("batch sizes:", "; ".join(batch_sizes(recipe)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
