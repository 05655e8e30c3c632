"""Random lossy chains over a source photo, and the ordered / tied pairs they yield.

A chain starts from an "original" (a random crop of a pristine photo, saved losslessly or as
a high-quality JPEG) and applies 1..``max_steps`` edits, each from a transform family.  Any
two copies i < j of a chain form a pair: the later one is derived from the earlier one, so it
is further from the original -- unless both decode to identical pixels (a lossless re-save
such as the PNG of a JPEG), in which case the pair is a *tie*, never labelled as ordered.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ops.image.metrics.psnr_ssim import LUMA
from . import transforms as T
from .transforms import Encoded

# relative frequency of each family in a chain step
FAMILY_WEIGHTS = {
    "jpeg": 2.0, "webp": 1.2, "gif": 0.8, "quantize": 1.0, "resize_down": 1.5,
    "resize_up": 1.0, "down_up": 0.8, "crop": 0.8, "lossless": 1.0, "platform": 1.2,
    "screenshot": 1.0, "resave_hq": 1.5, "generations": 0.8,
}
PLATFORM_LONG_SIDES = (1080, 1280, 1600, 2048)
GENERATOR_VERSION = 5      # bump when chains change: pair-set caches are keyed by it
SCREEN_SCALES = (1.25, 1.5, 2.0)
MAX_GENERATIONS = 400      # "generations" runs 2..400 rotate+JPEG rounds (log-uniform)
GENERATION_CHECKPOINTS = 4  # ... and keeps this many of them, log-spaced, as chain copies


@dataclass
class Pair:
    closer: int          # index into the chain's copies
    further: int
    family: str
    tie: bool            # identical pixels: no order to learn


def _pick_method(rng) -> dict:
    m = str(rng.choice(T.RESIZE_FILTERS))
    kw = {"method": m}
    if m in ("bilinear", "bicubic", "lanczos", "box", "hamming"):
        u = rng.random()
        if u < 0.15:
            kw["linear_light"] = True
        elif u < 0.3:
            kw["gamma"] = float(rng.choice([1.8, 2.2, 2.4]))
    if m == "nearest_offset":
        kw["offset"] = (float(rng.random()), float(rng.random()))
    return kw


def _scaled(px, s: float) -> tuple[int, int]:
    h, w = px.shape[:2]
    return max(8, int(round(w * s))), max(8, int(round(h * s)))


def step(src: Encoded, family: str, rng: np.random.Generator,
         platform_scale: float = 1.0) -> Encoded:
    """Apply one edit of ``family`` to ``src``; returns the new file."""
    px = src.pixels
    h, w = px.shape[:2]
    if family == "jpeg":
        return T.to_jpeg(px, int(rng.integers(5, 101)), str(rng.choice(list(T.SUBSAMPLING))),
                         optimize=bool(rng.integers(2)), progressive=rng.random() < 0.2)
    if family == "webp":
        return T.to_webp(px, int(rng.integers(5, 96)), method=int(rng.integers(0, 5)))
    if family == "gif":
        return T.to_gif(px, int(rng.choice([32, 64, 128, 256, 256])), bool(rng.integers(2)))
    if family == "quantize":
        img = T.quantize_image(px, int(rng.choice([8, 16, 32, 64, 128, 256])),
                               bool(rng.integers(2)))
        return T.encode(img, "PNG")
    if family in ("resize_down", "resize_up"):
        s = rng.uniform(0.3, 0.9) if family == "resize_down" else rng.uniform(1.1, 2.5)
        out = T.resize(px, _scaled(px, s), **_pick_method(rng))
        return T.reencode_like(src, out, rng) if rng.random() < 0.5 else T.to_png(out)
    if family == "down_up":
        small = T.resize(px, _scaled(px, rng.uniform(0.35, 0.75)), **_pick_method(rng))
        out = T.resize(small, (w, h), **_pick_method(rng))
        return T.reencode_like(src, out, rng) if rng.random() < 0.5 else T.to_png(out)
    if family == "crop":
        if rng.random() < 0.5:      # shave a few pixels / percent off the edges
            f = rng.uniform(0.005, 0.05, size=4)
        else:
            f = rng.uniform(0.0, 0.2, size=4)
        l, t = int(w * f[0]), int(h * f[1])
        r, b = w - int(w * f[2]), h - int(h * f[3])
        if r - l < 16 or b - t < 16 or (l, t, r, b) == (0, 0, w, h):
            l, t, r, b = 1, 1, w - 1, h - 1
        return T.reencode_like(src, T.crop(px, (l, t, r, b)), rng)
    if family == "lossless":
        u = rng.random()
        if u < 0.6:
            return T.to_png(px, int(rng.integers(0, 10)))
        return T.to_webp(px, 80, lossless=True)
    if family == "platform":
        side = rng.choice(PLATFORM_LONG_SIDES) * platform_scale
        out = px
        if max(w, h) > side:
            s = side / max(w, h)
            out = T.resize(px, _scaled(px, s), str(rng.choice(["bilinear", "bicubic",
                                                               "lanczos", "area"])))
        return T.to_jpeg(out, int(rng.integers(60, 91)), "4:2:0",
                         optimize=bool(rng.integers(2)))
    if family == "screenshot":
        s = float(rng.choice(SCREEN_SCALES))
        method = str(rng.choice(["bilinear", "bicubic", "lanczos", "nearest"]))
        return T.to_png(T.resize(px, _scaled(px, s), method))
    if family == "generations":     # many re-uploads: turn 90 degrees + re-encode, n times
        return generations(src, rng)[-1]
    if family == "resave_hq":
        return T.to_jpeg(px, int(rng.integers(92, 101)),
                         str(rng.choice(["4:4:4", "4:2:0"])), optimize=bool(rng.integers(2)))
    raise ValueError(f"unknown transform family {family!r}")


def generations(src: Encoded, rng: np.random.Generator, n: int | None = None,
                quality: int | None = None, subsampling: str | None = None) -> list[Encoded]:
    """Turn 90 degrees + re-encode as JPEG n times (n log-uniform in 2..MAX_GENERATIONS, one
    quality and subsampling throughout); returns the copies after log-spaced checkpoint
    rounds, the last one after round n.  A chain that enters an exact cycle ends at the
    cycle's first round (see ``jpeg_rounds``), which is then its last copy; empty when
    ``src`` itself opens the cycle (nothing new to add)."""
    if n is None:
        n = int(np.exp(rng.uniform(np.log(2), np.log(MAX_GENERATIONS))))
    q = int(rng.integers(50, 96)) if quality is None else int(quality)
    sub = (str(rng.choice(["4:2:0", "4:2:0", "4:4:4"])) if subsampling is None
           else subsampling)
    keep = set(np.unique(np.round(np.geomspace(1, n, GENERATION_CHECKPOINTS))).astype(int))
    keep.add(n)
    rounds, _ = jpeg_rounds(src, n, q, sub)
    return [c for g, c in enumerate(rounds, 1) if g in keep or g == len(rounds)]


def pixel_key(px: np.ndarray) -> bytes:
    """A digest of decoded pixels and their shape: equal keys = identical images."""
    import hashlib
    px = np.ascontiguousarray(px)
    return hashlib.sha256(px.tobytes()).digest() + str(px.shape).encode("ascii")


def jpeg_rounds(src: Encoded, n: int, quality: int,
                subsampling: str) -> tuple[list[Encoded], tuple[int, int] | None]:
    """The copies after rounds 1..n of turn 90 degrees + JPEG, and the chain's cycle.

    Rotate + re-encode can enter an exact cycle: round g decodes to the pixels of an earlier
    round g0 (``src`` is round 0).  A picture whose sides sit on the JPEG grid settles on a
    fixed point (period 4: the same image in its four turns); others cycle longer (a leaf
    photo: round 106 = round 82, period 24).  Every round from g0 on is a member of that
    cycle, derived from every other member, so none is further from the original than
    another: the copies end at round g0, and the cycle is returned as (g, g - g0) (None
    when no round repeats).  Only the newest round's pixels stay decoded."""
    copies: list[Encoded] = []
    seen = {pixel_key(src.pixels): 0}
    cur = src
    for g in range(1, n + 1):
        nxt = T.to_jpeg(T.rotate90(cur.pixels), quality, subsampling)
        if cur is not src:
            cur.drop_pixels()           # 400 rounds of decoded pixels would not stay small
        key = pixel_key(nxt.pixels)
        if key in seen:
            g0 = seen[key]
            return copies[:g0], (g, g - g0)
        seen[key] = g
        copies.append(nxt)
        cur = nxt
    return copies, None


