"""Per-image scorer inputs: K high-entropy 8x8 blocks (pixels, DCT), file metadata and
whole-image statistics (``global_stats``: DCT spectrum, quantisation fit, grid phase and
resampling periodicity of the gradient profiles, histogram gaps).

Blocks lie on the 8x8 grid anchored at the top-left corner (the JPEG block grid).  A block's
entropy is the sum of absolute differences of horizontally and vertically adjacent luma
pixels inside it.  Selection is spread over the image: the tile grid is cut into about 4K
cells, the best block of each cell ranks first, then the rest, each by entropy (ties by
a fixed scramble of position), and the top K are kept -- so the count is min(K, number of
whole blocks) at any resolution.  Everything is deterministic: vectorised numpy, and
numba kernels (``_jit.py``) for the per-pixel passes.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

K_BLOCKS = 64
FEATURES_VERSION = 2      # bump when features change: pair-set caches are keyed by it
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
IMAGE_META_DIM = 20
BLOCK_META_DIM = 2
STATS_BLOCKS = 256        # grid blocks (raster-strided over the image) behind global_stats
PROFILE_BANDS = 16        # frequency bands of the row / column gradient profiles
# JPEG qualities whose standard luma tables the quantisation fit is measured against
QFIT_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95)
GLOBAL_DIM = 64 + 2 * 15 + 2 * len(QFIT_QUALITIES) + 2 * 8 + 2 * PROFILE_BANDS + 4
MAX_COLOUR_SAMPLES = 1 << 12
MAX_ENTROPY = (1 << 15) - 1      # 112 pairs x 255 = 28560 fits


@dataclass
class FileInfo:
    """What the file says about itself, independent of its pixels."""

    format: str
    width: int
    height: int
    file_size: int
    mode: str = "RGB"
    jpeg_quality: float = 0.0          # estimated from the luma table, 0 when not JPEG
    qtable_means: tuple = (0.0, 0.0)   # mean luma / chroma quantiser step, 0 when not JPEG
    subsampling: int = -1              # 0 4:4:4, 1 4:2:2, 2 4:2:0, -1 other / not JPEG
    webp_lossless: bool = False


@dataclass
class Features:
    pixels: np.ndarray        # (K, 8, 8, 3) uint8, zero where absent
    block_meta: np.ndarray    # (K, BLOCK_META_DIM) float32
    image_meta: np.ndarray    # (IMAGE_META_DIM,) float32
    mask: np.ndarray          # (K,) bool: block present
    global_stats: np.ndarray | None = None   # (GLOBAL_DIM,) float32 whole-image statistics

    @property
    def count(self) -> int:
        return int(self.mask.sum())


# ---------------------------------------------------------------- JPEG quality
@lru_cache(maxsize=1)
def _reference_tables() -> np.ndarray:
    """Luma quantisation tables of Pillow/libjpeg at qualities 1..100, as Pillow reports them."""
    img = Image.new("L", (8, 8), 128)
    out = []
    for q in range(1, 101):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q)
        with Image.open(buf) as im:
            out.append(np.asarray(im.quantization[0], dtype=np.float32))
    return np.stack(out)


def estimate_jpeg_quality(qtables: dict) -> float:
    """IJG quality (1..100) whose luma table is nearest (L1) to the file's first table."""
    if not qtables:
        return 0.0
    t = np.asarray(qtables[min(qtables)], dtype=np.float32).reshape(-1)[:64]
    if t.size != 64:
        return 0.0
    d = np.abs(_reference_tables() - t[None]).sum(1)
    return float(np.argmin(d) + 1)


def file_info(img: Image.Image, file_size: int, data_head: bytes = b"") -> FileInfo:
    """Read format, size and JPEG tables from an opened (not necessarily decoded) image."""
    fmt = (img.format or "").upper()
    info = FileInfo(fmt, img.size[0], img.size[1], int(file_size), img.mode)
    if fmt == "JPEG":
        q = getattr(img, "quantization", None) or {}
        info.jpeg_quality = estimate_jpeg_quality(q)
        means = [float(np.mean(q[k])) for k in sorted(q)][:2] if q else []
        info.qtable_means = tuple(means + [means[-1] if means else 0.0] * (2 - len(means)))
        try:
            from PIL import JpegImagePlugin
            info.subsampling = int(JpegImagePlugin.get_sampling(img))
        except Exception:
            info.subsampling = -1
    elif fmt == "WEBP":
        info.webp_lossless = b"VP8L" in data_head[:64]
    return info


