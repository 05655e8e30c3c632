"""Build the demo data set from photos that installed packages ship (offline, deterministic).

data/demo/
  photos/*.png          lossless sources: scikit-image, scikit-learn and matplotlib sample photos
  images.jsonl          one row per photo ({"images": [...], "fragment": [x, y, w, h]}): codec
                        studies (fragment = the most detailed 256 px window); images_3.jsonl
                        holds the first three (what `make demo` sweeps, to keep it short)
  pairs.jsonl           photo pairs + an "images" column + odd files: the framework demo recipe
  imgdiff.jsonl         {image_path1, image_path2, caption1, caption2}: the ImgDiff recipe
  copies/               each of 3 photos plus 5 lossy copies: the generation-loss recipe
  small/                odd files (tiny, extreme aspect ratio, truncated) to show filtering
"""
from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PHOTOS = [  # (package, path inside the package, name)
    ("skimage", "data/astronaut.png", "astronaut"),
    ("skimage", "data/chelsea.png", "chelsea"),
    ("skimage", "data/coffee.png", "coffee"),
    ("skimage", "data/rocket.jpg", "rocket"),
    ("skimage", "data/motorcycle_left.png", "motorcycle"),
    ("sklearn", "datasets/images/china.jpg", "china"),
    ("sklearn", "datasets/images/flower.jpg", "flower"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "grace_hopper"),
]


def package_file(package: str, rel: str) -> Path:
    import importlib
    mod = importlib.import_module(package)
    path = Path(mod.__file__).parent / rel
    if not path.exists():
        raise FileNotFoundError(f"{package} does not ship {rel} (looked at {path})")
    return path


def save_photos(out: Path, max_side: int) -> list[Path]:
    (out / "photos").mkdir(parents=True, exist_ok=True)
    paths = []
    for package, rel, name in PHOTOS:
        img = Image.open(package_file(package, rel)).convert("RGB")
        if max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.LANCZOS)
        p = out / "photos" / f"{name}.png"
        img.save(p, optimize=False, compress_level=3)
        paths.append(p)
    return paths


def detail_fragment(img: Image.Image, side: int = 256) -> list[int]:
    """[x, y, w, h] of the side x side window with the most gradient energy: the analysis
    fragment that crop-impact studies centre their crops on."""
    g = np.asarray(img.convert("L"), dtype=np.float64)
    energy = np.zeros_like(g)
    energy[:, 1:] += np.abs(np.diff(g, axis=1))
    energy[1:, :] += np.abs(np.diff(g, axis=0))
    h, w = g.shape
    side = min(side, h, w)
    ii = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = ii[side:, side:] - ii[:-side, side:] - ii[side:, :-side] + ii[:-side, :-side]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return [int(x), int(y), side, side]


def plant_object(img: Image.Image, seed: int) -> tuple[Image.Image, list[int]]:
    """Copy of ``img`` with a solid object drawn in; returns it and the object's xyxy box."""
    rng = np.random.default_rng(seed)
    w, h = img.size
    bw, bh = int(w * rng.uniform(0.18, 0.3)), int(h * rng.uniform(0.18, 0.3))
    x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
    out = img.copy()
    colour = tuple(int(c) for c in rng.integers(0, 255, 3))
    ImageDraw.Draw(out).ellipse([x0, y0, x0 + bw, y0 + bh], fill=colour)
    return out, [x0, y0, x0 + bw, y0 + bh]


