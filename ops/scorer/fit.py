"""Fit the transform that turns one copy of a picture into another, and measure how well it
reproduces the other copy: the asymmetric dissimilarity of image phylogeny (Dias, Rocha,
Goldenstein, IEEE TIFS 7(2), 2012).

When B was made from A, aligning A to B's geometry (turn, crop, resample) and re-encoding it
as B is stored (JPEG with B's own quantisation tables and chroma subsampling, B's palette, a
WebP / AVIF at the setting that fits best) reproduces B closely; the reverse cannot restore
what B lost.  ``dissimilarity(a, b)`` is that reproduction error (MSE, 0..255 scale) of
a -> b, measured in windows of b aligned to its JPEG grid (JPEG blocks are coded
independently, so a window re-encodes as it would inside the whole picture).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

R = Image.Resampling
FIT_VERSION = 2          # bump when fits change: cached evaluation fits carry it
WINDOW = 128             # side of a comparison window (multiple of 16)
MAX_WINDOWS = 6          # windows per ordered pair (a grid over the child)
MARGIN = 4               # window border left out of the error (chroma upsampling at edges)
LOSSY_QUALITIES = (25, 50, 75, 95)   # WebP / AVIF settings tried first (then +-8)
ORB_SIDE = 640           # long side of the grey image keypoints are found on
UNCOVERED_COST = 1e4     # added per unit share of the child a parent cannot cover


@dataclass
class Copy:
    """One copy: decoded pixels (as displayed) and what its file says about its coding."""

    name: str
    pixels: np.ndarray                     # (H, W, 3) uint8
    format: str
    qtables: list | None = None            # JPEG tables, as Pillow reads / writes them
    subsampling: int = -1                  # JPEG: 0 4:4:4, 1 4:2:2, 2 4:2:0
    palette: Image.Image | None = None     # palette image of GIF / P-mode copies
    lossless: bool = True                  # False for lossy WebP / AVIF / JPEG
    file_size: int = 0
    colors: int = 256                      # colours a palette copy uses
    _orb: tuple | None = field(default=None, repr=False)
    _turned: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def turned(self, t: int) -> np.ndarray:
        """The pixels under dihedral turn ``t`` (``turn_pixels``), cached."""
        if t not in self._turned:
            self._turned[t] = turn_pixels(self.pixels, t)
        return self._turned[t]

    def turned_image(self, t: int) -> Image.Image:
        """``turned(t)`` as a PIL image, cached."""
        if ("img", t) not in self._turned:
            self._turned["img", t] = Image.fromarray(self.turned(t))
        return self._turned["img", t]


def copy_from_image(raw: Image.Image, name: str, rgb: Image.Image | None = None,
                    head: bytes = b"", file_size: int = 0) -> Copy:
    """A ``Copy`` of an opened (not yet converted) image; ``rgb``: its decoded RGB version
    when the caller already has it; ``head``: the file's first bytes (WebP lossless flag)."""
    fmt = (raw.format or "").upper()
    c = Copy(name, np.asarray(rgb if rgb is not None else raw.convert("RGB")), fmt,
             file_size=file_size)
    if fmt == "JPEG" and getattr(raw, "quantization", None):
        from PIL import JpegImagePlugin
        c.qtables = [list(raw.quantization[k]) for k in sorted(raw.quantization)]
        c.subsampling = JpegImagePlugin.get_sampling(raw)
        c.lossless = False
    elif raw.mode == "P" or fmt == "GIF":
        pal = Image.new("P", (1, 1))
        pal.putpalette(raw.getpalette() or [])
        c.palette = pal
        used = raw.getcolors(256) if raw.mode == "P" else None
        c.colors = len(used) if used else 256
    elif fmt in ("WEBP", "AVIF"):
        c.lossless = fmt == "WEBP" and b"VP8L" in head
    return c


def copy_from_bytes(data: bytes, name: str) -> Copy:
    with Image.open(io.BytesIO(data)) as raw:
        raw.load()
        return copy_from_image(raw, name, head=data[:4096], file_size=len(data))


