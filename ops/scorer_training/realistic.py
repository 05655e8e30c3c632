"""Realistic copy chains: the original is itself a camera or web file, its copies are what
platforms, messengers, screenshots and GIF makers do to it.

Generation 0 of most chains is a moderate JPEG (quality 70-97, IJG or other quantisation
tables, mostly 4:2:0), some a PNG or a WebP.  The pictures are meant to stand for 0.3-12 MP
files: each chain draws a *nominal* size in that range and every resize to a platform's long
side is done at the ratio it would have on a file of the nominal size (the source photos are
under 1 MP, so a 12 MP file sent to a 2048-pixel platform is shrunk by the same 0.43 here).
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

from . import transforms as T
from .transforms import Encoded

REALISTIC_VERSION = 1      # bump when these chains change: pair-set caches carry it
NOMINAL_MP = (0.3, 12.0)   # nominal size range of originals (log-uniform)
PLATFORM_SIDES = (1080, 1280, 1600, 2048)
MESSENGER_SIDES = (1280, 1600, 2560)
DEVICE_PIXEL_RATIOS = (1.0, 1.25, 1.5, 2.0, 3.0)
# step families of a realistic chain and their weights: first step / after a platform copy
FIRST_WEIGHTS = {"platform": 3.0, "messenger": 1.5, "screenshot": 1.0, "gif": 0.8,
                 "crop": 0.8, "resave": 1.0, "resize_down": 0.8}
AFTER_PLATFORM = {"reupload": 4.0, "messenger": 1.0, "screenshot": 1.0, "gif": 0.5,
                  "crop": 0.5, "resave": 0.5}
REAL_FAMILIES = tuple(dict.fromkeys([*FIRST_WEIGHTS, *AFTER_PLATFORM]))


@lru_cache(maxsize=1)
def ijg_base_tables() -> tuple[np.ndarray, np.ndarray]:
    """The IJG luma / chroma tables at quality 50 (the unscaled standard tables), in the
    order Pillow reads and writes ``qtables``."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG", quality=50)
    with Image.open(buf) as im:
        q = im.quantization
        return (np.array(q[0], np.float64), np.array(q[1], np.float64))


def camera_tables(quality: int, rng: np.random.Generator) -> list[list[int]]:
    """Quantisation tables of a non-IJG encoder near ``quality``: the standard tables scaled
    by another curve (a per-file gain on the IJG scale, its own for chroma), or flattened
    towards a constant step as several camera makers do."""
    base_l, base_c = ijg_base_tables()
    s = (5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality) / 100.0
    if rng.random() < 0.5:                   # another scaling curve
        gl, gc = rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.6)
        lum, chrom = base_l * s * gl, base_c * s * gc
    else:                                    # flatter tables
        a = rng.uniform(0.3, 0.8)
        lum = s * (a * base_l + (1 - a) * base_l.mean() * 0.5)
        chrom = s * (a * base_c + (1 - a) * base_c.mean() * 0.5)
    out = []
    for t in (lum, chrom):
        out.append([int(v) for v in np.clip(np.rint(t), 1, 255)])
    return out


def web_jpeg(px: np.ndarray, quality: int, subsampling: str, rng: np.random.Generator,
             ijg: bool = True) -> Encoded:
    """JPEG at ``quality``: IJG tables (Pillow's) or, with ``ijg`` False, ``camera_tables``."""
    img = Image.fromarray(px)
    opts = {"subsampling": T.SUBSAMPLING[subsampling], "optimize": bool(rng.random() < 0.5)}
    if ijg:
        return T.to_jpeg(px, quality, subsampling, optimize=opts["optimize"])
    return T.encode(img, "JPEG", qtables=camera_tables(quality, rng), **opts)


def make_real_original(photo: np.ndarray, rng: np.random.Generator, min_side: int = 192,
                       max_side: int = 1024) -> tuple[Encoded, float]:
    """A crop of a pristine photo saved as a camera / web file, and the nominal long side
    of the file it stands for.  75% JPEG (quality 70-97; IJG tables 60%, others 40%;
    4:2:0 75%, 4:4:4 20%, 4:2:2 5%), 15% PNG, 10% lossy WebP (quality 75-95)."""
    photo = np.rot90(photo, int(rng.integers(4)))
    if rng.random() < 0.5:
        photo = photo[:, ::-1]
    photo = np.ascontiguousarray(photo)
    h, w = photo.shape[:2]
    cw = int(rng.integers(min(min_side, w), min(max_side, w) + 1))
    ch = int(rng.integers(min(min_side, h), min(max_side, h) + 1))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    px = T.crop(photo, (x, y, x + cw, y + ch))
    u = rng.random()
    if u < 0.75:
        q = int(rng.integers(70, 98))
        sub = str(rng.choice(["4:2:0", "4:4:4", "4:2:2"], p=[0.75, 0.2, 0.05]))
        out = web_jpeg(px, q, sub, rng, ijg=rng.random() < 0.6)
    elif u < 0.9:
        out = T.to_png(px, int(rng.integers(1, 10)))
    else:
        out = T.to_webp(px, int(rng.integers(75, 96)), method=int(rng.integers(2, 7)))
    out.pristine = px
    mp = float(np.exp(rng.uniform(*np.log(NOMINAL_MP))))
    nominal_side = float(np.sqrt(mp * 1e6 * max(cw, ch) / min(cw, ch)))
    return out, nominal_side