def lossy_copies(src: Image.Image) -> dict[str, bytes]:
    """Five realistic reposts of one photo, as encoded files."""
    def enc(img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        return buf.getvalue()
    w, h = src.size
    half = src.resize((w // 2, h // 2), Image.BILINEAR)
    q40 = Image.open(io.BytesIO(enc(src, "JPEG", quality=40))).convert("RGB")
    return {
        "jpeg_q40.jpg": enc(src, "JPEG", quality=40),
        "half_size.jpg": enc(half, "JPEG", quality=85),
        "down_up.png": enc(half.resize((w, h), Image.BICUBIC), "PNG"),
        "gif_256.gif": enc(src.quantize(256, dither=Image.Dither.FLOYDSTEINBERG), "GIF"),
        "resaved_q95.jpg": enc(q40, "JPEG", quality=95),     # bigger file, still worse
    }


CAPTIONS = [("a photo with a {c} ball", "a photo"), ("a picture", "a picture with a {c} balloon")]


def build(out: Path, max_side: int = 768) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    photos = save_photos(out, max_side)
    rel = lambda p: os.path.relpath(p, out)  # noqa: E731
    with open(out / "images.jsonl", "w") as fh, open(out / "images_3.jsonl", "w") as small:
        for i, p in enumerate(photos):
            frag = detail_fragment(Image.open(p))
            line = json.dumps({"images": [rel(p)], "fragment": frag}) + "\n"
            fh.write(line)
            if i < 3:
                small.write(line)
    (out / "pairs").mkdir(exist_ok=True)
    rows = []
    colours = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]
    for i, p in enumerate(photos):
        img = Image.open(p).convert("RGB")
        edited, box = plant_object(img, seed=i)
        a, b = out / "pairs" / f"{p.stem}_a.png", out / "pairs" / f"{p.stem}_b.png"
        img.save(a)
        edited.save(b)
        c1, c2 = CAPTIONS[i % 2]
        cap1, cap2 = (c1.format(c=colours[i]), c2.format(c=colours[i]))
        if i % 2 == 0:  # object in image 1
            a, b = b, a
        rows.append({"images": [rel(a), rel(b)], "image_path1": rel(a), "image_path2": rel(b),
                     "caption1": cap1, "caption2": cap2, "text": cap1, "planted_box": box})
    (out / "small").mkdir(exist_ok=True)
    Image.new("RGB", (24, 24), (200, 30, 30)).save(out / "small" / "tiny.png")
    Image.new("RGB", (1200, 40), (30, 30, 200)).save(out / "small" / "banner.png")
    good = (out / "pairs" / f"{photos[0].stem}_a.png").read_bytes()
    (out / "small" / "truncated.png").write_bytes(good[: len(good) // 3])
    for name in ("tiny.png", "banner.png", "truncated.png"):
        rows.append({"images": [f"small/{name}"], "text": name})
    (out / "copies").mkdir(exist_ok=True)
    for p in photos[:3]:
        src = Image.open(p).convert("RGB")
        src.save(out / "copies" / f"{p.stem}__original.png")
        for name, data in lossy_copies(src).items():
            (out / "copies" / f"{p.stem}__{name}").write_bytes(data)
    for name in ("half_size.jpg", "jpeg_q40.jpg"):  # near-duplicates of the 1st photo
        rows.append({"images": [f"copies/{photos[0].stem}__{name}"], "text": f"copy {name}"})
    rows.append({"images": [rel(photos[0])], "text": "the original photo"})
    with open(out / "pairs.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    # ImgDiff pairs: the photo pairs above (an object planted in one side) and synthetic scenes
    from ops.imgdiff.synthetic import synthetic_pairs
    synth = synthetic_pairs(out / "synthetic_pairs", n=6)
    with open(out / "imgdiff.jsonl", "w") as fh:
        for r in rows:
            if r.get("image_path1"):
                fh.write(json.dumps({k: r[k] for k in ("image_path1", "image_path2", "caption1",
                                                       "caption2", "planted_box")}) + "\n")
        for r in synth:
            r = dict(r)
            for k in ("image_path1", "image_path2"):
                r[k] = rel(out / "synthetic_pairs" / r[k])
            fh.write(json.dumps(r) + "\n")
    return {"photos": len(photos), "pairs": len(rows), "dir": str(out)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/demo")
    ap.add_argument("--max-side", type=int, default=768)
    args = ap.parse_args(argv)
    info = build(Path(args.out), args.max_side)
    print(f"demo data: {info['photos']} photos, {info['pairs']} pair rows in {info['dir']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