# ---------------------------------------------------------------- geometry
def turn_pixels(px: np.ndarray, t: int) -> np.ndarray:
    """Dihedral turn ``t`` in 0..7: ``t % 4`` quarter turns counter-clockwise (np.rot90),
    then a left-right mirror when ``t >= 4``."""
    out = np.rot90(px, t % 4)
    return np.ascontiguousarray(out[:, ::-1] if t >= 4 else out)


def turn_points(pts: np.ndarray, t: int, w: int, h: int) -> np.ndarray:
    """Points (N, 2) in pixel-edge coordinates of a w x h image, in the turned image."""
    x, y = pts[:, 0].astype(np.float64), pts[:, 1].astype(np.float64)
    for _ in range(t % 4):
        x, y, w, h = y, w - x, h, w
    if t >= 4:
        x = w - x
    return np.stack([x, y], 1)


TURN_NAMES = ("", "turned 90°", "turned 180°", "turned 270°", "mirrored",
              "turned 90° + mirrored", "turned 180° + mirrored", "turned 270° + mirrored")


@dataclass
class Geometry:
    """Parent -> child geometry: the parent turned by ``turn``, its region ``box`` (left,
    top, right, bottom in the turned parent's pixel-edge coordinates) resampled to the
    child's size.  ``covered``: share of the child the parent holds."""

    turn: int
    box: tuple[float, float, float, float]
    covered: float = 1.0

    def describe(self, parent_size: tuple[int, int], child_size: tuple[int, int]) -> list[str]:
        pw, ph = parent_size if self.turn % 2 == 0 else parent_size[::-1]
        l, t, r, b = self.box
        steps = [TURN_NAMES[self.turn]] if self.turn else []
        if max(abs(l), abs(t), abs(r - pw), abs(b - ph)) > 0.5:
            steps.append(f"crop {r - l:.0f}x{b - t:.0f}+{l:.0f}+{t:.0f}")
        sx = child_size[0] / max(r - l, 1e-9)
        if abs(sx - 1) > 0.005 or abs(child_size[1] / max(b - t, 1e-9) - 1) > 0.005:
            steps.append(f"resize x{sx:.3g} to {child_size[0]}x{child_size[1]}")
        return steps


