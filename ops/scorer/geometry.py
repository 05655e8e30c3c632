"""Where one copy of a picture sits in another: dihedral turn, crop box and scale.

``align(a, b)`` finds the geometry a -> b (a turned, its region ``box`` resampled to b's
size) from ORB keypoints (RANSAC similarity), from template matching for crops that keep
the scale (small or flat pictures give ORB too few keypoints), or as the whole frame under
the best-matching turn.  Crops at scale 1 are then placed to the exact pixel at full
resolution, since a box a pixel off spoils the reproduction both ways.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .copies import Copy

R = Image.Resampling
ORB_SIDE = 640           # long side of the grey image keypoints are found on
SAME_FRAME_MSE = 4.0     # grey MSE of 64-px thumbnails below which equal frames match
THUMB_SIDE = 160         # long side of the thumbnails crops are first searched on


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

    def unit(self, child_size: tuple[int, int]) -> bool:
        """An integer crop at scale 1 (no resampling)."""
        l, t, r, b = self.box
        return (r - l, b - t) == tuple(child_size) and l == int(l) and t == int(t)

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


def _turned_size(a: Copy, t: int) -> tuple[int, int]:
    return a.size if t % 2 == 0 else a.size[::-1]


def _aspect_close(w0: int, h0: int, w1: int, h1: int) -> bool:
    """Same aspect ratio up to 2% and the rounding of the smaller picture's sides."""
    tol = 0.02 + 1.5 / max(1, min(w0, h0, w1, h1))
    return abs(np.log((w0 / h0) / (w1 / h1))) < tol


