"""Fit the transform that turns one copy of a picture into another, and measure how well it
reproduces the other copy: the asymmetric dissimilarity of image phylogeny (Dias, Rocha,
Goldenstein, IEEE TIFS 7(2), 2012).

When B was made from A, aligning A to B's geometry (``geometry.align``: turn, crop),
resampling it with the filter that fits best and re-encoding it as B is stored (JPEG with
B's own quantisation tables and chroma subsampling, B's palette, a WebP / AVIF at the
quality that fits best) reproduces B closely, often bit-exactly; the reverse cannot restore
what B lost (an upscale can be made from its source, a downscale cannot be undone).
``fit(a, b, g)`` is that reproduction error (MSE, 0..255 scale) of a -> b, measured in
windows of b aligned to its coding grid: JPEG blocks are coded independently, so a window
re-encodes exactly as it would inside the whole picture; WebP, AVIF and dithered palettes
are close to it, and windows keep a fit's cost independent of the picture's size.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .copies import Copy, copy_from_bytes, copy_from_image, turn_pixels  # noqa: F401
from .geometry import Geometry, align, inverse, refine  # noqa: F401

R = Image.Resampling
FIT_VERSION = 4          # bump when fits change: cached evaluation fits carry it
WINDOW = 128             # side of a comparison window (multiple of 16)
MAX_WINDOWS = 6          # windows per ordered pair (a grid over the child)
CHOOSE_WINDOWS = 2       # windows the filter and coding setting are chosen on
MARGIN = 4               # window border left out of the error (chroma upsampling at edges)
LOSSY_QUALITIES = (25, 50, 75, 95)   # WebP / AVIF settings tried first (then closer ones)
UNCOVERED_COST = 1e4     # added per unit share of the child a parent cannot cover
# resampling filters tried when the scale changes: Pillow's, area (integer reduce, then
# box, as OpenCV's INTER_AREA and many thumbnailers do) and bilinear without prefilter
# (GPU samplers, browsers' fast paths)
FILTERS = {"nearest": R.NEAREST, "box": R.BOX, "bilinear": R.BILINEAR, "hamming": R.HAMMING,
           "bicubic": R.BICUBIC, "lanczos": R.LANCZOS, "area": None, "bilinear, no prefilter":
           None}
FILTERS_CODED = 3        # filters still tried after coding (the nearest before it)
GRID = {"JPEG": 16, "WEBP": 16, "AVIF": 64}
PLAIN = "plain"          # a coding setting: the resampled pixels as they are
MEDIAN_CUT_MAX_PIXELS = 1_000_000   # palette children up to this size: median cut re-run
WEBP_WHOLE_MAX_PIXELS = 500_000     # lossy WebP children up to this size: whole-picture search
WEBP_METHODS = (4, 0, 1, 2, 3, 5, 6)  # libwebp's effort settings, its default first


@dataclass
class Fit:
    """How parent -> child was reproduced: error, geometry, resampling and coding."""

    error: float
    geometry: Geometry | None
    steps: list[str]
    geometric_steps: int = 0     # turn, crop, resize: how many the geometry needs


# ---------------------------------------------------------------- windows and resampling
def _windows(w: int, h: int, grid: int) -> list[tuple[int, int, int, int]]:
    """Up to MAX_WINDOWS windows of the child on its ``grid`` (coding blocks), spread over
    it; the first two far apart (they choose filter and coding)."""
    side = WINDOW
    if w < side or h < side:
        ww, hh = (w // grid) * grid, (h // grid) * grid
        return [(0, 0, ww, hh)] if ww >= grid and hh >= grid else []
    nx, ny = (3, 2) if w >= h else (2, 3)
    xs = np.unique(np.linspace(0, w - side, nx).astype(int) // grid * grid)
    ys = np.unique(np.linspace(0, h - side, ny).astype(int) // grid * grid)
    wins = [(int(x), int(y), int(x) + side, int(y) + side) for y in ys for x in xs]
    if len(wins) > 2:                       # opposite corners first
        wins[1], wins[-1] = wins[-1], wins[1]
    return wins[:MAX_WINDOWS]


def _bilinear_noaa(src: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``src`` at source positions (pixel centres at .0), clamped
    at the borders, no prefilter."""
    x0, y0 = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    wx, wy = (fx - x0)[None, :, None], (fy - y0)[:, None, None]

    def g(ys, xs):
        return src[np.clip(ys, 0, src.shape[0] - 1)[:, None],
                   np.clip(xs, 0, src.shape[1] - 1)[None]].astype(np.float32)
    top = g(y0, x0) * (1 - wx) + g(y0, x0 + 1) * wx
    bot = g(y0 + 1, x0) * (1 - wx) + g(y0 + 1, x0 + 1) * wx
    return np.clip(top * (1 - wy) + bot * wy + 0.5, 0, 255).astype(np.uint8)