# ---------------------------------------------------------------- blocks
def luma(px: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of RGB pixels, uint8 (Pillow's "L" conversion, in C)."""
    return np.asarray(Image.fromarray(px).convert("L"))


def block_entropy(y: np.ndarray) -> np.ndarray:
    """(H//8, W//8) sum of |adjacent luma differences| inside each whole 8x8 block of the
    uint8 luma plane ``y`` (pairs across a block edge belong to neither block)."""
    from ._jit import gradient_pass
    return gradient_pass(y, y.shape[0] // 8, y.shape[1] // 8)[0]


def select_blocks(entropy: np.ndarray, k: int = K_BLOCKS) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (in blocks) of the min(k, n) chosen blocks, best first.

    Every block gets one int64 key, (rank, index): rank orders by entropy, highest first,
    equal entropies by a fixed scramble of the position (flat areas spread over the image
    instead of filling the top rows first), and the index makes keys unique.  The cells are
    a product of row bands and column bands, so each cell's best block is a 2-D minimum
    (two ``minimum.reduceat``); the cell winners come first, by key, then the other blocks
    by key.  No full sort: about 4K winners are sorted, the rest only partitioned."""
    th, tw = entropy.shape
    n = th * tw
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cells = 4 * k
    gx = int(np.clip(round(np.sqrt(cells * tw / th)), 1, tw))
    gy = int(np.clip(round(cells / gx), 1, th))
    idx = np.arange(n, dtype=np.int64)
    e = np.minimum(entropy.reshape(-1), MAX_ENTROPY).astype(np.int64)
    scramble = ((idx * 2654435761) >> 8) & 0xFFFF
    rank = ((MAX_ENTROPY - e) << 16) | scramble                       # < 2**31
    key = rank * n + idx                                             # unique, < 2**63
    band_y = np.arange(th) * gy // th
    band_x = np.arange(tw) * gx // tw
    rows = np.flatnonzero(np.r_[True, band_y[1:] != band_y[:-1]])
    cols = np.flatnonzero(np.r_[True, band_x[1:] != band_x[:-1]])
    best = np.minimum.reduceat(np.minimum.reduceat(key.reshape(th, tw), rows, axis=0),
                               cols, axis=1).reshape(-1)
    best.sort()
    if best.size >= k:
        chosen = best[:k]
    else:
        rest = key.copy()
        rest[best % n] = np.iinfo(np.int64).max
        m = min(k, n) - best.size
        part = np.partition(rest, m - 1)[:m] if m < n else rest
        chosen = np.concatenate([best, np.sort(part)[:m]])
    return np.divmod(chosen % n, tw)


def colour_count(px: np.ndarray) -> int:
    """Distinct colours among at most 4096 pixels taken at a fixed stride."""
    flat = px.reshape(-1, 3)
    stride = max(1, flat.shape[0] // MAX_COLOUR_SAMPLES)
    s = flat[::stride].astype(np.uint32)
    return int(np.unique((s[:, 0] << 16) | (s[:, 1] << 8) | s[:, 2]).size)


def _block_colours(blocks: np.ndarray) -> np.ndarray:
    b = blocks.reshape(blocks.shape[0], 64, 3).astype(np.uint32)
    packed = np.sort((b[..., 0] << 16) | (b[..., 1] << 8) | b[..., 2], axis=1)
    return 1 + (np.diff(packed, axis=1) != 0).sum(1)


def image_meta(info: FileInfo, px: np.ndarray, n_blocks: int, k: int) -> np.ndarray:
    """Fixed-length, roughly unit-scaled metadata vector (see IMAGE_META_DIM)."""
    w, h = info.width, info.height
    m = np.zeros(IMAGE_META_DIM, np.float32)
    m[0], m[1] = np.log2(w) / 12, np.log2(h) / 12
    m[2] = np.log2(max(info.file_size, 1)) / 24
    m[3] = np.log2(info.file_size * 8 / (w * h) + 1e-3) / 5
    m[4 + (FORMATS.index(info.format) if info.format in FORMATS else 4)] = 1.0
    if info.format == "JPEG":
        m[9] = info.jpeg_quality / 100
        m[10] = np.log1p(info.qtable_means[0]) / 5
        m[11] = np.log1p(info.qtable_means[1]) / 5
        if 0 <= info.subsampling <= 2:
            m[12 + info.subsampling] = 1.0
    m[15] = float(info.webp_lossless)
    m[16] = float(info.mode in ("P", "L", "1", "LA", "PA"))
    nc = colour_count(px)
    m[17] = np.log2(nc) / 16
    m[18] = nc / min(px.shape[0] * px.shape[1], MAX_COLOUR_SAMPLES)
    m[19] = n_blocks / k
    return m


def extract_image(img: Image.Image, info: FileInfo, k: int = K_BLOCKS) -> Features:
    """Features of a decoded RGB PIL image with its file's info."""
    if img.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {img.mode}")
    return extract_pixels(np.asarray(img), info, k, np.asarray(img.convert("L")))


def extract_pixels(px: np.ndarray, info: FileInfo, k: int = K_BLOCKS,
                   y: np.ndarray | None = None) -> Features:
    """Features of decoded RGB pixels (H, W, 3) uint8 (and their luma, when known) with
    their file's info."""
    if px.ndim != 3 or px.shape[2] != 3 or px.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 pixels, got {px.shape} {px.dtype}")
    from ._jit import gradient_pass
    y = luma(px) if y is None else y
    ent, col, row, hist = gradient_pass(y, y.shape[0] // 8, y.shape[1] // 8)
    ys, xs = select_blocks(ent, k)
    n = ys.size
    pixels = np.zeros((k, 8, 8, 3), np.uint8)
    bmeta = np.zeros((k, BLOCK_META_DIM), np.float32)
    if n:
        pixels[:n] = grid_blocks(px, ys, xs)
        bmeta[:n, 0] = _block_colours(pixels[:n]) / 64
        bmeta[:n, 1] = np.log1p(ent[ys, xs]) / 10
    mask = np.zeros(k, bool)
    mask[:n] = True
    return Features(pixels, bmeta, image_meta(info, px, n, k), mask,
                    global_stats(px, y, col, row, hist))


def extract_bytes(data: bytes, k: int = K_BLOCKS) -> Features:
    """Decode an encoded image file and extract its features."""
    with Image.open(io.BytesIO(data)) as img:
        info = file_info(img, len(data), data[:64])
        rgb = img.convert("RGB")
    return extract_image(rgb, info, k)


# ---------------------------------------------------------------- DCT
@lru_cache(maxsize=1)
def dct_matrix() -> np.ndarray:
    """Orthonormal 8-point DCT-II matrix D (so coefficients = D @ block @ D.T)."""
    i = np.arange(8)
    d = np.cos(np.pi * (2 * i[None, :] + 1) * i[:, None] / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return d.astype(np.float32)


_YCC = np.array([[0.299, 0.587, 0.114],
                 [-0.168736, -0.331264, 0.5],
                 [0.5, -0.418688, -0.081312]], np.float32)


@lru_cache(maxsize=1)
def _dct2_matrix() -> np.ndarray:
    """kron(D, D): the 2-D DCT of a row-major 8x8 block as one 64x64 matrix."""
    d = dct_matrix().astype(np.float64)
    return np.kron(d, d).T.astype(np.float32)


def dct_blocks(pixels: np.ndarray) -> np.ndarray:
    """(..., 8, 8, 3) uint8 RGB -> (..., 3, 64) DCT of Y, Cb, Cr, each level-shifted by 128
    (one colour GEMM and one 64x64 GEMM over all blocks; run them under ``blas_one_thread``)."""
    lead = pixels.shape[:-3]
    f = _YCC @ pixels.reshape(-1, 3).T.astype(np.float32)           # (3, N*64)
    f[0] -= 128.0
    c = f.reshape(-1, 64) @ _dct2_matrix()                          # (3N, 64)
    return c.reshape(3, -1, 64).transpose(1, 0, 2).reshape(*lead, 3, 64)


def blas_one_thread():
    """Context manager: one BLAS thread while features are computed.  Their GEMMs are small
    (a few hundred blocks); OpenBLAS spreads them over every core and then waits for busy
    ones: with a training run on the other core, scoring ran at 32% of decode-only speed
    instead of 50% (tools/bench/bench_scorer.py).  Parallelism belongs across images."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(1, user_api="blas")


def grid_blocks(px: np.ndarray, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    """The 8x8 grid blocks at block rows ``by`` and columns ``bx`` of (H, W, C) pixels:
    (M, 8, 8, C), gathered through a strided view of the image (no full-image copy)."""
    th, tw = px.shape[0] // 8, px.shape[1] // 8
    v = px[: th * 8, : tw * 8].reshape(th, 8, tw, 8, px.shape[2])
    return v[by, :, bx]


# ---------------------------------------------------------------- whole-image statistics
@lru_cache(maxsize=1)
def _qfit_tables() -> np.ndarray:
    return _reference_tables()[[q - 1 for q in QFIT_QUALITIES]]


@lru_cache(maxsize=1)
def _qfit_inverse() -> np.ndarray:
    return (1.0 / _qfit_tables()).astype(np.float32)


@lru_cache(maxsize=1)
def _diagonal() -> np.ndarray:
    """(64, 15) averaging matrix: DCT coefficient (u, v) -> its anti-diagonal u + v."""
    u, v = np.divmod(np.arange(64), 8)
    m = np.zeros((64, 15), np.float32)
    m[np.arange(64), u + v] = 1.0
    return m / m.sum(0)


def _profile_stats(p: np.ndarray) -> np.ndarray:
    """8 + PROFILE_BANDS numbers from a gradient profile (column or row sums of |diff|):
    its mean per position modulo 8, as log ratios to the overall mean (a JPEG grid, also a
    shifted one left by a crop, peaks at one phase), and the log peak-to-median power of the
    profile's spectrum in equal frequency bands (resampling by a factor leaves periodic
    gradient strength: an upscale by 3/2 peaks at 1/3 cycle per pixel)."""
    out = np.zeros(8 + PROFILE_BANDS, np.float32)
    if p.size < 32:
        return out
    m = p.mean() + 1e-6
    phase = np.arange(p.size) % 8
    fold = np.bincount(phase, p, 8) / np.bincount(phase, minlength=8)
    out[:8] = np.log((fold + 1e-3 * m) / m)
    spec = np.abs(np.fft.rfft(p / m - 1.0)[1:]) ** 2 / p.size
    freq = np.arange(1, spec.size + 1) / p.size                  # cycles per pixel, <= 0.5
    band = np.minimum((freq * 2 * PROFILE_BANDS).astype(np.int64), PROFILE_BANDS - 1)
    peak = np.zeros(PROFILE_BANDS)
    np.maximum.at(peak, band, spec)
    out[8:] = np.log((peak + 1e-6) / (np.median(spec) + 1e-6)) / 4
    return out


def global_stats(px: np.ndarray, y: np.ndarray, col: np.ndarray, row: np.ndarray,
                 hist: np.ndarray, max_blocks: int = STATS_BLOCKS) -> np.ndarray:
    """Statistics of the whole picture, not just the K chosen blocks (GLOBAL_DIM floats):
    over up to ``max_blocks`` grid blocks spread evenly in raster order, the mean log
    magnitude of each luma DCT coefficient (64) and of the chroma ones by anti-diagonal
    (2 x 15) and the quantisation fit to the standard tables (24); the phase and spectrum
    statistics of the column and row gradient profiles (2 x 24); and of the luma histogram
    the share of empty levels inside its range, its comb strength (levels alternating
    full / sparse after a tone or gamma change) and the clipped shares at 0 and 255.
    ``col``, ``row``, ``hist``: the profiles and histogram of ``_jit.gradient_pass``; the
    quantisation fit is ``model.quantisation_fit`` averaged, computed by a numba kernel."""
    from ._jit import quantisation_fit_mean
    g = np.zeros(GLOBAL_DIM, np.float32)
    th, tw = y.shape[0] // 8, y.shape[1] // 8
    n = th * tw
    if n == 0:
        return g
    idx = np.unique(np.linspace(0, n - 1, min(n, max_blocks)).astype(np.int64))
    by, bx = np.divmod(idx, tw)
    c = dct_blocks(grid_blocks(px, by, bx))                        # (M, 3, 64)
    la = np.log1p(np.abs(c))
    g[:64] = la[:, 0].mean(0) / 4
    g[64:94] = (la[:, 1:].mean(0) @ _diagonal()).reshape(-1) / 4
    nq = 2 * len(QFIT_QUALITIES)
    g[94:94 + nq] = quantisation_fit_mean(np.ascontiguousarray(c[:, 0]), _qfit_inverse())
    o = 94 + nq
    g[o:o + 24] = _profile_stats(col.astype(np.float64))
    g[o + 24:o + 48] = _profile_stats(row.astype(np.float64))
    h = hist.astype(np.float64)
    nz = np.flatnonzero(h)
    lo, hi = nz[0], nz[-1]
    used = h[lo:hi + 1]
    g[o + 48] = float(np.mean(used == 0))
    if used.size >= 3:
        g[o + 49] = float(np.abs(used[1:-1] - (used[:-2] + used[2:]) / 2).mean()
                          / (used.mean() + 1e-6))
    g[o + 50] = h[0] / h.sum()
    g[o + 51] = h[255] / h.sum()
    return g