def _fit_side(px: np.ndarray, nominal: float, side: int, rng) -> tuple[np.ndarray, float]:
    """Shrink so that a file of nominal long side ``nominal`` would fit ``side``; returns
    the pixels and the new nominal long side (unchanged when it already fits)."""
    if nominal <= side:
        return px, nominal
    s = side / nominal
    h, w = px.shape[:2]
    size = (max(8, int(round(w * s))), max(8, int(round(h * s))))
    method = str(rng.choice(["bilinear", "bicubic", "lanczos", "area"]))
    return T.resize(px, size, method), float(side)


def real_step(src: Encoded, family: str, nominal: float,
              rng: np.random.Generator) -> tuple[Encoded, float]:
    """One realistic edit of ``src``; returns the new file and its nominal long side."""
    px = src.pixels
    h, w = px.shape[:2]
    if family in ("platform", "reupload"):
        out, nominal = _fit_side(px, nominal, int(rng.choice(PLATFORM_SIDES)), rng)
        q = int(rng.integers(70, 86)) if family == "platform" else int(rng.integers(60, 81))
        return T.to_jpeg(out, q, "4:2:0", optimize=bool(rng.integers(2)),
                         progressive=rng.random() < 0.3), nominal
    if family == "messenger":
        out, nominal = _fit_side(px, nominal, int(rng.choice(MESSENGER_SIDES)), rng)
        return T.to_webp(out, int(rng.integers(50, 81)), method=int(rng.integers(2, 7))), nominal
    if family == "screenshot":       # shown at a fitting size, captured at the device's ratio
        dpr = float(rng.choice(DEVICE_PIXEL_RATIOS))
        s = dpr * float(rng.uniform(0.35, 1.0))
        if abs(s - 1) < 0.02:
            s = 1.0
        size = (max(8, int(round(w * s))), max(8, int(round(h * s))))
        out = px if s == 1.0 else T.resize(px, size, str(rng.choice(
            ["bilinear", "bicubic", "lanczos", "bilinear_noaa"])))
        return T.to_png(out), nominal * s
    if family == "gif":
        return T.to_gif(px, 256, bool(rng.integers(2))), nominal
    if family == "crop":
        f = rng.uniform(0.02, 0.25, size=4)
        l, t = int(w * f[0]), int(h * f[1])
        r, b = w - int(w * f[2]), h - int(h * f[3])
        if r - l < 32 or b - t < 32:
            l, t, r, b = 2, 2, w - 2, h - 2
        out = T.crop(px, (l, t, r, b))
        return _save_like(src, out, rng), nominal * max(r - l, b - t) / max(w, h)
    if family == "resave":           # an editor's "save" of the same pixels
        return _save_like(src, px, rng), nominal
    if family == "resize_down":
        s = float(rng.uniform(0.3, 0.8))
        size = (max(8, int(round(w * s))), max(8, int(round(h * s))))
        out = T.resize(px, size, str(rng.choice(["bicubic", "lanczos", "area", "bilinear"])))
        return _save_like(src, out, rng), nominal * s
    raise ValueError(f"unknown realistic family {family!r}")


def _save_like(src: Encoded, px: np.ndarray, rng) -> Encoded:
    """Save edited pixels as an editor would: JPEG at quality 70-95 for JPEG sources (and
    for a third of the others), else the source's format."""
    if src.format == "JPEG" or rng.random() < 1 / 3:
        return T.to_jpeg(px, int(rng.integers(70, 96)), str(rng.choice(["4:2:0", "4:4:4"])),
                         optimize=bool(rng.integers(2)))
    if src.format == "WEBP":
        return T.to_webp(px, int(rng.integers(70, 95)))
    if src.format == "GIF":
        return T.to_gif(px, 256, bool(rng.integers(2)))
    return T.to_png(px)


def make_real_chain(photo: np.ndarray, rng: np.random.Generator,
                    max_steps: int = 4) -> tuple[list[Encoded], list[str]]:
    """Realistic original + 1..``max_steps`` realistic edits; the copies and step families.
    After a platform copy a re-upload is the likeliest next step."""
    first, nominal = make_real_original(photo, rng)
    copies, fams = [first], []
    weights = FIRST_WEIGHTS
    for _ in range(int(rng.integers(1, max_steps + 1))):
        names = list(weights)
        p = np.array([weights[n] for n in names])
        fam = str(rng.choice(names, p=p / p.sum()))
        new, nominal = real_step(copies[-1], fam, nominal, rng)
        if min(new.size) < 16:
            break
        copies.append(new)
        fams.append(fam)
        weights = AFTER_PLATFORM if fam in ("platform", "reupload") else FIRST_WEIGHTS
    return copies, fams