def _region(a: Copy, g: Geometry, win: tuple[int, int, int, int], bsize: tuple[int, int],
            filt: str | None) -> np.ndarray | None:
    """The parent's pixels for the child's region ``win`` under ``g``, resampled with the
    filter named ``filt`` (None: an integer crop), None when outside the parent."""
    src = a.turned(g.turn)
    l, t, r, bt = g.box
    x0, y0, x1, y1 = win
    if filt is None:
        xa, ya = int(l) + x0, int(t) + y0
        if xa < 0 or ya < 0 or xa + x1 - x0 > src.shape[1] or ya + y1 - y0 > src.shape[0]:
            return None
        return src[ya:ya + y1 - y0, xa:xa + x1 - x0]
    sx, sy = (r - l) / bsize[0], (bt - t) / bsize[1]
    box = (l + x0 * sx, t + y0 * sy, l + x1 * sx, t + y1 * sy)
    if box[0] < -0.5 or box[1] < -0.5 or box[2] > src.shape[1] + 0.5 or \
            box[3] > src.shape[0] + 0.5:
        return None
    if filt == "bilinear, no prefilter":
        fx = l + (np.arange(x0, x1) + 0.5) * sx - 0.5
        fy = t + (np.arange(y0, y1) + 0.5) * sy - 0.5
        return _bilinear_noaa(src, fx, fy)
    img = a.turned_image(g.turn)
    if filt == "area":                      # integer reduce first, then box
        f = max(1, min(src.shape[1] // bsize[0], src.shape[0] // bsize[1]))
        img = a.turned_image(g.turn, f)
        kx, ky = img.width / src.shape[1], img.height / src.shape[0]
        box = (box[0] * kx, box[1] * ky, box[2] * kx, box[3] * ky)
    box = (max(box[0], 0), max(box[1], 0), min(box[2], img.width), min(box[3], img.height))
    return np.asarray(img.resize((x1 - x0, y1 - y0), FILTERS.get(filt) or R.BOX, box=box))


def _filters(g: Geometry, a: Copy, bsize: tuple[int, int]) -> list[str | None]:
    if g.unit(bsize):
        return [None]
    l, t, r, bt = g.box
    shrink = min((r - l) / bsize[0], (bt - t) / bsize[1])
    return [f for f in FILTERS if (f != "area" or shrink >= 2) and
            (f != "bilinear, no prefilter" or shrink > 1.01)]


# ---------------------------------------------------------------- coding like the child
def _mse(x: np.ndarray, y: np.ndarray, margin: int = MARGIN) -> float:
    import cv2
    m = margin if min(x.shape[:2]) > 4 * margin else 0
    x = np.ascontiguousarray(x[m:x.shape[0] - m, m:x.shape[1] - m])
    y = np.ascontiguousarray(y[m:y.shape[0] - m, m:y.shape[1] - m])
    return float(cv2.norm(x, y, cv2.NORM_L2SQR)) / max(1, x.size)


def _decode(buf: io.BytesIO) -> np.ndarray:
    buf.seek(0)
    with Image.open(buf) as im:
        im.load()
        return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))


def _code(px: np.ndarray, b: Copy, setting) -> np.ndarray:
    """``px`` coded as ``b`` is coded; ``setting``: the quality (WebP / AVIF) or the
    dither (palette)."""
    if setting is PLAIN:
        return px
    if b.format == "JPEG" and b.qtables:
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, "JPEG", qtables=b.qtables,
                                 subsampling=b.subsampling if b.subsampling >= 0 else 2)
        return _decode(buf)
    if b.palette is not None:
        q = Image.fromarray(px).quantize(palette=b.palette, dither=setting)
        return np.asarray(q.convert("RGB"))
    if b.format in GRID and not b.lossless:
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, b.format, quality=int(setting))
        return _decode(buf)
    return px


def _settings(b: Copy) -> list:
    if b.palette is not None:
        return [Image.Dither.NONE, Image.Dither.FLOYDSTEINBERG]
    if b.format in ("WEBP", "AVIF") and not b.lossless:
        return list(LOSSY_QUALITIES)
    return [None]


