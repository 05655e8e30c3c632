"""Benchmark imgjuicer's SSIMULACRA 2.1 against the reference C++ tool and the PyPI port.

Pairs: matplotlib's sample photo (grace_hopper.jpg) resized to 768x512 and to 1728x1152
(~2 MP), each against its JPEG q50 round trip.  Runs, interleaved in one process so machine load
hits every contender alike: ours on in-memory arrays, ours including the PNG decode (what the
CLI does), the C++ tool (``--cxx PATH`` or env SSIMULACRA2_BIN; it is single-threaded, like
ours) and the PyPI ``ssimulacra2`` port when installed.  Prints median wall and CPU seconds per
pair and each score.

    .venv/bin/python tools/bench/bench_ssimulacra2.py --cxx /work/ref/ssimulacra2/build/ssimulacra2
"""
from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ops.image.metrics.ssimulacra2 import ssimulacra2

SIZES = {"768x512": (768, 512), "2MP 1728x1152": (1728, 1152)}


def make_pair(size: tuple[int, int], folder: Path, tag: str) -> tuple[Path, Path]:
    """Write (reference, JPEG-q50 distorted) PNGs of the sample photo at ``size``."""
    import matplotlib.cbook as cbook
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        ref = im.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    ref.save(buf, "JPEG", quality=50)
    buf.seek(0)
    dis = Image.open(buf).convert("RGB")
    paths = folder / f"{tag}_ref.png", folder / f"{tag}_dis.png"
    ref.save(paths[0])
    dis.save(paths[1])
    return paths


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _timed(fn):
    """(result, wall seconds, CPU seconds of this process and its children)."""
    c0, k0, w0 = time.process_time(), _children_cpu(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0 + _children_cpu() - k0


def contenders(ref_path: Path, dis_path: Path, cxx: str | None) -> dict:
    ref = np.asarray(Image.open(ref_path).convert("RGB"))
    dis = np.asarray(Image.open(dis_path).convert("RGB"))
    out = {
        "imgjuicer (arrays in memory)": lambda: ssimulacra2(ref, dis),
        "imgjuicer (incl. PNG decode)": lambda: ssimulacra2(Image.open(ref_path).convert("RGB"),
                                                            Image.open(dis_path).convert("RGB")),
    }
    if cxx:
        out["C++ reference tool (process)"] = lambda: float(subprocess.run(
            [cxx, str(ref_path), str(dis_path)], capture_output=True, text=True,
            check=True).stdout)
    try:
        import ssimulacra2 as pypi_port
        out["PyPI ssimulacra2 port"] = lambda: float(
            pypi_port.compute_ssimulacra2(str(ref_path), str(dis_path)))
    except ImportError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cxx", default=os.environ.get("SSIMULACRA2_BIN"),
                    help="path of the reference C++ ssimulacra2 binary (env SSIMULACRA2_BIN)")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs per contender and pair")
    args = ap.parse_args()
    if args.cxx and not Path(args.cxx).is_file():
        ap.error(f"--cxx {args.cxx}: no such file")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        ssimulacra2(np.zeros((16, 16, 3), np.uint8), np.ones((16, 16, 3), np.uint8))
        print(f"first call (numba kernels load / compile): {time.perf_counter() - t0:.2f} s")
        print(f"{'pair':15s} {'contender':30s} {'wall s':>8s} {'CPU s':>8s} {'score':>12s}")
        for name, size in SIZES.items():
            runs = contenders(*make_pair(size, folder, name.split()[0]), args.cxx)
            walls = {k: [] for k in runs}
            cpus = {k: [] for k in runs}
            scores = {k: fn() for k, fn in runs.items()}            # warm-up, and the score
            for _ in range(args.repeat):
                for k, fn in runs.items():
                    _, wall, cpu = _timed(fn)
                    walls[k].append(wall)
                    cpus[k].append(cpu)
            for k in runs:
                print(f"{name:15s} {k:30s} {statistics.median(walls[k]):8.3f} "
                      f"{statistics.median(cpus[k]):8.3f} {scores[k]:12.6f}")
    print(f"(median of {args.repeat}; CPU = user+system of this process and children; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
