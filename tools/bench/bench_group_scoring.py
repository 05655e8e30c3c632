"""Benchmark: dj-score group mode on 8 copies of a 2 MP picture vs scoring them one by one.

    .venv/bin/python tools/bench/bench_group_scoring.py [--repeat 3]
The picture is a held-out scorer photo enlarged (Lanczos) to about 2 MP (the photos are under
1 MP; speed does not depend on the content).  Its 8 copies: a camera JPEG (q90), a platform
JPEG (q80), a re-upload (q70), a messenger WebP (q75), a 256-colour GIF, a PNG screenshot,
a 90% crop re-saved as JPEG and a 1600-pixel platform copy.  One by one = ``Scorer.score_files``
called once per file (decode + features + network, one torch thread); group mode = what
dj-score does for several files (decode, features and perceptual hashes on two threads,
network, a fitted transform for every ordered pair on two threads, optimum branching).  Each
round times both on the same files back to back; the verdict is the median of the per-round
ratios (target: group <= 3x one by one).  CPU seconds (process time) are printed too: on a
shared machine the wall-clock ratio depends on how many cores the two threads get.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def make_copies(folder: Path, photo: Path) -> list[str]:
    from PIL import Image
    from ops.scorer_training import transforms as T
    with Image.open(photo) as im:
        img = im.convert("RGB")
    s = (2.0e6 / (img.width * img.height)) ** 0.5
    big = np.asarray(img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS))
    h, w = big.shape[:2]
    orig = T.to_jpeg(big, 90, "4:2:0")
    plat = T.to_jpeg(orig.pixels, 80, "4:2:0")
    files = {"camera.jpg": orig, "platform.jpg": plat,
             "reupload.jpg": T.to_jpeg(plat.pixels, 70, "4:2:0"),
             "messenger.webp": T.to_webp(plat.pixels, 75),
             "anim.gif": T.to_gif(orig.pixels, 256, dither=True),
             "screenshot.png": T.to_png(plat.pixels),
             "crop.jpg": T.to_jpeg(T.crop(orig.pixels, (w // 20, h // 20, w - w // 20,
                                                        h - h // 20)), 85, "4:2:0"),
             "small.jpg": T.to_jpeg(T.resize(orig.pixels, (1600, round(1600 * h / w)),
                                             "bicubic"), 80, "4:2:0")}
    paths = []
    for name, enc in files.items():
        (folder / name).write_bytes(enc.data)
        paths.append(str(folder / name))
    return paths


def group_mode(scorer, paths: list[str]):
    from ops.scorer.phylogeny import group_and_reconstruct, load_copies
    loaded = load_copies(paths, scorer.k)
    scores = scorer.score_features([f for _, f, _ in loaded])
    return group_and_reconstruct([c for c, _, _ in loaded], scores, [h for _, _, h in loaded])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--photos", default=str(ROOT / "data" / "scorer" / "photos" / "heldout"))
    a = ap.parse_args(argv)
    import torch
    from ops.scorer.weights import Scorer
    torch.set_num_threads(1)
    photos = sorted(Path(a.photos).glob("*.png"))
    if not photos:
        raise SystemExit(f"no photos in {a.photos}: run tools/prepare_scorer_photos.py first")
    scorer = Scorer(threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_copies(Path(tmp), photos[len(photos) // 2])
        fams = group_mode(scorer, paths)                  # warm-up (imports, caches)
        rounds, cpu = [], []
        for _ in range(a.repeat):
            t, c = time.perf_counter(), time.process_time()
            for p in paths:
                scorer.score_files([p])
            one, one_cpu = time.perf_counter() - t, time.process_time() - c
            t, c = time.perf_counter(), time.process_time()
            fams = group_mode(scorer, paths)
            grp, grp_cpu = time.perf_counter() - t, time.process_time() - c
            rounds.append((one, grp))
            cpu.append((one_cpu, grp_cpu))
    ratios = [g / o for o, g in rounds]
    res = {"copies": len(paths), "megapixels": 2.0,
           "one_by_one_seconds": [round(o, 3) for o, _ in rounds],
           "group_seconds": [round(g, 3) for _, g in rounds],
           "median_ratio": round(float(np.median(ratios)), 2), "target_ratio": 3.0,
           "one_by_one_cpu_seconds": [round(o, 3) for o, _ in cpu],
           "group_cpu_seconds": [round(g, 3) for _, g in cpu],
           "median_cpu_ratio": round(float(np.median([g / o for o, g in cpu])), 2),
           "load_average": [round(x, 2) for x in os.getloadavg()],
           "parents": {Path(m.name).name: None if m.parent is None else
                       Path(paths[m.parent]).name for m in fams[0].members},
           "groups": len(fams), "root": Path(fams[0].root.name).name,
           "ranking": [Path(m.name).name for m in fams[0].members]}
    print(json.dumps(res, indent=1))
    verdict = "met" if res["median_ratio"] <= 3.0 else "NOT met"
    print(f"group mode / one by one = {res['median_ratio']:.2f}x (target <= 3x): {verdict}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
