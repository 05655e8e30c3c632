"""Write one group's figures: comparison grids, distortion-map grids, the anisotropic map and
the annotated original (file names per docs/comparison-figures.md)."""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from . import figures as fig
from .study import METRICS, tile_label

BOX_COLOURS = [(0, 114, 178), (0, 158, 115), (230, 159, 0), (204, 121, 167), (86, 180, 233),
               (213, 94, 0), (120, 120, 120)]
LINES = 3


def value_name(v: float) -> str:
    """File-name form of a target value as the recipe wrote it: 70 -> '70', 1.0 -> '1.0'."""
    return str(v)


def nice_ceiling(x: float, floor: float = 1.0) -> float:
    """Round up to 1, 1.5, 2, 3, 4, 5, 6, 8 x 10^k (at least ``floor``)."""
    x = max(float(x), floor)
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 1.5, 2, 3, 4, 5, 6, 8, 10):
        if m * e >= x - 1e-12:
            return m * e
    return 10 * e


def _short_setting(name: str, value) -> str:
    return {"quality": "q", "distance": "d"}.get(name, f"{name}=") + f"{value:g}"


def _metric_text(rec: dict, group_metric: str) -> str:
    m = rec["metrics"]
    parts = []
    if group_metric in ("psnr", "ssim") and group_metric in m:
        parts.append(f"{METRICS[group_metric][1]} {m[group_metric]:.4g}")
    if "ssimulacra2" in m:
        parts.append(f"SSIMULACRA2 {m['ssimulacra2']:.1f}")
    elif "psnr" in m and group_metric != "psnr":
        parts.append(f"PSNR {m['psnr']:.2f}")
    if "butteraugli_max" in m:
        parts.append(f"BA {m['butteraugli_max']:.2f}")
    return " · ".join(parts)


def _placeholder_text(label: str, rec, group_label: str) -> list:
    if rec is None:
        return [label, "not measured", "for this image"]
    lo, hi = rec["measured_range"]
    rng = f"measured {lo:.3g}–{hi:.3g}" if lo is not None else "no measurements"
    return [label, f"{group_label} {value_name(rec['target'])} out of range", rng]


def write_group(entry: dict, out_dir: str, opts) -> dict:
    """Render and save the group's figures; returns {"figures", "vmax", "measured"}."""
    tiles = [tuple(t) for t in entry["tiles"]]
    views = {t.key: t for t in entry["tile_views"]}
    records, label, tp = entry["records"], entry["label"], entry["tile_parameter"]
    wx, wy, ww, wh = entry["window"]
    size = (ww * opts.zoom, wh * opts.zoom)
    first = entry["tile_views"][0]

    def window_of(tile, arr):
        ox, oy = tile.offset
        return arr[wy - oy:wy - oy + wh, wx - ox:wx - ox + ww]

    original = window_of(first, first.view)
    crops = [window_of(views[k[0]], r["distmap"]) for k, r in records.items() if "distmap" in r]
    vmax = nice_ceiling(np.percentile(np.concatenate([c.ravel() for c in crops]), 99.5)) \
        if crops else 1.0
    name = os.path.basename(entry["image"])
    vh, vw = first.view.shape[:2]
    orig_lines = ["Original", name, f"{vw}×{vh} px, crop {ww}×{wh} at {wx},{wy}"]
    figures = {"comparison": {}, "distortion_map_comparison": {}}
    for t in entry["values"]:
        img_tiles = [fig.tile(fig.zoom(original, opts.zoom), size, orig_lines, LINES)]
        map_tiles = [fig.tile(fig.zoom(original, opts.zoom), size, orig_lines, LINES)]
        for key in tiles:
            tlabel = tile_label(key, tp)
            rec = records.get((key, t))
            if rec is None or "distmap" not in rec:
                ph = _placeholder_text(tlabel, rec, label)
                img_tiles.append(fig.tile(None, size, [tlabel, "—", ""], LINES, ph))
                map_tiles.append(fig.tile(None, size, [tlabel, "—", ""], LINES, ph))
                continue
            lines = [f"{tlabel} {_short_setting(rec['setting_name'], rec['setting'])}",
                     _metric_text(rec, entry["metric"]), f"{rec['bpp']:.3f} bpp"]
            pic = fig.zoom(window_of(views[key], rec["decoded"]), opts.zoom)
            img_tiles.append(fig.tile(pic, size, lines, LINES))
            dm = fig.colourize(window_of(views[key], rec["distmap"]), vmax)
            map_tiles.append(fig.tile(fig.zoom(dm, opts.zoom), size, lines, LINES))
        title = f"Target: {label} = {value_name(t)}  ·  {name}" + \
            (f"  ·  {entry['level']}" if entry["level"] else "")
        p = os.path.join(out_dir, f"comparison_{value_name(t)}.webp")
        figures["comparison"][value_name(t)] = fig.save_webp(
            fig.grid(title, img_tiles, opts.columns(len(img_tiles))), p)
        bar = fig.colour_bar(size[1], vmax, "Butteraugli")
        p = os.path.join(out_dir, f"distortion_map_comparison_{value_name(t)}.webp")
        figures["distortion_map_comparison"][value_name(t)] = fig.save_webp(
            fig.grid(f"Butteraugli distortion  ·  target {label} = {value_name(t)}  ·  {name}",
                     map_tiles, opts.columns(len(map_tiles)), right=bar), p)
    figures["anisotropic"] = fig.save_webp(_anisotropic(entry, name),
                                           os.path.join(out_dir, "distortion_map_anisotropic.webp"))
    figures["original_annotated"] = fig.save_webp(
        _annotated(entry, name), os.path.join(out_dir, "original_annotated.webp"))
    measured = [{k: v for k, v in r.items() if k not in ("decoded", "distmap")}
                for r in records.values()]
    return {"figures": figures, "vmax": vmax, "measured": measured}