def _describe(b: Copy, setting) -> str:
    if b.format == "JPEG" and b.qtables:
        sub = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(b.subsampling, "")
        return f"JPEG with the copy's own tables {sub}".rstrip()
    if b.palette is not None:
        name = "dithered" if setting == Image.Dither.FLOYDSTEINBERG else "not dithered"
        return f"{b.colors} colours, the copy's palette, {name}"
    if b.format in ("WEBP", "AVIF") and not b.lossless:
        return f"{b.format} at about quality {setting}"
    return f"{b.format or 'raw'} (lossless)"


class _Windows:
    """The child's windows and the parent's resampled regions for them, computed once per
    filter."""

    def __init__(self, a: Copy, b: Copy, g: Geometry, wins, margin: int = MARGIN):
        self.a, self.b, self.g, self.wins, self.margin = a, b, g, wins, margin
        self._src: dict = {}
        self._err: dict = {}

    def source(self, filt, w) -> np.ndarray | None:
        """The parent's resampled pixels for window ``w`` (None: outside the parent)."""
        key = (filt, w)
        if key not in self._src:
            self._src[key] = _region(self.a, self.g, w, self.b.size, filt)
        return self._src[key]

    def error(self, filt, setting, n: int | None = None) -> float:
        """Mean error of the first ``n`` windows coded with ``setting``.  JPEG windows of
        one size are coded together, stacked: JPEG codes its blocks independently, so
        the stack gives each window's very pixels (the margin hides the seams, where
        chroma upsampling reads across)."""
        todo = [w for w in self.wins[:n] if (filt, setting, w) not in self._err]
        srcs = [(w, self.source(filt, w)) for w in todo]
        for w, s in srcs:
            if s is None:
                self._err[filt, setting, w] = None
        srcs = [(w, s) for w, s in srcs if s is not None]
        if len(srcs) > 1 and self.b.format == "JPEG" and setting is not PLAIN and \
                len({s.shape for _, s in srcs}) == 1:
            coded = np.split(_code(np.concatenate([s for _, s in srcs]), self.b, setting),
                             len(srcs))
        else:
            coded = [_code(s, self.b, setting) for _, s in srcs]
        for (w, _), c in zip(srcs, coded):
            self._err[filt, setting, w] = _mse(c, self.b.pixels[w[1]:w[3], w[0]:w[2]],
                                               self.margin)
        errs = []
        for w in self.wins[:n]:
            key = (filt, setting, w)
            if self._err[key] is not None:
                errs.append(self._err[key])
        return float(np.mean(errs)) if errs else float("inf")


def _choose(w: _Windows, filters: list, b: Copy) -> tuple:
    """The (filter, setting) whose coded reproduction of the first windows is nearest b:
    the ``FILTERS_CODED`` filters nearest b before coding, each with every coding setting
    (JPEG, palette children); for WebP / AVIF the nearest filter and a quality search
    (coarse, then closer)."""
    n = CHOOSE_WINDOWS
    settings = _settings(b)
    if len(filters) > 1:                    # the few nearest before coding
        keep = FILTERS_CODED if settings[0] is not None else len(filters)
        keep = 1 if len(settings) > 2 else keep
        filters = sorted(filters, key=lambda f: w.error(f, PLAIN, n=1))[:keep]
    if len(settings) <= 2:
        return min(((f, s) for f in filters for s in settings),
                   key=lambda fs: w.error(*fs, n=n))
    errs: dict = {}

    def err(f, q):                          # one window for the search
        if (f, q) not in errs:
            errs[f, q] = w.error(f, q, n=1)
        return errs[f, q]
    best = min(((f, q) for f in filters for q in settings), key=lambda fq: err(*fq))
    for step in (12, 6, 3):
        f, q = best
        for q2 in (q - step, q + step):
            if 1 <= q2 <= 100:
                err(f, q2)
        best = min(errs, key=errs.get)
    return best


