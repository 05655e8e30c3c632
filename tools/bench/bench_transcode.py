"""Bytes saved by image_target_quality_transcode_mapper's search (SSIMULACRA2 >= target, the
fewest bytes over JPEG / WebP / AVIF / JPEG XL per image) against the source files, and against
a peer measured in the same run: one JPEG quality for the whole set (the lowest quality of a
5-step grid at which every image reaches the target, what a fixed re-encode needs to give
the same guarantee).

Sources: the photos packages ship (scikit-image, scikit-learn, matplotlib) as lossless PNG
(longest side 768, as tools/make_demo_data.py makes them) and the committed recipe pairs
(JPEG q80, 384 px).

    .venv/bin/python tools/bench/bench_transcode.py [--target 80] [--metric ssimulacra2]
"""
from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]

from ops.image.codecs import encode  # noqa: E402
from ops.image.target_quality import TargetSearch, measure_metric, reaches  # noqa: E402


def sources(tmp: Path) -> dict[str, list[Path]]:
    from pipelines.demo_data import PHOTOS, package_file
    pngs = []
    for package, rel, name in PHOTOS:
        img = Image.open(package_file(package, rel)).convert("RGB")
        img.thumbnail((768, 768), Image.LANCZOS)
        p = tmp / f"{name}.png"
        img.save(p)
        pngs.append(p)
    jpegs = sorted((REPO / "recipes" / "data" / "pairs").glob("*.jpg"))
    jpegs = [p for p in jpegs if Image.open(p).width >= 128]
    return {"lossless PNG sources": pngs, "JPEG q80 sources": jpegs}


def fixed_jpeg(refs: list[np.ndarray], metric: str, target: float) -> tuple[int, int]:
    """(quality, total bytes) of the lowest grid JPEG quality at which every image passes."""
    for q in (50, 60, 70, 80, 90, 95, 100):
        encs = [encode(r, "jpeg", quality=q, optimize=True) for r in refs]
        if all(reaches(measure_metric(r, e.decoded, metric), target, metric)
               for r, e in zip(refs, encs)):
            return q, sum(e.nbytes for e in encs)
    return 100, sum(e.nbytes for e in encs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metric", default="ssimulacra2", choices=["ssimulacra2", "butteraugli"])
    ap.add_argument("--target", type=float, default=80.0)
    args = ap.parse_args(argv)
    search = TargetSearch(args.metric, args.target, ["jpeg", "webp", "avif", "jxl"])
    with tempfile.TemporaryDirectory() as tmp:
        for label, files in sources(Path(tmp)).items():
            refs = [np.asarray(Image.open(f).convert("RGB")) for f in files]
            src_bytes = sum(f.stat().st_size for f in files)
            t0 = time.perf_counter()
            chosen, formats, encodes = 0, collections.Counter(), 0
            for f, ref in zip(files, refs):
                c = search.run(ref)
                encodes += c.encodes
                if c.best is None or c.best.nbytes >= f.stat().st_size:
                    chosen += f.stat().st_size
                    formats["source kept"] += 1
                else:
                    chosen += c.best.nbytes
                    formats[c.best.format] += 1
            seconds = time.perf_counter() - t0
            q, peer = fixed_jpeg(refs, args.metric, args.target)
            print(f"{label}: {len(files)} images, {src_bytes / 1024:.0f} KiB")
            op = ">=" if args.metric == "ssimulacra2" else "<="
            print(f"  per-image search ({args.metric} {op} {args.target:g}): "
                  f"{chosen / 1024:.0f} KiB = {100 * chosen / src_bytes:.1f}% "
                  f"of the sources ({100 - 100 * chosen / src_bytes:.1f}% saved); formats "
                  f"{dict(formats)}; {encodes / len(files):.1f} encodes/image, "
                  f"{seconds / len(files):.2f} s/image")
            print(f"  peer, one JPEG quality for all (q{q}): {peer / 1024:.0f} KiB = "
                  f"{100 * peer / src_bytes:.1f}% of the sources; the search is "
                  f"{100 - 100 * chosen / peer:.1f}% smaller", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
