"""A whole codec study (measure + figures + report) with imgjuicer against the same study done
the way the reference tool (web-image-formats-research) does it: Debian's command-line
encoders and decoders (cjpeg / djpeg, cwebp / dwebp, avifenc / avifdec, cjxl / djxl) with a
file round trip per variant, then the metrics on the decoded files.  Same images, same
settings, same metrics, one run; prints both wall times and their ratio.

    .venv/bin/python tools/bench/bench_study_cli.py [--photos data/demo/photos] [--images 3]

The peer's metric step is the reference tool's where Debian packages it: Butteraugli by
libjxl's ``butteraugli_main`` (libjxl-devtools 0.7, a process per variant on the decoded
file), PSNR by ffmpeg's psnr filter when ffmpeg is installed (else imgjuicer's, in-process).
SSIMULACRA2 is imgjuicer's, in-process: the C++ ``ssimulacra2`` tool is in no Debian 12
package and the PyPI ``ssimulacra2`` is a different implementation (docs/benchmarks.md).  Its
figures + report step is imgjuicer's (it reads the peer's quality.json from disk).  AVIF
quality is given to avifenc 0.11 (no --quality option) as the quantizer libavif 1.x derives
from it: round((100 - q) * 63 / 100) for --min and --max.
"""
from __future__ import annotations

import argparse
import glob
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

GRID = {"jpeg": [50, 65, 80, 90], "webp": [50, 65, 80, 90], "avif": [40, 55, 70, 85],
        "jxl": [50, 65, 80, 90]}
METRICS = ["psnr", "ssimulacra2", "butteraugli"]
TOOLS = ("cjpeg", "djpeg", "cwebp", "dwebp", "avifenc", "avifdec", "cjxl", "djxl",
         "butteraugli_main")