def _grey(px: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    img = Image.fromarray(px).convert("L")
    f = min(1.0, side / max(img.size))
    if f < 1.0:
        img = img.resize((max(8, round(img.width * f)), max(8, round(img.height * f))),
                         R.BILINEAR, reducing_gap=2.0)
    return np.asarray(img), img.width / px.shape[1]


def _orb(c: Copy):
    if c._orb is None:
        import cv2
        g, f = _grey(c.pixels, ORB_SIDE)
        orb = cv2.ORB_create(nfeatures=500, fastThreshold=10)
        kp, desc = orb.detectAndCompute(g, None)
        pts = np.array([k.pt for k in kp], np.float64).reshape(-1, 2)
        c._orb = ((pts + 0.5) / f, desc)          # pixel-edge coordinates, full size
    return c._orb


def _geometry_from_matrix(m: np.ndarray, a: Copy, b: Copy) -> Geometry | None:
    """Geometry a -> b from a similarity m mapping b's points to a's (None unless its angle
    is a multiple of 90 degrees)."""
    ang = np.degrees(np.arctan2(m[1, 0], m[0, 0]))
    if abs(ang - 90 * round(ang / 90)) > 3:
        return None
    (aw, ah), (bw, bh) = a.size, b.size
    corners = np.array([[0, 0], [bw, 0], [0, bh], [bw, bh]], np.float64)
    in_a = corners @ m[:, :2].T + m[:, 2]
    for t in range(4):
        p = turn_points(in_a, t, aw, ah)
        if p[0, 0] < p[1, 0] and p[0, 1] < p[2, 1]:      # child's x and y run as in turned a
            return _snap(Geometry(t, (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(),
                                      p[:, 1].max())), a, b)
    return None


def _snap(g: Geometry, a: Copy, b: Copy) -> Geometry:
    """Snap near-whole frames and near-unit-scale crops to exact ones; set ``covered``."""
    tw, th = a.size if g.turn % 2 == 0 else a.size[::-1]
    bw, bh = b.size
    l, t, r, bt = g.box
    tol_x, tol_y = max(1.0, 0.002 * tw), max(1.0, 0.002 * th)
    if abs(l) < tol_x and abs(t) < tol_y and abs(r - tw) < tol_x and abs(bt - th) < tol_y:
        l, t, r, bt = 0.0, 0.0, float(tw), float(th)
    elif abs((r - l) - bw) < 2 and abs((bt - t) - bh) < 2:      # a crop at scale 1
        l, t = float(round(l)), float(round(t))
        r, bt = l + bw, t + bh
    ix = max(0.0, min(r, tw) - max(l, 0.0)) * max(0.0, min(bt, th) - max(t, 0.0))
    return Geometry(g.turn, (l, t, r, bt), ix / max((r - l) * (bt - t), 1e-9))


def _whole_frame(a: Copy, b: Copy) -> Geometry | None:
    """The dihedral turn of a whose whole frame best matches b (aspect within 2%, grey
    thumbnails correlated > 0.8), or None."""
    gb = np.asarray(Image.fromarray(b.pixels).convert("L").resize((32, 32), R.BOX), np.float32)
    best, best_r = None, 0.8
    for t in range(8):
        tw, th = a.size if t % 2 == 0 else a.size[::-1]
        if abs(tw / th - b.size[0] / b.size[1]) > 0.02 * b.size[0] / b.size[1]:
            continue
        ga = np.asarray(Image.fromarray(turn_pixels(a.pixels, t)).convert("L").resize(
            (32, 32), R.BOX), np.float32)
        r = np.corrcoef(ga.ravel(), gb.ravel())[0, 1]
        if np.isfinite(r) and r > best_r:
            best, best_r = Geometry(t, (0.0, 0.0, float(tw), float(th))), r
    return best


def align(a: Copy, b: Copy) -> Geometry | None:
    """Geometry a -> b: keypoint matching (ORB, RANSAC similarity) for crops and turns,
    else the whole frame under the best-matching dihedral turn; None when unrelated."""
    import cv2
    pa, da = _orb(a)
    pb, db = _orb(b)
    if da is not None and db is not None and len(pa) >= 8 and len(pb) >= 8:
        matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(db, da)
        if len(matches) >= 8:
            src = np.float32([pb[m.queryIdx] for m in matches])
            dst = np.float32([pa[m.trainIdx] for m in matches])
            thr = 3.0 * max(a.size) / ORB_SIDE
            m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                 ransacReprojThreshold=max(2.0, thr))
            if m is not None and inl is not None and inl.sum() >= max(8, 0.15 * len(matches)):
                g = _geometry_from_matrix(m, a, b)
                if g is not None:
                    return refine(a, b, g)
    return _whole_frame(a, b)


def inverse(g: Geometry, a: Copy, b: Copy) -> Geometry:
    """The geometry b -> a of a geometry a -> b."""
    (aw, ah), (bw, bh) = a.size, b.size
    l, t, r, bt = g.box
    sx, sy = bw / (r - l), bh / (bt - t)
    tw, th = (aw, ah) if g.turn % 2 == 0 else (ah, aw)
    box_turned_a = (-l * sx, -t * sy, (tw - l) * sx, (th - t) * sy)   # a's frame in b coords
    inv_t = {0: 0, 1: 3, 2: 2, 3: 1, 4: 4, 5: 5, 6: 6, 7: 7}[g.turn]
    corners = np.array([[box_turned_a[0], box_turned_a[1]], [box_turned_a[2], box_turned_a[3]]])
    p = turn_points(corners, inv_t, bw, bh) if g.turn else corners
    return _snap(Geometry(inv_t, (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max())),
                 b, a)