def fit(a: Copy, b: Copy, g: Geometry | None, whole: bool = False) -> Fit:
    """Reproduce child ``b`` from parent ``a`` under geometry ``g``: resample (the filter
    that fits best), then code as b is coded; the MSE over b's windows (``whole``: over
    all of b, for pairs whose windows reproduce both ways almost exactly), plus
    ``UNCOVERED_COST`` times the share of b that a does not hold."""
    if g is None:
        return Fit(float("inf"), None, ["unrelated"])
    bw, bh = b.size
    grid = GRID.get(b.format, 8) if not b.lossless else 8
    if b.format == "JPEG" and b.subsampling == 0:
        grid = 8
    wins = _windows(bw, bh, grid)
    margin = MARGIN
    if whole and wins:                      # every pixel, borders included
        wins, margin = [(0, 0, bw, bh)], 0
    steps = g.describe(a.size, b.size)
    k = len(steps)
    if not wins:
        return Fit(float("inf"), g, steps + ["too small to compare"])
    penalty = UNCOVERED_COST * (1.0 - g.covered)
    w = _Windows(a, b, g, wins, margin)
    filters = _filters(g, a, b.size)
    if all(w.source(filters[0], win) is None for win in wins):
        return Fit(penalty + UNCOVERED_COST, g, steps + ["not covered"])
    if g.covered < 0.99:     # the parent lacks part of the child: no need to code
        filt = min(filters, key=lambda f: w.error(f, PLAIN, n=CHOOSE_WINDOWS))
        return Fit(penalty + w.error(filt, PLAIN), g, steps + ["partly outside the parent"], k)
    filt, setting = _choose(w, filters, b)
    if filt is not None:
        steps.append(filt)
    err, how = w.error(filt, setting), _describe(b, setting)
    if b.palette is not None and bw * bh <= MEDIAN_CUT_MAX_PIXELS and g.covered > 0.999:
        e2, how2 = _median_cut(a, b, g, filt, wins, margin)
        if e2 < err:
            err, how = e2, how2
    if b.format == "WEBP" and not b.lossless and bw * bh <= WEBP_WHOLE_MAX_PIXELS and \
            g.covered > 0.999:
        err, how = _webp_whole(_region(a, g, (0, 0, bw, bh), b.size, filt), b)
    return Fit(err + penalty, g, steps + [how], k)


def _webp_whole(src: np.ndarray | None, b: Copy) -> tuple[float, str]:
    """A lossy WebP child re-made from the whole resampled parent: the quality (at
    libwebp's default effort: coarse, then closer) and then the effort setting (method)
    that reproduce b best, by the MSE over all of b.  The encoder makes the same file from
    the same pixels and settings, so the true parent at its settings gives b exactly; its
    rate control and segment map see the whole picture, so windows cannot."""
    if src is None:
        return float("inf"), ""
    img = Image.fromarray(src)
    errs: dict = {}

    def err(q, m=4):
        if (q, m) not in errs and 0 <= q <= 100:
            buf = io.BytesIO()
            img.save(buf, "WEBP", quality=int(q), method=int(m))
            errs[q, m] = _mse(_decode(buf), b.pixels, 0)
        return errs.get((q, m), float("inf"))
    q4 = min((30, 50, 70, 90), key=err)
    for step in (8, 4, 2, 1):
        q4 = min((q4 - step, q4, q4 + step), key=err)
    for m in WEBP_METHODS[1:]:              # each effort from there: closer and closer
        q = q4
        for step in (4, 2, 1):
            if min(errs.values()) == 0:
                break
            q = min((q - step, q, q + step), key=lambda x, m=m: err(x, m))
    (q, m), e = min(errs.items(), key=lambda kv: kv[1])
    return e, f"WEBP at quality {q}, method {m}"


def _median_cut(a: Copy, b: Copy, g: Geometry, filt, wins, margin: int) -> tuple[float, str]:
    """The palette maker run again on the whole resampled parent (median cut to b's number
    of colours, with and without dithering): the best error over b's windows."""
    bw, bh = b.size
    src = _region(a, g, (0, 0, bw, bh), b.size, filt)
    if src is None:
        return float("inf"), ""
    best = (float("inf"), "")
    for dither in (Image.Dither.NONE, Image.Dither.FLOYDSTEINBERG):
        q = np.asarray(Image.fromarray(src).quantize(
            colors=max(2, b.colors), method=Image.Quantize.MEDIANCUT, dither=dither).convert("RGB"))
        e = float(np.mean([_mse(q[y0:y1, x0:x1], b.pixels[y0:y1, x0:x1], margin)
                           for x0, y0, x1, y1 in wins]))
        name = "dithered" if dither == Image.Dither.FLOYDSTEINBERG else "not dithered"
        best = min(best, (e, f"{b.colors} colours, median cut, {name}"))
    return best