def _grey(px: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Luma with the long side ``side`` (small pictures enlarged up to 3x, so that ORB's
    border and pyramid leave them enough keypoints) and the scale applied."""
    img = Image.fromarray(px).convert("L")
    f = min(3.0, side / max(img.size))
    if abs(f - 1) > 0.05:
        img = img.resize((max(8, round(img.width * f)), max(8, round(img.height * f))),
                         R.BILINEAR, reducing_gap=2.0 if f < 1 else None)
    return np.asarray(img), img.width / px.shape[1]


def keypoints(c: Copy):
    """ORB keypoints (full-size pixel-edge coordinates) and descriptors of a copy, cached."""
    def make():
        import cv2
        g, f = _grey(c.pixels, ORB_SIDE)
        orb = cv2.ORB_create(nfeatures=500, fastThreshold=8)
        kp, desc = orb.detectAndCompute(g, None)
        pts = np.array([k.pt for k in kp], np.float64).reshape(-1, 2)
        return (pts + 0.5) / f, desc                 # pixel-edge coordinates, full size
    return c.memo("orb", make)


def _snap(g: Geometry, a: Copy, b: Copy) -> Geometry:
    """Snap near-whole frames and near-unit-scale crops to exact ones; set ``covered``."""
    tw, th = _turned_size(a, g.turn)
    bw, bh = b.size
    l, t, r, bt = g.box
    tol_x, tol_y = max(1.0, 0.002 * tw), max(1.0, 0.002 * th)
    if abs(l) < tol_x and abs(t) < tol_y and abs(r - tw) < tol_x and abs(bt - th) < tol_y:
        l, t, r, bt = 0.0, 0.0, float(tw), float(th)
    elif abs((r - l) / bw - 1) < 0.01 and abs((bt - t) / bh - 1) < 0.01:   # a crop at scale 1
        l, t = float(round(l)), float(round(t))
        r, bt = l + bw, t + bh
    ix = max(0.0, min(r, tw) - max(l, 0.0)) * max(0.0, min(bt, th) - max(t, 0.0))
    return Geometry(g.turn, (l, t, r, bt), ix / max((r - l) * (bt - t), 1e-9))


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
        dx, dy = p[1] - p[0], p[2] - p[0]
        if dx[0] > abs(dx[1]) and dy[1] > abs(dy[0]):   # child's x and y run as in turned a
            return _snap(Geometry(t, (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(),
                                      p[:, 1].max())), a, b)
    return None


def _thumb(c: Copy, t: int, f: float) -> np.ndarray:
    """Grey thumbnail of ``turned(t)`` shrunk by ``f`` (box filter), cached."""
    def make():
        img = c.turned_image(t).convert("L")
        size = (max(1, round(img.width / f)), max(1, round(img.height / f)))
        return np.asarray(img.resize(size, R.BOX), np.float32)
    return c.memo(("thumb", t, round(f, 4)), make)


def _whole_frame(a: Copy, b: Copy) -> Geometry | None:
    """The dihedral turn of a whose whole frame best matches b (aspect close, grey
    thumbnails correlated > 0.8), or None."""
    gb = b.memo("t32", lambda: np.asarray(Image.fromarray(b.pixels).convert("L").resize(
        (32, 32), R.BOX), np.float32))
    best, best_r = None, 0.8
    for t in range(8):
        tw, th = _turned_size(a, t)
        if not _aspect_close(tw, th, *b.size):
            continue
        ga = a.memo(("t32", t), lambda t=t: np.asarray(a.turned_image(t).convert("L").resize(
            (32, 32), R.BOX), np.float32))
        r = np.corrcoef(ga.ravel(), gb.ravel())[0, 1]
        if np.isfinite(r) and r > best_r:
            best, best_r = Geometry(t, (0.0, 0.0, float(tw), float(th))), r
    return best


def _match_crop(a: Copy, b: Copy) -> Geometry | None:
    """A crop of a at scale 1 (under any turn under which b fits) found by normalised
    template matching on thumbnails (correlation > 0.9), placed to the pixel later."""
    import cv2
    best, best_r = None, 0.9
    bw, bh = b.size
    for t in range(8):
        tw, th = _turned_size(a, t)
        if bw > tw or bh > th or (bw, bh) == (tw, th):
            continue
        f = max(1.0, max(tw, th) / THUMB_SIDE)
        ta, tb = _thumb(a, t, f), _thumb(b, 0, f)
        if tb.shape[0] > ta.shape[0] or tb.shape[1] > ta.shape[1] or min(tb.shape) < 8:
            continue
        res = cv2.matchTemplate(ta, tb, cv2.TM_CCOEFF_NORMED)
        _, r, _, (x, y) = cv2.minMaxLoc(res)
        if np.isfinite(r) and r > best_r:
            l, tp = x * tw / ta.shape[1], y * th / ta.shape[0]
            best, best_r = Geometry(t, (l, tp, l + bw, tp + bh)), r
    return None if best is None else _snap(best, a, b)


def place_crop(a: Copy, b: Copy, g: Geometry, radius: int) -> Geometry:
    """The integer offset within ``radius`` pixels of a scale-1 crop ``g`` whose pixels
    best match b's (least squares on b's luma, at full resolution)."""
    import cv2
    src = a.grey(g.turn)
    bw, bh = b.size
    # the middle of the child (at most 256 px square) searched for in the parent
    pw, ph = min(bw, 256), min(bh, 256)
    cx, cy = (bw - pw) // 2, (bh - ph) // 2
    tmpl = b.grey(0)[cy:cy + ph, cx:cx + pw]
    l, t = int(g.box[0]), int(g.box[1])
    x0, y0 = max(0, l + cx - radius), max(0, t + cy - radius)
    x1 = min(src.shape[1], l + cx + pw + radius)
    y1 = min(src.shape[0], t + cy + ph + radius)
    if x1 - x0 < pw or y1 - y0 < ph:
        return g
    res = cv2.matchTemplate(src[y0:y1, x0:x1], tmpl, cv2.TM_SQDIFF)
    _, _, (x, y), _ = cv2.minMaxLoc(res)
    nl, nt = float(x0 + x - cx), float(y0 + y - cy)
    return _snap(Geometry(g.turn, (nl, nt, nl + bw, nt + bh)), a, b)


def align(a: Copy, b: Copy) -> Geometry | None:
    """Geometry a -> b: keypoint matching (ORB, RANSAC similarity) for crops and turns,
    then template matching for crops at scale 1, else the whole frame under the
    best-matching dihedral turn; None when unrelated."""
    import cv2
    for t in range(8):           # same size, same picture: the whole frame, no keypoints
        if _turned_size(a, t) == b.size:
            whole = Geometry(t, (0.0, 0.0, float(b.size[0]), float(b.size[1])))
            if _thumb_error(a, b, whole) < SAME_FRAME_MSE:
                return whole
    pa, da = keypoints(a)
    pb, db = keypoints(b)
    g = None
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
    # no keypoint geometry: a crop at scale 1 or the whole frame, whichever agrees better
    cands = [c for c in (_match_crop(a, b), _whole_frame(a, b)) if c is not None]
    if not cands:
        return None
    return refine(a, b, min(cands, key=lambda c: _thumb_error(a, b, c)))


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


def refine(a: Copy, b: Copy, g: Geometry | None) -> Geometry | None:
    """A scale-1 crop placed to the exact pixel (``place_crop``); otherwise the whole
    frame under ``g``'s turn when the aspect matches and its thumbnails agree at least as
    well as ``g``'s box does."""
    if g is None:
        return None
    g = _snap(g, a, b)
    tw, th = _turned_size(a, g.turn)
    if g.box == (0.0, 0.0, float(tw), float(th)):      # the whole frame
        return g
    if g.unit(b.size) and g.covered > 0.999:
        radius = 2 + int(np.ceil(3 * max(a.size) / ORB_SIDE))
        return place_crop(a, b, g, radius)
    whole = Geometry(g.turn, (0.0, 0.0, float(tw), float(th)))
    if not _aspect_close(tw, th, *b.size):
        return g
    return min((g, whole), key=lambda c: _thumb_error(a, b, c))


def _thumb_error(a: Copy, b: Copy, g: Geometry) -> float:
    """Mean squared grey difference of b and a's region ``g.box`` on 64-px thumbnails,
    plus a large cost for the share of b outside a."""
    f = max(b.size) / 64
    tb = _thumb(b, 0, f)
    box = tuple(float(v) for v in g.box)
    if g.covered < 0.999:
        return 1e9 * (1 - g.covered) + 1e6
    if g.box == (0.0, 0.0, float(b.size[0]), float(b.size[1])) and \
            _turned_size(a, g.turn) == b.size:          # the same frame: cached thumbnails
        return float(np.mean((_thumb(a, g.turn, f) - tb) ** 2))
    img = a.memo(("grey_img", g.turn), lambda: Image.fromarray(a.grey(g.turn)))
    box = (max(box[0], 0.0), max(box[1], 0.0), min(box[2], img.width), min(box[3], img.height))
    ra = img.resize(tb.shape[::-1], R.BOX, box=box)
    return float(np.mean((np.asarray(ra, np.float32) - tb) ** 2))