def _anisotropic(entry: dict, name: str) -> Image.Image:
    aniso = entry["aniso"]
    fx, fy, _, _ = entry["frame"]["region"]
    wx, wy, ww, wh = entry["window"]
    vmax = nice_ceiling(float(np.percentile(aniso, 99.5)) if aniso.size else 1.0, 0.1)
    pic = Image.fromarray(fig.colourize(aniso, vmax))
    n = len(entry["present"])
    title = f"Anisotropic map: std of {n} variants' Butteraugli maps, mean over " \
            f"{entry['label']} targets  ·  {name}"
    body = fig.boxed(pic, [(wx - fx, wy - fy, ww, wh, f"crop ({entry['window_from']})",
                            fig.HIGHLIGHT)])
    bar = fig.colour_bar(min(body.height, 512), vmax, "std")
    out = Image.new("RGB", (max(body.width + bar.width + 3 * fig.PAD, 900),
                            body.height + fig.TITLE_SIZE + 3 * fig.PAD), fig.BACKGROUND)
    from PIL import ImageDraw
    fig.draw_title(ImageDraw.Draw(out), title, out.width)
    top = fig.TITLE_SIZE + 2 * fig.PAD
    out.paste(body, (fig.PAD, top))
    out.paste(bar, (fig.PAD * 2 + body.width, top))
    return out


def _annotated(entry: dict, name: str) -> Image.Image:
    src = entry["source_pixels"]
    x0, y0, sx, sy = entry["frame"]["to_source"]
    wx, wy, ww, wh = entry["window"]
    boxes = []
    for i, (size, cx, cy, cw, ch) in enumerate(entry["crops"]):
        text = f"c{size}" if (cw, ch) == (size, size) else f"c{size} (clipped to {cw}×{ch})"
        boxes.append((cx, cy, cw, ch, text, BOX_COLOURS[i % len(BOX_COLOURS)]))
    frag = entry.get("source_fragment")
    if frag and entry["crops"]:
        boxes.append((frag["x"], frag["y"], frag["width"], frag["height"], "fragment",
                      (255, 200, 0)))
    text = f"figure crop {ww}×{wh}"
    if (sx, sy) != (1.0, 1.0):
        text += f" ({round(ww * sx)}×{round(wh * sy)} in the source)"
    boxes.append((x0 + wx * sx, y0 + wy * sy, ww * sx, wh * sy, text, fig.HIGHLIGHT))
    title = f"{name}  ·  {entry['label']} targets" + \
        (f"  ·  {entry['level']}" if entry["level"] else "")
    return fig.boxed(Image.fromarray(src), boxes, title)