def peer_metrics(ref_path: str, dec_path: str, ref, dis, nbytes: int) -> dict:
    """The reference tool's metric calls on the files: butteraugli_main, ffmpeg psnr (when
    installed), SSIMULACRA2 in-process; returns measure()-style keys and seconds."""
    from ops.image.metrics import measure
    inproc = ["ssimulacra2"] + ([] if shutil.which("ffmpeg") else ["psnr"])
    m = measure(ref, dis, nbytes, inproc)
    seconds = m.pop("seconds")
    t0 = time.perf_counter()
    out = subprocess.run(["butteraugli_main", ref_path, dec_path], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    m["butteraugli_max"], m["butteraugli_p3"] = float(out[0]), float(out[1].split(":")[1])
    seconds["butteraugli"] = time.perf_counter() - t0
    if "psnr" not in m:
        t0 = time.perf_counter()
        err = subprocess.run(["ffmpeg", "-hide_banner", "-i", dec_path, "-i", ref_path,
                              "-lavfi", "psnr", "-f", "null", "-"], check=True,
                             capture_output=True, text=True).stderr
        avg = err.rsplit("average:", 1)[1].split()[0]
        m["psnr"] = float("inf") if avg == "inf" else float(avg)
        seconds["psnr"] = time.perf_counter() - t0
    m["seconds"] = seconds
    return m


def cli_round_trip(src_png: str, fmt: str, q: int, work: str) -> tuple[str, str, float, float]:
    """Encode ``src_png`` with the format's command-line encoder, decode to PNG; returns
    (encoded path, decoded path, encode seconds, decode seconds)."""
    base = os.path.join(work, f"{os.path.basename(src_png)}.{fmt}.q{q}")
    enc, dec = base + "." + fmt, base + ".dec.png"
    if fmt == "jpeg":
        ppm = base + ".ppm"
        from PIL import Image
        Image.open(src_png).convert("RGB").save(ppm)      # cjpeg reads PPM, not PNG
        e = ["cjpeg", "-quality", str(q), "-optimize", "-sample", "2x2", "-outfile", enc, ppm]
        d = ["djpeg", "-outfile", base + ".dec.ppm", enc]
    elif fmt == "webp":
        e = ["cwebp", "-quiet", "-q", str(q), "-m", "4", src_png, "-o", enc]
        d = ["dwebp", "-quiet", enc, "-o", dec]
    elif fmt == "avif":
        qz = str(round((100 - q) * 63 / 100))
        e = ["avifenc", "-j", "1", "-s", "6", "-y", "420", "-c", "aom", "--min", qz,
             "--max", qz, src_png, enc]
        d = ["avifdec", "-j", "1", enc, dec]
    else:
        e = ["cjxl", "--quiet", "-q", str(q), "-e", "7", "--num_threads=0", src_png, enc]
        d = ["djxl", "--quiet", "--num_threads=0", enc, dec]
    t0 = time.perf_counter()
    subprocess.run(e, check=True, capture_output=True)
    t1 = time.perf_counter()
    subprocess.run(d, check=True, capture_output=True)
    t2 = time.perf_counter()
    if fmt == "jpeg":
        dec = base + ".dec.ppm"
    return enc, dec, t1 - t0, t2 - t1


def peer_study(photos: list[str], out: str) -> dict:
    """The reference tool's way: files and processes; then the same figures and report."""
    from PIL import Image
    from ops.compare.generate import generate_figures
    from ops.compare.options import FigureOptions
    from ops.compare.quality_doc import QualityCollector
    from ops.compare.study import Study
    from ops.fields import Fields
    from ops.image.metrics import HIGHER_IS_BETTER
    from ops.image.sweep_plan import file_sha256
    work = os.path.join(out, "encoded")
    os.makedirs(work, exist_ok=True)
    t0 = time.perf_counter()
    rows = []
    for i, src in enumerate(photos):
        ref = np.asarray(Image.open(src).convert("RGB"))
        h, w = ref.shape[:2]
        source = {"path": src, "sha256": file_sha256(src), "width": w, "height": h,
                  "fragment": None}
        k = 0
        for fmt, qs in GRID.items():
            for q in qs:
                enc, dec, te, td = cli_round_trip(src, fmt, q, work)
                dis = np.asarray(Image.open(dec).convert("RGB"))
                m = peer_metrics(src, dec, ref, dis, os.path.getsize(enc))
                seconds = m.pop("seconds")
                stats = {**m, "encode_seconds": te, "decode_seconds": td,
                         "metric_seconds": seconds}
                meta = {"study_id": "cli-peer", "source": source, "format": fmt,
                        "setting": {"name": "quality", "value": q},
                        "params": {"quality": q}, "crop": None, "resolution": None,
                        "fragment": None, "width": w, "height": h,
                        "metrics": [x for x in HIGHER_IS_BETTER if x in m], "tools": {}}
                rows.append({Fields.id: f"{i}/{k}", Fields.meta: {"codec_variant": meta},
                             Fields.stats: stats})
                k += 1
    collector = QualityCollector()
    collector.add(rows)
    doc = collector.document()
    import json
    qpath = os.path.join(out, "quality.json")
    with open(qpath, "w") as fh:
        json.dump(doc, fh)
    t_measure = time.perf_counter() - t0
    with open(qpath) as fh:                   # the figure step reads the file, as the peer's
        doc = json.load(fh)
    study = Study("cli-peer", doc, qpath, out)
    generate_figures(study, out, FigureOptions())
    return {"seconds": time.perf_counter() - t0, "measure_seconds": t_measure,
            "variants": len(rows)}


def our_study(photos: list[str], out: str, np_workers: int) -> dict:
    """imgjuicer: one recipe, dj-process (sweep in memory, quality.json, figures, report)."""
    import json
    from pipelines.cli import process_main
    ds = os.path.join(out, "images.jsonl")
    with open(ds, "w") as fh:
        for p in photos:
            fh.write(json.dumps({"images": [p]}) + "\n")
    grid = {"jpeg": {"quality": GRID["jpeg"], "optimize": True, "subsampling": "4:2:0"},
            "webp": {"quality": GRID["webp"], "method": 4},
            "avif": {"quality": GRID["avif"], "speed": 6, "subsampling": "4:2:0"},
            "jxl": {"quality": GRID["jxl"], "effort": 7}}
    recipe = os.path.join(out, "study.yaml")
    with open(recipe, "w") as fh:
        json.dump({"project_name": "ours", "dataset_path": ds, "work_dir": out,
                   "export_path": os.path.join(out, "variants.jsonl"), "np": np_workers,
                   "use_checkpoint": False, "open_tracer": False,
                   "process": [{"image_codec_sweep_mapper": {
                       "study_id": "ours", "grid": grid, "metrics": METRICS,
                       "use_cache": False, "num_proc": np_workers}},
                       {"quality_report_aggregator": {}},
                       {"comparison_figure_aggregator": {}}]}, fh)
    t0 = time.perf_counter()
    rc = process_main(["--config", recipe])
    if rc != 0:
        raise SystemExit(f"dj-process failed ({rc})")
    with open(os.path.join(out, "summary.json")) as fh:
        summary = json.load(fh)
    sweep = next((o for o in summary.get("ops", []) if o.get("op") ==
                  "image_codec_sweep_mapper"), {})
    return {"seconds": time.perf_counter() - t0, "measure_seconds": sweep.get("seconds")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default="data/demo/photos")
    ap.add_argument("--images", type=int, default=3)
    args = ap.parse_args()
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        print(f"missing command-line tools {missing}: apt-get install libjpeg-turbo-progs webp "
              "libavif-bin libjxl-tools libjxl-devtools (tools/apt-packages.txt)",
              file=sys.stderr)
        return 2
    photos = sorted(glob.glob(os.path.join(args.photos, "*.png")))[:args.images]
    if not photos:
        print(f"no PNG photos in {args.photos} (make demo builds data/demo)", file=sys.stderr)
        return 2
    photos = [os.path.abspath(p) for p in photos]
    n = len(photos) * sum(len(v) for v in GRID.values())
    print(f"peer metrics: butteraugli_main, PSNR by "
          f"{'ffmpeg' if shutil.which('ffmpeg') else 'imgjuicer (no ffmpeg)'}, "
          "SSIMULACRA2 by imgjuicer")
    print(f"{len(photos)} photos, {n} variants, metrics {METRICS}; machine "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        ours = our_study(photos, a, 1)
        peer = peer_study(photos, b)
    print(f"imgjuicer (dj-process, np=1): whole study {ours['seconds']:.1f} s "
          f"(measure {ours['measure_seconds']} s)")
    print(f"peer (CLI encoders + file round trips): whole study {peer['seconds']:.1f} s "
          f"(measure {peer['measure_seconds']:.1f} s)")
    print(f"ratio peer / imgjuicer: whole study {peer['seconds'] / ours['seconds']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
