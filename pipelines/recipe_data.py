"""Build the small committed data set the shipped recipes run on (recipes/data/), once.

Real photos that installed packages ship (scikit-image, scikit-learn, matplotlib) become pairs
of near-identical images whose captions differ in one object: a real object cut from another
photo (a cat's face, a coffee cup, a flower, a coin, a horse's silhouette) is blended into one
side.  Plus a real stereo pair (scikit-image's two motorcycle views), a pair whose second image
is a heavily degraded repost, and a pair too small for the header filters, so that every stage
of recipes/imgdiff-dataset.yaml has something to keep and something to drop.

    python tools/make_recipe_data.py            # rewrites recipes/data/ (deterministic)

recipes/data/
  pairs/*.jpg       JPEG q80, longest side <= 384 px
  imgdiff.jsonl     {image_path1, image_path2, caption1, caption2, planted_box, images}
  images.jsonl      {"images": [...], "text": ...}: every pair image, plus odd files and
                    reposts for the framework demo (recipes/demo.yaml)
  copies/           one photo and five lossy reposts of it (recipes/generation-loss.yaml)
  odd/              a tiny image, a banner, a truncated file
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipelines.demo_data import lossy_copies, package_file

MAX_SIDE = 384
QUALITY = 80

# photo name -> (package, path in the package)
PHOTOS = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "coins": ("skimage", "data/coins.png"),
    "horse": ("skimage", "data/horse.png"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "motorcycle_right": ("skimage", "data/motorcycle_right.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}

# object name -> (photo, crop box as fractions x0, y0, x1, y1 of the photo, mask shape)
OBJECTS = {
    "cat": ("chelsea", (0.12, 0.0, 0.78, 1.0), "ellipse"),
    "cup": ("coffee", (0.18, 0.05, 0.82, 0.72), "ellipse"),
    "flower": ("flower", (0.22, 0.12, 0.72, 0.88), "ellipse"),
    "coin": ("coins", (0.785, 0.03, 0.955, 0.245), "ellipse"),
    "horse": ("horse", (0.0, 0.0, 1.0, 1.0), "silhouette"),
}

# (pair name, background, object or None, caption without, caption with, object width
#  as a fraction of the background's, centre x, centre y as fractions, object in image 1?)
PAIRS = [
    ("coffee_cat", "coffee", "cat", "a cup of coffee on a table",
     "a cup of coffee and a cat on a table", 0.30, 0.80, 0.30, False),
    ("china_horse", "china", "horse", "a pagoda behind trees",
     "a pagoda behind trees and a horse", 0.32, 0.30, 0.75, True),
    ("astronaut_cup", "astronaut", "cup", "an astronaut in front of a flag",
     "an astronaut in front of a flag with a cup", 0.28, 0.80, 0.78, False),
    ("rocket_flower", "rocket", "flower", "a rocket on a launch pad",
     "a rocket on a launch pad and a flower", 0.26, 0.22, 0.78, True),
    ("chelsea_coin", "chelsea", "coin", "a cat lying on a carpet",
     "a cat lying on a carpet next to a coin", 0.14, 0.86, 0.80, False),
    ("hopper_flower", "grace_hopper", "flower", "a woman in a uniform",
     "a woman in a uniform holding a flower", 0.30, 0.25, 0.75, True),
]


def load_photo(name: str) -> Image.Image:
    package, rel = PHOTOS[name]
    img = Image.open(package_file(package, rel))
    img = img.convert("L").convert("RGB") if img.mode in ("1", "L", "I", "I;16") else \
        img.convert("RGB")
    if max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    return img


def cut_object(name: str) -> tuple[Image.Image, Image.Image]:
    """(RGB object, L mask with a soft edge) cut from a shipped photo."""
    photo, (fx0, fy0, fx1, fy1), shape = OBJECTS[name]
    package, rel = PHOTOS[photo]
    src = Image.open(package_file(package, rel))
    if shape == "silhouette":  # scikit-image's horse: a black horse on white
        grey = np.asarray(src.convert("L"))
        mask = Image.fromarray(((grey < 128) * 255).astype(np.uint8))
        bbox = mask.getbbox()
        mask = mask.crop(bbox)
        coat = np.zeros((*grey[bbox[1]:bbox[3], bbox[0]:bbox[2]].shape, 3), np.uint8)
        rng = np.random.default_rng(7)  # a brown coat with some texture
        coat[...] = (96, 62, 38)
        coat = np.clip(coat + rng.normal(0, 9, coat.shape), 0, 255).astype(np.uint8)
        obj = Image.fromarray(coat)
    else:
        src = src.convert("RGB")
        w, h = src.size
        obj = src.crop((int(fx0 * w), int(fy0 * h), int(fx1 * w), int(fy1 * h)))
        mask = Image.new("L", obj.size, 0)
        ImageDraw.Draw(mask).ellipse([2, 2, obj.size[0] - 3, obj.size[1] - 3], fill=255)
    return obj, mask.filter(ImageFilter.GaussianBlur(1.5))


def blend_in(bg: Image.Image, obj_name: str, width_frac: float, cx: float,
             cy: float) -> tuple[Image.Image, list[int]]:
    """``bg`` with the object pasted (soft mask) at the given centre; returns it and the box."""
    obj, mask = cut_object(obj_name)
    w = max(8, int(bg.size[0] * width_frac))
    h = max(8, int(obj.size[1] * w / obj.size[0]))
    obj, mask = obj.resize((w, h), Image.LANCZOS), mask.resize((w, h), Image.LANCZOS)
    x0 = int(min(max(cx * bg.size[0] - w / 2, 0), bg.size[0] - w))
    y0 = int(min(max(cy * bg.size[1] - h / 2, 0), bg.size[1] - h))
    out = bg.copy()
    out.paste(obj, (x0, y0), mask)
    return out, [x0, y0, x0 + w, y0 + h]


def save_jpeg(img: Image.Image, path: Path, quality: int = QUALITY) -> None:
    img.save(path, "JPEG", quality=quality, optimize=True)


def degrade(img: Image.Image) -> Image.Image:
    """A heavily degraded repost: half size, back up, JPEG quality 12, twice."""
    w, h = img.size
    out = img.resize((w // 2, h // 2), Image.BILINEAR).resize((w, h), Image.BICUBIC)
    for q in (12, 15):
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=q)
        out = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return out


def build(out: Path) -> dict:
    if out.exists():
        shutil.rmtree(out)
    for sub in ("pairs", "copies", "odd"):
        (out / sub).mkdir(parents=True)
    pair_rows = []
    for name, bg_name, obj, cap_without, cap_with, wf, cx, cy, first in PAIRS:
        bg = load_photo(bg_name)
        edited, box = blend_in(bg, obj, wf, cx, cy)
        a, b = (edited, bg) if first else (bg, edited)
        c1, c2 = (cap_with, cap_without) if first else (cap_without, cap_with)
        save_jpeg(a, out / "pairs" / f"{name}_1.jpg")
        save_jpeg(b, out / "pairs" / f"{name}_2.jpg")
        pair_rows.append({"image_path1": f"pairs/{name}_1.jpg",
                          "image_path2": f"pairs/{name}_2.jpg",
                          "caption1": c1, "caption2": c2, "planted_box": box})
    # a real stereo pair: two views of one motorcycle, same caption (no object differs)
    for k, view in ((1, "motorcycle_left"), (2, "motorcycle_right")):
        save_jpeg(load_photo(view), out / "pairs" / f"motorcycle_stereo_{k}.jpg")
    pair_rows.append({"image_path1": "pairs/motorcycle_stereo_1.jpg",
                      "image_path2": "pairs/motorcycle_stereo_2.jpg",
                      "caption1": "a motorcycle in a workshop",
                      "caption2": "a motorcycle in a workshop", "planted_box": None})
    # a pair whose second image is a heavily degraded repost (dropped by the scorer filter)
    edited, box = blend_in(load_photo("flower"), "coin", 0.16, 0.8, 0.25)
    save_jpeg(load_photo("flower"), out / "pairs" / "flower_coin_1.jpg")
    save_jpeg(degrade(edited), out / "pairs" / "flower_coin_2.jpg", quality=20)
    pair_rows.append({"image_path1": "pairs/flower_coin_1.jpg",
                      "image_path2": "pairs/flower_coin_2.jpg",
                      "caption1": "an orange flower", "caption2": "an orange flower and a coin",
                      "planted_box": box})
    # a pair too small for the header filters (thumbnails)
    for k, img in ((1, load_photo("coffee")), (2, blend_in(load_photo("coffee"), "cat", 0.3,
                                                            0.8, 0.3)[0])):
        img.thumbnail((48, 48), Image.LANCZOS)
        save_jpeg(img, out / "pairs" / f"thumbnail_{k}.jpg")
    pair_rows.append({"image_path1": "pairs/thumbnail_1.jpg", "image_path2": "pairs/thumbnail_2.jpg",
                      "caption1": "a cup of coffee", "caption2": "a cup of coffee and a cat",
                      "planted_box": None})
    with open(out / "imgdiff.jsonl", "w") as fh:
        for r in pair_rows:  # "images" too: the per-image ops (header filters, scorer) see both
            fh.write(json.dumps(dict(r, images=[r["image_path1"], r["image_path2"]])) + "\n")

    # generation-loss copies: one photo (lossless, small) and five reposts
    src = load_photo("chelsea")
    src.thumbnail((192, 192), Image.LANCZOS)
    src.save(out / "copies" / "chelsea__original.png", optimize=True)
    for name, data in lossy_copies(src).items():
        (out / "copies" / f"chelsea__{name}").write_bytes(data)
    # odd files for the header filters of the framework demo
    Image.new("RGB", (24, 24), (200, 30, 30)).save(out / "odd" / "tiny.png")
    Image.new("RGB", (1200, 40), (30, 30, 200)).save(out / "odd" / "banner.png")
    good = (out / "pairs" / "coffee_cat_1.jpg").read_bytes()
    (out / "odd" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    with open(out / "images.jsonl", "w") as fh:
        for r in pair_rows:
            fh.write(json.dumps({"images": [r["image_path1"], r["image_path2"]],
                                 "text": f"{r['caption1']} | {r['caption2']}"}) + "\n")
        for f in sorted((out / "copies").iterdir()):
            fh.write(json.dumps({"images": [f"copies/{f.name}"], "text": f.stem}) + "\n")
        for f in sorted((out / "odd").iterdir()):
            fh.write(json.dumps({"images": [f"odd/{f.name}"], "text": f.name}) + "\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"pairs": len(pair_rows), "bytes": total, "dir": str(out)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parents[2] / "recipes" / "data")
    args = ap.parse_args(argv)
    info = build(args.out)
    print(f"recipe data: {info['pairs']} pairs, {info['bytes'] / 1024:.0f} KB in {info['dir']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
