"""Contact sheets of copy families: each family a ranked row of thumbnails, best copy first,
with an arrow from every copy's parent to it, and each copy's score and fitted transform."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .phylogeny import Family

TILE = 200            # thumbnail box (pixels)
GAP = 24              # between tiles
TEXT_LINES = 7        # caption lines under a tile
LINE = 14             # caption line height
ARC = 22              # height added per tile an arrow spans
WRAP = 30             # caption characters per line


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _caption(m, names: list[str]) -> list[str]:
    lines = [f"#{m.rank}  score {m.score:.4f}" + ("  (uncertain)" if m.uncertain else ""),
             Path(m.name).name[:WRAP]]
    if m.parent is None:
        lines.append("root: best copy")
    else:
        lines.append(f"from {Path(names[m.parent]).name}"[:WRAP])
        lines += textwrap.wrap(", ".join(m.transform), WRAP)
    return lines[:TEXT_LINES]


def _arrow(d: ImageDraw.ImageDraw, x0: float, x1: float, y: float, h: float, colour) -> None:
    """An arc from (x0, y) up by ``h`` and down to (x1, y), with a head at x1."""
    t = np.linspace(0, 1, 24)
    xs = x0 + (x1 - x0) * t
    ys = y - h * np.sin(np.pi * t)
    d.line(list(zip(xs.tolist(), ys.tolist())), fill=colour, width=2)
    d.polygon([(x1, y), (x1 - 6, y - 10), (x1 + 6, y - 10)], fill=colour)


def draw_families(families: list[Family], pixels: dict[int, np.ndarray],
                  names: list[str], out: str | Path | None = None) -> Image.Image:
    """One image holding every family (rows top to bottom); ``pixels``: input index ->
    RGB pixels of that copy; ``names``: every input's name.  Saved to ``out`` when given."""
    font, bold = _font(12), _font(15)
    widest = max((len(f.members) for f in families), default=1)
    heights = []
    for f in families:
        span = max((abs(_pos(f, m.parent) - _pos(f, m.index)) for m in f.members
                    if m.parent is not None), default=0)
        heights.append(28 + ARC * span + 16 + TILE + 8 + TEXT_LINES * LINE + GAP)
    w = GAP + widest * (TILE + GAP)
    sheet = Image.new("RGB", (max(w, 320), max(sum(heights), 60)), "white")
    d = ImageDraw.Draw(sheet)
    y = 0
    for gi, (f, hgt) in enumerate(zip(families, heights), 1):
        d.text((GAP, y + 6), f"group {gi}: {len(f.members)} cop{'y' if len(f.members) == 1 else 'ies'}"
               f", best copy {Path(f.root.name).name}", fill="black", font=bold)
        span = max((abs(_pos(f, m.parent) - _pos(f, m.index)) for m in f.members
                    if m.parent is not None), default=0)
        top = y + 28 + ARC * span + 16
        for k, m in enumerate(f.members):
            x = GAP + k * (TILE + GAP)
            thumb = Image.fromarray(pixels[m.index])
            thumb.thumbnail((TILE, TILE))
            sheet.paste(thumb, (x + (TILE - thumb.width) // 2, top + (TILE - thumb.height) // 2))
            d.rectangle([x - 1, top - 1, x + TILE, top + TILE],
                        outline=(0, 140, 0) if k == 0 else (160, 160, 160), width=3 if k == 0 else 1)
            for li, text in enumerate(_caption(m, names)):
                d.text((x, top + TILE + 6 + li * LINE), text, fill="black", font=font)
        for m in f.members:
            if m.parent is None:
                continue
            a, b = _pos(f, m.parent), _pos(f, m.index)
            cx = lambda k: GAP + k * (TILE + GAP) + TILE / 2    # noqa: E731
            colour = (200, 120, 0) if m.uncertain else (30, 90, 200)
            _arrow(d, cx(a), cx(b), top - 4, 12 + ARC * abs(b - a), colour)
        y += hgt
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out)
    return sheet


def _pos(f: Family, index: int) -> int:
    return next(k for k, m in enumerate(f.members) if m.index == index)
