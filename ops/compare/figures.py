"""Pillow figure assembly: zoomed tiles with labels, placeholders, titled grids, colour-mapped
distortion maps with a colour bar, and annotated originals."""
from __future__ import annotations

import functools
import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MUTED = (110, 110, 110)
PLACEHOLDER = (226, 226, 226)
HIGHLIGHT = (255, 40, 40)
PAD = 8
LABEL_SIZE = 15
TITLE_SIZE = 22
CMAP = "inferno"
MIN_WIDTH = 560             # room for the title row even with few, small tiles


@functools.lru_cache(maxsize=16)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's own data (always installed with it), never system fonts."""
    import matplotlib
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)
    return ImageFont.truetype(path, size)


def _text_w(text: str, f) -> int:
    x0, _, x1, _ = f.getbbox(text)
    return int(x1 - x0)


def fit_text(text: str, f, width: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits ``width`` pixels."""
    if _text_w(text, f) <= width:
        return text
    while text and _text_w(text + "…", f) > width:
        text = text[:-1]
    return text + "…"


def draw_title(draw: ImageDraw.ImageDraw, title: str, width: int) -> None:
    """The title row: bold, a smaller size when the full text would not fit, else shortened."""
    room = width - 2 * PAD
    size = next((n for n in (TITLE_SIZE, 18, LABEL_SIZE)
                 if _text_w(title, font(n, True)) <= room), LABEL_SIZE)
    draw.text((PAD, PAD + (TITLE_SIZE - size) // 2), fit_text(title, font(size, True), room),
              fill=INK, font=font(size, bold=True))


def zoom(arr: np.ndarray, factor: int) -> Image.Image:
    """Nearest-neighbour enlargement (every source pixel becomes a factor x factor block)."""
    if factor < 1:
        raise ValueError(f"zoom must be >= 1, got {factor}")
    img = Image.fromarray(np.ascontiguousarray(arr))
    if factor == 1:
        return img
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)


def colourize(dist: np.ndarray, vmax: float, cmap: str = CMAP) -> np.ndarray:
    """Float map -> uint8 RGB on the fixed scale [0, vmax] (values above saturate)."""
    import matplotlib
    norm = np.clip(np.nan_to_num(dist, nan=0.0) / max(vmax, 1e-9), 0.0, 1.0)
    rgba = matplotlib.colormaps[cmap](norm, bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


def label_height(lines: int) -> int:
    return PAD + lines * (LABEL_SIZE + 5)


def tile(picture: Optional[Image.Image], size: tuple[int, int], lines: Sequence[str],
         n_lines: int, placeholder: Sequence[str] = ()) -> Image.Image:
    """A picture (or a grey placeholder with ``placeholder`` text) over ``lines`` of label;
    every tile of a grid gets the same size, so positions never shift."""
    w, h = size
    out = Image.new("RGB", (w, h + label_height(n_lines)), BACKGROUND)
    draw = ImageDraw.Draw(out)
    if picture is not None:
        out.paste(picture, (0, 0))
    else:
        draw.rectangle([0, 0, w - 1, h - 1], fill=PLACEHOLDER, outline=MUTED)
        for k in range(-h, w, 24):           # light hatching marks "missing" at a glance
            draw.line([(k, h - 1), (k + h, 0)], fill=(236, 236, 236), width=6)
        f = font(LABEL_SIZE)
        y = h // 2 - len(placeholder) * (LABEL_SIZE + 5) // 2
        for text in placeholder:
            text = fit_text(text, f, w - 2 * PAD)
            draw.text(((w - _text_w(text, f)) // 2, y), text, fill=MUTED, font=f)
            y += LABEL_SIZE + 5
    y = h + PAD // 2
    for i, text in enumerate(lines):
        f = font(LABEL_SIZE, bold=(i == 0))
        draw.text((2, y), fit_text(text, f, w - 4), fill=INK if i == 0 else MUTED, font=f)
        y += LABEL_SIZE + 5
    return out


def grid(title: str, tiles: Sequence[Image.Image], max_columns: int,
         right: Optional[Image.Image] = None) -> Image.Image:
    """Tiles row-major (max_columns per row) under a title row; ``right`` (e.g. a colour
    bar) is placed to the right of the tiles."""
    if not tiles:
        raise ValueError("grid: no tiles")
    if max_columns < 1:
        raise ValueError(f"max_columns must be >= 1, got {max_columns}")
    tw, th = tiles[0].size
    cols = min(max_columns, len(tiles))
    rows = -(-len(tiles) // cols)
    title_h = TITLE_SIZE + 2 * PAD + 4
    extra = right.width + PAD if right is not None else 0
    W = max(PAD + cols * (tw + PAD) + extra, MIN_WIDTH)
    H = title_h + rows * (th + PAD) + PAD // 2
    out = Image.new("RGB", (W, H), BACKGROUND)
    draw_title(ImageDraw.Draw(out), title, W)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out.paste(t, (PAD + c * (tw + PAD), title_h + r * (th + PAD)))
    if right is not None:
        out.paste(right, (PAD + cols * (tw + PAD), title_h))
    return out


def colour_bar(height: int, vmax: float, label: str, cmap: str = CMAP) -> Image.Image:
    """A vertical colour bar for [0, vmax] with 5 ticks and a caption."""
    bar_w, text_w = 18, 58
    out = Image.new("RGB", (bar_w + text_w, height + LABEL_SIZE + 2 * PAD), BACKGROUND)
    ramp = np.linspace(vmax, 0.0, height, dtype=np.float32)[:, None].repeat(bar_w, 1)
    out.paste(Image.fromarray(colourize(ramp, vmax, cmap)), (0, 0))
    draw = ImageDraw.Draw(out)
    f = font(LABEL_SIZE - 2)
    draw.rectangle([0, 0, bar_w - 1, height - 1], outline=MUTED)
    for k in range(5):
        v = vmax * k / 4
        y = int(round((height - 1) * (1 - k / 4)))
        draw.line([(bar_w, y), (bar_w + 4, y)], fill=INK)
        ty = min(max(y - (LABEL_SIZE - 2) // 2, 0), height - LABEL_SIZE)
        text = f"≥{v:.3g}" if k == 4 else f"{v:.3g}"       # the scale saturates at vmax
        draw.text((bar_w + 6, ty), text, fill=INK, font=f)
    draw.text((0, height + PAD), fit_text(label, f, bar_w + text_w), fill=INK, font=f)
    return out


def boxed(picture: Image.Image, boxes: Sequence[tuple], title: Optional[str] = None,
          max_side: int = 2048) -> Image.Image:
    """``picture`` (downscaled to ``max_side`` if larger) with labelled boxes
    ``(x, y, w, h, label, colour)`` in its own pixel coordinates, under an optional title."""
    scale = min(1.0, max_side / max(picture.size))
    img = picture.convert("RGB")
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(img)
    f = font(LABEL_SIZE, bold=True)
    width = max(3, round(3 * max(img.size) / 1000))
    for x, y, w, h, text, colour in boxes:
        x0, y0 = x * scale, y * scale
        x1, y1 = (x + w) * scale - 1, (y + h) * scale - 1
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
        if text:
            text = fit_text(text, f, img.width - 8)
            tw = _text_w(text, f)
            ty = y0 - LABEL_SIZE - 6 if y0 >= LABEL_SIZE + 6 else y0 + width
            tx = max(0, min(x0, img.width - tw - 6))        # keep the label inside the picture
            draw.rectangle([tx, ty, tx + tw + 6, ty + LABEL_SIZE + 4], fill=colour)
            draw.text((tx + 3, ty + 1), text, fill=(255, 255, 255), font=f)
    if not title:
        return img
    title_h = TITLE_SIZE + 2 * PAD
    out = Image.new("RGB", (max(img.width, MIN_WIDTH), img.height + title_h), BACKGROUND)
    draw_title(ImageDraw.Draw(out), title, out.width)
    out.paste(img, (0, title_h))
    return out


def save_webp(img: Image.Image, path: str) -> str:
    """Lossless WebP, so the figure adds no artefacts of its own to what it shows.  Fastest
    lossless effort: 18x less CPU than method 3 for ~40 % larger files (0.03 s vs 0.5 s for a
    1576x966 grid), which made figure encoding most of the run time."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    img.save(tmp, format="WEBP", lossless=True, quality=0, method=0)
    os.replace(tmp, path)
    return path
