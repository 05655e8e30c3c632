"""Synthetic ImgDiff pairs: flat scenes of coloured shapes where one object changes.

Shared by the tests and the demo data builder.  Each pair is two PNGs that differ in one
object (its colour and name change, or it appears) plus captions naming the objects, and the
ground-truth box of the change in image-1 pixels (xyxy).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

BACKGROUND = (128, 128, 128)
# object name -> colour; the demo's captions use these names
OBJECT_COLOURS = {
    "apple": (220, 30, 30),
    "pear": (30, 200, 30),
    "box": (30, 30, 220),
    "lemon": (230, 220, 30),
    "plum": (140, 40, 160),
}


def draw_scene(size: tuple[int, int], objects: list[tuple[str, tuple[int, int, int, int]]],
               noise: float = 0.0, seed: int = 0, shape: str = "rect") -> Image.Image:
    """A ``size`` (W, H) RGB image: grey background, each named object a filled shape in its
    colour at its xyxy box; optional Gaussian pixel noise (std ``noise``)."""
    img = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(img)
    for name, box in objects:
        colour = OBJECT_COLOURS[name]
        x1, y1, x2, y2 = box
        if shape == "ellipse":
            draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=colour)
        else:
            draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=colour)
    if noise > 0:
        rng = np.random.default_rng(seed)
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0, noise, (size[1], size[0], 3))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img


def caption(objects: list[tuple[str, tuple]]) -> str:
    """"an apple and a box on a table" from the object names, left to right."""
    names = [n for n, _ in sorted(objects, key=lambda o: (o[1][0], o[1][1]))]
    words = [("an " if n[0] in "aeiou" else "a ") + n for n in names]
    return (" and ".join(words) if words else "nothing") + " on a table"


def synthetic_pairs(out_dir, n: int = 6, size: tuple[int, int] = (160, 120),
                    seed: int = 0, noise: float = 2.0) -> list[dict]:
    """Write ``n`` pairs under ``out_dir``; return dataset rows
    ``{image_path1, image_path2, caption1, caption2, changed_box}`` (paths relative to
    ``out_dir``).  Every third pair adds an object instead of swapping one."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = list(OBJECT_COLOURS)
    w, h = size
    rows = []
    for i in range(n):
        side = int(min(w, h) * 0.3)
        boxes = []
        for k in range(2):  # two objects, one per half of the image
            x = int(rng.integers(k * w // 2 + 2, (k + 1) * w // 2 - side - 2))
            y = int(rng.integers(2, h - side - 2))
            boxes.append((x, y, x + side, y + side))
        a, b, c = (names[j] for j in rng.permutation(len(names))[:3])
        first = [(a, boxes[0]), (b, boxes[1])]
        if i % 3 == 2:  # appearance: object b only in image 2
            first = [(a, boxes[0])]
            second = [(a, boxes[0]), (b, boxes[1])]
        else:           # swap: object b becomes c
            second = [(a, boxes[0]), (c, boxes[1])]
        p1, p2 = f"pair{i:02d}_1.png", f"pair{i:02d}_2.png"
        draw_scene(size, first, noise, seed=2 * i).save(out / p1)
        draw_scene(size, second, noise, seed=2 * i + 1).save(out / p2)
        rows.append({"image_path1": p1, "image_path2": p2,
                     "caption1": caption(first), "caption2": caption(second),
                     "changed_box": list(boxes[1])})
    return rows


def colour_fraction(image: Image.Image, colour: tuple[int, int, int],
                    tolerance: int = 40) -> float:
    """Fraction of the image's pixels within ``tolerance`` of ``colour`` on every channel."""
    arr = np.asarray(image.convert("RGB"), dtype=np.int16)
    if arr.size == 0:
        return 0.0
    close = np.all(np.abs(arr - np.array(colour, dtype=np.int16)) <= tolerance, axis=-1)
    return float(close.mean())


def colour_boxes(image: Image.Image, tolerance: int = 40,
                 colours: Optional[dict] = None) -> list[list[float]]:
    """xyxy bounding box of each object colour present in the image (a toy segmenter)."""
    arr = np.asarray(image.convert("RGB"), dtype=np.int16)
    out = []
    for colour in (colours or OBJECT_COLOURS).values():
        close = np.all(np.abs(arr - np.array(colour, dtype=np.int16)) <= tolerance, axis=-1)
        ys, xs = np.nonzero(close)
        if len(xs):
            out.append([float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)])
    return out