AUGMENT_VERSION = 1        # bump when ``tone_reduce`` changes: augmented caches carry it
AUGMENT_SHARE = 0.5        # share of augmented chains' originals that are tone-mapped + reduced


def tone_reduce(photo: np.ndarray, rng: np.random.Generator, factor: int) -> np.ndarray:
    """A pristine photo in other colours and at a smaller scale, with no new artifacts: white
    balance (channel gains 0.9-1.1), saturation (x0.6-1.4 around the luma) and a tone curve
    (gamma 0.7-1.4) applied in floating point, then a box reduction by the integer
    ``factor`` >= 2 (the mean of factor x factor pixels) and one rounding.  Tone curves on
    8-bit pixels would leave empty or doubled levels (a histogram comb, which reads as
    quantisation); averaging in float first leaves a smooth histogram."""
    if factor < 2:
        raise ValueError("tone_reduce needs an integer reduction factor >= 2")
    gains = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    sat = np.float32(rng.uniform(0.6, 1.4))
    gamma = np.float32(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
    h, w = (photo.shape[0] // factor) * factor, (photo.shape[1] // factor) * factor
    x = photo[:h, :w].astype(np.float32) * (gains / 255.0)
    y = x @ np.asarray(LUMA, np.float32)
    x = y[..., None] + sat * (x - y[..., None])
    x = np.clip(x, 0.0, 1.0) ** gamma
    x = x.reshape(h // factor, factor, w // factor, factor, 3).mean(axis=(1, 3))
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def make_original(photo: np.ndarray, rng: np.random.Generator, min_side: int = 160,
                  max_side: int = 768, augment: bool = False) -> Encoded:
    """A random crop of a pristine photo, saved as PNG or as a high-quality camera JPEG.
    The photo is first flipped / turned and, one time in three, halved with a box filter
    (integer factor: no new artifacts), so few photos still give varied content.
    ``augment`` (training chains only; evaluation chains never use it): in
    ``AUGMENT_SHARE`` of the chains the photo is instead recoloured and reduced by 2 or 3
    (``tone_reduce``), so the net meets more colours, contrasts and scales of texture than
    the few training photos hold."""
    photo = np.rot90(photo, int(rng.integers(4)))
    if rng.random() < 0.5:
        photo = photo[:, ::-1]
    photo = np.ascontiguousarray(photo)
    if augment and rng.random() < AUGMENT_SHARE and min(photo.shape[:2]) >= 2 * min_side:
        fits = [f for f in (2, 3) if min(photo.shape[:2]) >= f * min_side]
        photo = tone_reduce(photo, rng, int(rng.choice(fits)))
    elif rng.random() < 1 / 3 and min(photo.shape[:2]) >= 2 * min_side:
        photo = np.asarray(Image.fromarray(photo).reduce(2))
    h, w = photo.shape[:2]
    cw = int(rng.integers(min(min_side, w), min(max_side, w) + 1))
    ch = int(rng.integers(min(min_side, h), min(max_side, h) + 1))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    px = T.crop(photo, (x, y, x + cw, y + ch))
    if rng.random() < 0.65:
        out = T.to_png(px, 1)
    else:
        out = T.to_jpeg(px, int(rng.integers(90, 101)), str(rng.choice(["4:4:4", "4:2:0"])))
    out.pristine = px
    return out


def align_to(pristine: np.ndarray, px: np.ndarray) -> tuple[np.ndarray | None, float]:
    """A copy's pixels turned back by the multiple of 90 degrees that gives the pristine
    pixels' geometry (a "generations" copy is turned once per round; for a square picture
    every turn fits and the one nearest the pristine pixels by MSE wins), and that MSE;
    (None, NaN) when no turn fits (a resize or crop changed the geometry)."""
    best, best_d, ref = None, np.inf, None
    for r in range(4):
        p = np.rot90(px, -r)
        if p.shape != pristine.shape:
            continue
        ref = pristine.astype(np.float32) if ref is None else ref
        d = float(np.mean((p.astype(np.float32) - ref) ** 2))
        if best is None or d < best_d:
            best, best_d = p, d
    if best is None:
        return None, float("nan")
    return np.ascontiguousarray(best), best_d


def reference_mse(pristine: np.ndarray, px: np.ndarray) -> float:
    """Mean squared error (0..255 scale, over R, G, B) of a copy's pixels against the pristine
    pixels of its chain's original, turned back as ``align_to`` does; NaN when no turn gives
    the original's geometry (a resize or crop): the copy's damage is then not measured."""
    return align_to(pristine, px)[1]


def make_chain(photo: np.ndarray, rng: np.random.Generator, max_steps: int = 4,
               platform_scale: float = 0.5,
               augment: bool = False) -> tuple[list[Encoded], list[str]]:
    """Original (``make_original``, ``augment`` passed on) + random edits.  Returns the
    copies and the family of each step."""
    copies = [make_original(photo, rng, augment=augment)]
    fams: list[str] = []
    names = list(FAMILY_WEIGHTS)
    p = np.array([FAMILY_WEIGHTS[n] for n in names])
    lossy = copies[0].format != "PNG"
    for _ in range(int(rng.integers(1, max_steps + 1))):
        q = p.copy()
        if not lossy:                           # re-saving pristine pixels is just "jpeg"
            q[names.index("resave_hq")] = 0.0
        fam = str(rng.choice(names, p=q / q.sum()))
        news = (generations(copies[-1], rng) if fam == "generations"
                else [step(copies[-1], fam, rng, platform_scale)])
        if not news:                            # the copy already sits on that cycle
            continue
        if news[-1].size[0] < 8 or news[-1].size[1] < 8:
            break
        lossy = lossy or fam not in ("lossless", "crop")
        copies += news
        fams += [fam] * len(news)
    return copies, fams


def chain_pairs(copies: list[Encoded], fams: list[str]) -> list[Pair]:
    """Every i < j pair of a chain; adjacent ones carry their step's family."""
    pairs = []
    for i in range(len(copies)):
        for j in range(i + 1, len(copies)):
            fam = fams[i] if j == i + 1 else "multi_generation"
            pairs.append(Pair(i, j, fam, T.same_pixels(copies[i], copies[j])))
    return pairs


def generation_chain(photo: np.ndarray, generations: int, quality: int = 75,
                     subsampling: str = "4:2:0") -> tuple[list[Encoded], tuple[int, int] | None]:
    """Rotate 90 degrees and re-encode as JPEG, ``generations`` times (generation 0 = PNG),
    and the cycle the chain entered, if any: the copies end at its first round (see
    ``jpeg_rounds``)."""
    first = T.to_png(photo, 1)
    rounds, cycle = jpeg_rounds(first, generations, quality, subsampling)
    return [first, *rounds], cycle