# ---------------------------------------------------------------- reproduction error
def _windows(w: int, h: int, grid: int) -> list[tuple[int, int, int, int]]:
    """Up to MAX_WINDOWS windows of the child on its ``grid`` (JPEG MCU), spread over it."""
    side = WINDOW
    if w < side or h < side:
        ww, hh = (w // grid) * grid, (h // grid) * grid
        return [(0, 0, ww, hh)] if ww >= grid and hh >= grid else []
    nx, ny = (3, 2) if w >= h else (2, 3)
    xs = np.unique(np.linspace(0, w - side, nx).astype(int) // grid * grid)
    ys = np.unique(np.linspace(0, h - side, ny).astype(int) // grid * grid)
    return [(int(x), int(y), int(x) + side, int(y) + side) for y in ys for x in xs][:MAX_WINDOWS]


def _reencode(px: np.ndarray, child: Copy, quality: int | None = None) -> np.ndarray:
    buf = io.BytesIO()
    img = Image.fromarray(px)
    if child.format == "JPEG":
        img.save(buf, "JPEG", qtables=child.qtables,
                 subsampling=child.subsampling if child.subsampling >= 0 else 2)
    else:
        img.save(buf, child.format, quality=int(quality))
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def _mse(x: np.ndarray, y: np.ndarray) -> float:
    m = MARGIN if min(x.shape[:2]) > 4 * MARGIN else 0
    d = x[m:x.shape[0] - m, m:x.shape[1] - m].astype(np.float32) - \
        y[m:y.shape[0] - m, m:y.shape[1] - m]
    return float(np.mean(d * d))


@dataclass
class Fit:
    """How parent -> child was reproduced: error, geometry, resampling and coding."""

    error: float
    geometry: Geometry | None
    steps: list[str]


def _region(a: Copy, g: Geometry, win: tuple[int, int, int, int], bsize: tuple[int, int],
            filt) -> np.ndarray | None:
    """The parent's pixels for the child's region ``win`` under ``g`` (resampled with
    ``filt`` unless the geometry is an integer crop), None when outside the parent."""
    src = a.turned(g.turn)
    l, t, r, bt = g.box
    x0, y0, x1, y1 = win
    sx, sy = (r - l) / bsize[0], (bt - t) / bsize[1]
    if sx == 1 and sy == 1 and l == int(l) and t == int(t):
        xa, ya = int(l) + x0, int(t) + y0
        if xa < 0 or ya < 0 or xa + x1 - x0 > src.shape[1] or ya + y1 - y0 > src.shape[0]:
            return None
        return src[ya:ya + y1 - y0, xa:xa + x1 - x0]
    box = (l + x0 * sx, t + y0 * sy, l + x1 * sx, t + y1 * sy)
    if box[0] < -0.5 or box[1] < -0.5 or box[2] > src.shape[1] + 0.5 or \
            box[3] > src.shape[0] + 0.5:
        return None
    box = (max(box[0], 0), max(box[1], 0), min(box[2], src.shape[1]), min(box[3], src.shape[0]))
    return np.asarray(a.turned_image(g.turn).resize((x1 - x0, y1 - y0), filt, box=box))


def _plain_error(a: Copy, b: Copy, g: Geometry, wins, filt) -> float:
    errs = []
    for w in wins:
        s = _region(a, g, w, b.size, filt)
        if s is not None:
            errs.append(_mse(s, b.pixels[w[1]:w[3], w[0]:w[2]]))
    return float(np.mean(errs)) if errs else float("inf")


def refine(a: Copy, b: Copy, g: Geometry | None) -> Geometry | None:
    """The best of ``g``, the whole frame under its turn and, for a crop at scale 1, the
    crops one pixel off, by the plain resampling error on two windows of the child."""
    if g is None:
        return None
    tw, th = a.size if g.turn % 2 == 0 else a.size[::-1]
    cands = [g]
    aspect = b.size[0] / b.size[1]
    if abs(tw / th - aspect) < 0.02 * aspect:
        cands.append(Geometry(g.turn, (0.0, 0.0, float(tw), float(th))))
    l, t, r, bt = g.box
    if r - l == b.size[0] and bt - t == b.size[1]:
        cands += [Geometry(g.turn, (l + dx, t + dy, r + dx, bt + dy))
                  for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
    wins = _windows(*b.size, 8)[:2]
    cands = [_snap(c, a, b) for c in cands]
    return min(cands, key=lambda c: _plain_error(a, b, c, wins, R.BILINEAR) +
               UNCOVERED_COST * (1 - c.covered))


WHOLE = ("WEBP", "AVIF")     # codecs that are not block-local: compared on the whole picture


def fit(a: Copy, b: Copy, g: Geometry | None) -> Fit:
    """Reproduce child ``b`` from parent ``a`` under geometry ``g``: resample (the better of
    Lanczos and bilinear), then code as b is coded; the MSE over b's windows (the whole
    picture for palette, WebP and AVIF copies), plus ``UNCOVERED_COST`` times the share of
    b that a does not hold."""
    if g is None:
        return Fit(float("inf"), None, ["unrelated"])
    bw, bh = b.size
    grid = 16 if b.format == "JPEG" and b.subsampling in (1, 2, -1) else 8
    wins = _windows(bw, bh, grid)
    steps = g.describe(a.size, b.size)
    if not wins:
        return Fit(float("inf"), g, steps + ["too small to compare"])
    l, t, r, bt = g.box
    unit = (r - l, bt - t) == (bw, bh) and l == int(l) and t == int(t)
    filt = R.BILINEAR
    if not unit:
        filt = min((R.LANCZOS, R.BILINEAR), key=lambda f: _plain_error(a, b, g, wins[:2], f))
        steps.append("lanczos" if filt == R.LANCZOS else "bilinear")
    penalty = UNCOVERED_COST * (1.0 - g.covered)
    whole = (b.palette is not None or (b.format in WHOLE and not b.lossless))
    if whole and g.covered > 0.99:
        wins = [(0, 0, bw, bh)]
    sources = []
    for w in wins:
        s = _region(a, g, w, b.size, filt)
        if s is not None:
            sources.append((s, b.pixels[w[1]:w[3], w[0]:w[2]]))
    if not sources:
        return Fit(penalty + UNCOVERED_COST, g, steps + ["not covered"])
    if whole and g.covered <= 0.99:
        return Fit(penalty + float(np.mean([_mse(x, y) for x, y in sources])), g,
                   steps + ["partly outside the parent"])
    err, coding = _code_like(sources, b)
    return Fit(err + penalty, g, steps + coding)


def _best_quality(src: np.ndarray, b: Copy, want: np.ndarray) -> tuple[int, float]:
    """The WebP / AVIF quality (coarse grid, then +-8 around the best) whose re-encode of
    ``src`` comes nearest ``want``, and that error."""
    errs: dict[int, float] = {}

    def err(q: int) -> float:
        if q not in errs:
            errs[q] = _mse(_reencode(src, b, q), want)
        return errs[q]

    best = min(LOSSY_QUALITIES, key=err)
    for q in (best - 8, best + 8):
        if 1 <= q <= 100:
            err(q)
    q = min(errs, key=errs.get)
    return q, errs[q]


def _palettised(px: np.ndarray, b: Copy, how: str, dither) -> np.ndarray:
    img = Image.fromarray(px)
    if how == "median cut":
        q = img.quantize(colors=max(2, b.colors), method=Image.Quantize.MEDIANCUT, dither=dither)
    else:
        q = img.quantize(palette=b.palette, dither=dither)
    return np.asarray(q.convert("RGB"))


def _code_like(sources: list[tuple[np.ndarray, np.ndarray]], b: Copy) -> tuple[float, list[str]]:
    """Mean error over the windows after coding each source window as ``b`` is coded."""
    if b.format == "JPEG" and b.qtables:
        errs = [_mse(_reencode(s, b), want) for s, want in sources]
        sub = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(b.subsampling, "")
        return float(np.mean(errs)), [f"JPEG with the copy's own tables {sub}".rstrip()]
    if b.palette is not None:     # the copy's palette, or the palette maker run again
        best = None
        for how in ("copy's palette", "median cut"):
            for dither in (Image.Dither.NONE, Image.Dither.FLOYDSTEINBERG):
                errs = [_mse(_palettised(s, b, how, dither), want) for s, want in sources]
                e = float(np.mean(errs))
                if best is None or e < best[0]:
                    best = (e, how, dither)
        name = "dithered" if best[2] == Image.Dither.FLOYDSTEINBERG else "not dithered"
        return best[0], [f"{b.colors} colours, {best[1]}, {name}"]
    if b.format in WHOLE and not b.lossless:      # one source: the whole picture
        q, e = _best_quality(sources[0][0], b, sources[0][1])
        return e, [f"{b.format} at about quality {q}"]
    return float(np.mean([_mse(s, want) for s, want in sources])), [f"{b.format or 'raw'} "
                                                                     "(lossless)"]
