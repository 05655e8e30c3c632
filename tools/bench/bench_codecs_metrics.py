"""Benchmark: full-reference metrics per pair (768x512 and 2 MP) against peers measured in the
same run, and encode / decode throughput per codec setting.

    .venv/bin/python tools/bench/bench_codecs_metrics.py [--image PATH] [--repeat 3]
        [--butteraugli-main PATH] [--ssimulacra2-bin PATH] [--json out.json]

Pairs: a demo photo resized (Lanczos) to 768x512 and 1728x1152 (2.0 MP) vs its JPEG q50.
Peers, when installed: scikit-image SSIM, libjxl's butteraugli_main tool (a process per pair:
PNG decode + compare; pass --butteraugli-main or put it on PATH), the PyPI ``ssimulacra2``
port and the C++ ``ssimulacra2`` tool (--ssimulacra2-bin).  Times are best of --repeat, one
thread unless a row says otherwise.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
from ops.image import codecs as C
from ops.image.metrics import available_metrics
from ops.image.metrics.psnr_ssim import psnr, ssim

SIZES = {"768x512": (768, 512), "2MP": (1728, 1152)}
CODEC_SETTINGS = [
    ("jpeg", {"quality": 75}), ("jpeg", {"quality": 90, "optimize": True}),
    ("jpeg", {"quality": 90, "progressive": True, "optimize": True}),
    ("webp", {"quality": 75, "method": 4}), ("webp", {"quality": 75, "method": 6}),
    ("avif", {"quality": 60, "speed": 6}), ("avif", {"quality": 60, "speed": 9}),
    ("jxl", {"distance": 1.0, "effort": 3}), ("jxl", {"distance": 1.0, "effort": 7}),
]


def best_of(fn, repeat: int):
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def make_pair(src: Image.Image, size):
    ref = np.asarray(src.resize(size, Image.Resampling.LANCZOS))
    return ref, C.encode(ref, "jpeg", quality=50).decoded


def run_cli(args, parse):
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return parse(out)


def metric_rows(ref, dis, tmp: Path, args) -> list:
    rows = []
    add = rows.append
    t, v = best_of(lambda: psnr(ref, dis), args.repeat)
    add(("PSNR", "imgjuicer (numpy)", t, v))
    t, v = best_of(lambda: ssim(ref, dis), args.repeat)
    add(("SSIM (RGB mean)", "imgjuicer (scipy)", t, v))
    if importlib.util.find_spec("skimage"):
        from skimage.metrics import structural_similarity as sk
        kw = dict(channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                  data_range=255)
        t, v = best_of(lambda: sk(ref, dis, **kw), args.repeat)
        add(("SSIM (RGB mean)", "peer: scikit-image", t, v))
    ref_png, dis_png = tmp / "ref.png", tmp / "dis.png"
    Image.fromarray(ref).save(ref_png, compress_level=1)
    Image.fromarray(dis).save(dis_png, compress_level=1)
    avail = available_metrics()
    if avail["butteraugli"] is None:
        from ops.image.metrics.butteraugli import butteraugli
        for threads in (1, 2, 4):           # butteraugli_main of libjxl 0.7 uses 4 threads
            t, r = best_of(lambda: butteraugli(ref, dis, threads=threads), args.repeat)
            add(("Butteraugli max / 3-norm + distmap", f"imgjuicer (libjxl API, {threads} thr)",
                 t, f"{r.max_norm:.4f} / {r.pnorm:.4f}"))
        if args.butteraugli_main:
            def ba_cli():
                out = run_cli([args.butteraugli_main, str(ref_png), str(dis_png)],
                              lambda s: s.split("\n"))
                return f"{float(out[0]):.4f} / {float(out[1].split(':')[1]):.4f}"
            t, v = best_of(ba_cli, args.repeat)
            add(("Butteraugli max / 3-norm + distmap", "peer: butteraugli_main (process, 4 thr)",
                 t, v))
            r = butteraugli(ref, dis, hf_asymmetry=0.8)
            add(("Butteraugli max / 3-norm + distmap", "imgjuicer, hf_asymmetry 0.8 (value)",
                 float("nan"), f"{r.max_norm:.4f} / {r.pnorm:.4f}"))
    if avail["ssimulacra2"] is None:
        from ops.image.metrics.ssimulacra2 import ssimulacra2
        t, v = best_of(lambda: ssimulacra2(ref, dis), args.repeat)
        add(("SSIMULACRA2", "imgjuicer", t, v))
    if importlib.util.find_spec("ssimulacra2"):
        import ssimulacra2 as pypi
        fn = getattr(pypi, "compute_ssimulacra2", None)
        if fn is not None:
            t, v = best_of(lambda: fn(str(ref_png), str(dis_png)), args.repeat)
            add(("SSIMULACRA2", "peer: PyPI ssimulacra2", t, v))
    if args.ssimulacra2_bin:
        t, v = best_of(lambda: run_cli([args.ssimulacra2_bin, str(ref_png), str(dis_png)],
                                       lambda s: float(s.split()[-1])), args.repeat)
        add(("SSIMULACRA2", "peer: C++ ssimulacra2 (process)", t, v))
    return rows


def codec_rows(ref, repeat: int) -> list:
    mp = ref.shape[0] * ref.shape[1] / 1e6
    rows = []
    for fmt, params in CODEC_SETTINGS:
        encs = [C.encode(ref, fmt, **params) for _ in range(repeat)]
        enc_t = min(e.encode_seconds for e in encs)
        dec_t = min(e.decode_seconds for e in encs)
        label = fmt + " " + ", ".join(f"{k}={v}" for k, v in params.items())
        rows.append((label, mp / enc_t, mp / dec_t, encs[0].bpp))
    return rows


def find_tool(explicit, name, extra=()):
    for cand in [explicit, shutil.which(name), *extra]:
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=str(REPO / "data/demo/photos/coffee.png"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--butteraugli-main", default=None)
    p.add_argument("--ssimulacra2-bin", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    args.butteraugli_main = find_tool(args.butteraugli_main, "butteraugli_main",
                                      ["/work/ref/libjxl-0.7/build/tools/butteraugli_main"])
    args.ssimulacra2_bin = find_tool(args.ssimulacra2_bin, "ssimulacra2",
                                     ["/work/ref/ssimulacra2/build/ssimulacra2"])
    if os.path.exists(args.image):
        src = Image.open(args.image).convert("RGB")
    elif args.image == p.get_default("image"):     # no demo data yet: the same photo
        from skimage import data
        src, args.image = Image.fromarray(data.coffee()), "skimage.data.coffee()"
    else:
        p.error(f"--image {args.image} not found")
    result = {"image": args.image, "versions": C.codec_versions(), "metrics": {}, "codecs": []}
    print(f"source {args.image}; best of {args.repeat}; cpu count {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, size in SIZES.items():
            ref, dis = make_pair(src, size)
            rows = metric_rows(ref, dis, Path(tmp), args)
            result["metrics"][label] = rows
            print(f"\n== metrics per {label} pair ({size[0]}x{size[1]}, JPEG q50) ==")
            print(f"{'metric':36s} {'implementation':42s} {'ms':>9s}  value")
            for metric, impl, t, v in rows:
                ms = "-" if t != t else f"{t * 1e3:9.1f}"
                print(f"{metric:36s} {impl:42s} {ms:>9s}  {v}")
    ref, _ = make_pair(src, SIZES["768x512"])
    rows = codec_rows(ref, args.repeat)
    result["codecs"] = rows
    print("\n== codecs on the 768x512 image (1 thread) ==")
    print(f"{'setting':52s} {'enc MP/s':>9s} {'dec MP/s':>9s} {'bpp':>7s}")
    for label, enc, dec, bpp in rows:
        print(f"{label:52s} {enc:9.2f} {dec:9.1f} {bpp:7.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
