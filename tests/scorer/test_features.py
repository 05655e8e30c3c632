"""Scorer features: deterministic, K blocks at any resolution, DCT and JPEG quality right."""
import io

import numpy as np
import pytest
from PIL import Image
from scipy.fft import dctn

from ops.scorer import features as F
from ops.scorer_training import transforms as T
from tests.scorer.synth import photo_like


@pytest.fixture(scope="module")
def photo():
    return photo_like(480, 640, seed=11)


def test_extract_is_deterministic(photo):
    data = T.to_jpeg(photo, 70).data
    a, b = F.extract_bytes(data), F.extract_bytes(data)
    for name in ("pixels", "block_meta", "image_meta", "mask"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_same_image_at_two_resolutions_gives_k_blocks(photo):
    big = F.extract_bytes(T.to_png(photo).data)
    small_px = T.resize(photo, (160, 120), "area")           # 300 whole blocks
    small = F.extract_bytes(T.to_png(small_px).data)
    assert big.count == small.count == F.K_BLOCKS
    assert big.pixels.shape == small.pixels.shape == (F.K_BLOCKS, 8, 8, 3)


def test_small_images_get_a_presence_mask():
    px = photo_like(20, 28, seed=2)                            # 2 x 3 whole blocks
    f = F.extract_bytes(T.to_png(px).data)
    assert f.count == 6 and f.mask[:6].all() and not f.mask[6:].any()
    assert not f.pixels[6:].any()
    tiny = F.extract_bytes(T.to_png(photo_like(16, 16, 3)[:5, :7]).data)
    assert tiny.count == 0 and tiny.image_meta.shape == (F.IMAGE_META_DIM,)


def test_blocks_are_spread_over_the_image():
    ent = np.ones((60, 80), np.int64)
    ent[:10, :10] = 50                                         # a busy corner
    ys, xs = F.select_blocks(ent, 64)
    assert len(set(zip(ys.tolist(), xs.tolist()))) == 64
    assert ys.max() - ys.min() > 40 and xs.max() - xs.min() > 60
    assert (ent[ys, xs] == 50).sum() < 10                      # one per cell, not all corner


def test_blocks_come_from_the_jpeg_grid_and_highest_entropy_first(photo):
    f = F.extract_bytes(T.to_png(photo).data)
    ent = F.block_entropy(F.luma(photo))
    ys, xs = F.select_blocks(ent)
    first = photo[ys[0] * 8:ys[0] * 8 + 8, xs[0] * 8:xs[0] * 8 + 8]
    assert np.array_equal(f.pixels[0], first)
    y = F.luma(photo).astype(int)[:8, :8]
    manual = np.abs(np.diff(y, axis=0)).sum() + np.abs(np.diff(y, axis=1)).sum()
    assert ent[0, 0] == manual


def test_dct_matches_scipy_orthonormal(photo):
    block = photo[:8, :8]
    got = F.dct_blocks(block[None])[0]
    ycc = np.asarray(Image.fromarray(block).convert("YCbCr"), np.float64)
    ref_y = dctn(block.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) - 128, norm="ortho")
    assert np.allclose(got[0], ref_y.reshape(64), atol=1e-3)
    ref_cb = dctn(ycc[..., 1] - 128, norm="ortho")
    assert np.allclose(got[1], ref_cb.reshape(64), atol=8 * 0.6)   # Pillow rounds Cb to ints


def _ijg_table(q):
    base = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
                     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
                     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
    s = 5000 / q if q < 50 else 200 - 2 * q
    return np.clip((base * s + 50) // 100, 1, 255)


@pytest.mark.parametrize("q", [8, 23, 50, 77, 95])
def test_jpeg_quality_estimate(q, photo):
    data = T.to_jpeg(photo[:64, :64], q).data
    with Image.open(io.BytesIO(data)) as im:
        assert F.estimate_jpeg_quality(im.quantization) == q
    # a table computed here from the IJG formula (natural order, as Pillow reports tables)
    assert F.estimate_jpeg_quality({0: list(_ijg_table(q))}) == q


def test_bad_pixels_raise():
    with pytest.raises(ValueError, match="uint8"):
        F.extract_pixels(np.zeros((16, 16)), F.FileInfo("PNG", 16, 16, 10))
    with pytest.raises(Exception):
        F.extract_bytes(b"not an image")


# ---------------------------------------------------------------- whole-image statistics
_O = 94 + 2 * len(F.QFIT_QUALITIES)          # start of the column-profile statistics


def test_global_stats_are_deterministic_and_bounded(photo):
    data = T.to_jpeg(photo, 70).data
    a, b = F.extract_bytes(data), F.extract_bytes(data)
    assert a.global_stats.shape == (F.GLOBAL_DIM,) and a.global_stats.dtype == np.float32
    assert np.array_equal(a.global_stats, b.global_stats)
    assert np.all(np.isfinite(a.global_stats))
    tiny = F.extract_bytes(T.to_png(photo[:5, :7]).data)       # no whole block
    assert tiny.global_stats.shape == (F.GLOBAL_DIM,) and not tiny.global_stats.any()


def test_column_profile_shows_the_jpeg_grid_and_a_crop_shifts_it(photo):
    png = F.extract_bytes(T.to_png(photo).data).global_stats[_O:_O + 8]
    jpg = F.extract_bytes(T.to_jpeg(photo, 40).data).global_stats[_O:_O + 8]
    assert abs(png).max() < 0.05                                # no grid in a clean picture
    assert np.argmax(jpg) == 7 and jpg[7] > 0.1                 # block edge between x=7, 8
    # crop 3 columns off the left of the JPEG: its old grid now sits 3 columns earlier
    shifted = T.crop(T.to_jpeg(photo, 40).pixels, (3, 0, photo.shape[1], photo.shape[0]))
    g = F.extract_bytes(T.to_png(shifted).data).global_stats[_O:_O + 8]
    assert np.argmax(g) == 4


def test_profile_spectrum_peaks_where_an_upscale_repeats():
    px = photo_like(300, 400, seed=5)
    up = T.resize(px, (600, 450), "bicubic")                   # 3/2: period of 3 pixels
    band = int(1 / 3 * 2 * F.PROFILE_BANDS)
    sl = slice(_O + 8, _O + 8 + F.PROFILE_BANDS)
    clean = F.extract_bytes(T.to_png(px).data).global_stats[sl]
    resampled = F.extract_bytes(T.to_png(up).data).global_stats[sl]
    assert resampled[band] > clean[band] + 0.3
    assert np.argmax(resampled[2:]) + 2 == band               # past the low-frequency bands


@pytest.mark.parametrize("q", [30, 50, 85])
def test_numba_quantisation_fit_is_the_network_one_averaged(photo, q):
    import torch
    from ops.scorer._jit import quantisation_fit_mean
    from ops.scorer.model import quantisation_fit
    px = T.to_jpeg(photo, q).pixels
    c = np.ascontiguousarray(F.dct_blocks(F.extract_bytes(T.to_png(px).data).pixels)[:, 0])
    tables = F._qfit_tables()
    want = quantisation_fit(torch.from_numpy(c), torch.from_numpy(tables)).numpy().mean(0)
    assert np.allclose(quantisation_fit_mean(c, F._qfit_inverse()), want, atol=1e-5)


def test_grid_blocks_are_the_blocks_of_the_image(photo):
    ys, xs = np.array([0, 3, 59]), np.array([0, 79, 5])
    got = F.grid_blocks(photo, ys, xs)
    for i, (y, x) in enumerate(zip(ys, xs)):
        assert np.array_equal(got[i], photo[8 * y:8 * y + 8, 8 * x:8 * x + 8])


def _select_reference(entropy, k):
    """select_blocks spelled out: cells, each cell's best block first, then the rest."""
    th, tw = entropy.shape
    cells = 4 * k
    gx = int(np.clip(round(np.sqrt(cells * tw / th)), 1, tw))
    gy = int(np.clip(round(cells / gx), 1, th))
    ranked = {}
    for y in range(th):
        for x in range(tw):
            i = y * tw + x
            e = min(int(entropy[y, x]), F.MAX_ENTROPY)
            scramble = ((i * 2654435761) >> 8) & 0xFFFF
            ranked[(y, x)] = (-e, scramble, i)
    best = {}
    for (y, x), r in ranked.items():
        c = (y * gy // th, x * gx // tw)
        if c not in best or r < ranked[best[c]]:
            best[c] = (y, x)
    winners = sorted(best.values(), key=ranked.get)
    rest = sorted((b for b in ranked if b not in set(winners)), key=ranked.get)
    chosen = (winners + rest)[:k]
    return np.array([b[0] for b in chosen]), np.array([b[1] for b in chosen])


@pytest.mark.parametrize("seed", range(6))
def test_select_blocks_matches_the_plain_definition(seed):
    rng = np.random.default_rng(seed)
    th, tw = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    ent = [rng.integers(0, 40000, (th, tw)),                  # above MAX_ENTROPY too
           rng.integers(0, 3, (th, tw)) * 100][seed % 2]      # many ties
    for k in (1, 5, 16, 64):
        ys, xs = F.select_blocks(ent, k)
        want_y, want_x = _select_reference(ent, k)
        assert np.array_equal(ys, want_y) and np.array_equal(xs, want_x), (th, tw, k)


def _gradients_reference(y):
    """Block entropies, column and row profiles of |luma differences|, spelled out."""
    th, tw = y.shape[0] // 8, y.shape[1] // 8
    if th == 0 or tw == 0:                       # no whole block: no profiles either
        return np.zeros((th, tw)), np.zeros(0), np.zeros(0)
    a = y[: 8 * th, : 8 * tw].astype(np.int32)
    dx, dy = np.abs(np.diff(a, axis=1)), np.abs(np.diff(a, axis=0))
    ent = np.zeros((th, tw), np.int64)
    for i in range(th):
        for j in range(tw):
            b = a[8 * i:8 * i + 8, 8 * j:8 * j + 8]
            ent[i, j] = np.abs(np.diff(b, axis=1)).sum() + np.abs(np.diff(b, axis=0)).sum()
    return ent, dx.sum(0), dy.sum(1)


@pytest.mark.parametrize("shape", [(480, 640), (61, 93), (7, 40), (8, 8)])
def test_numba_gradient_pass_equals_the_plain_definition(shape):
    from ops.scorer._jit import gradient_pass
    y = F.luma(photo_like(*shape, seed=sum(shape)))
    ent, col, row, hist = gradient_pass(y, y.shape[0] // 8, y.shape[1] // 8)
    want = _gradients_reference(y)
    assert np.array_equal(ent, want[0]) and np.array_equal(F.block_entropy(y), want[0])
    assert np.array_equal(col, want[1]) and np.array_equal(row, want[2])
    assert np.array_equal(hist, np.bincount(y[::2, ::2].reshape(-1), minlength=256))


def test_global_stats_carry_the_kernel_quantisation_fit(photo):
    from ops.scorer._jit import quantisation_fit_mean
    px = T.to_jpeg(photo, 40).pixels
    g = F.extract_bytes(T.to_png(px).data).global_stats
    th, tw = px.shape[0] // 8, px.shape[1] // 8
    idx = np.unique(np.linspace(0, th * tw - 1, min(th * tw, F.STATS_BLOCKS)).astype(np.int64))
    c = F.dct_blocks(F.grid_blocks(px, *np.divmod(idx, tw)))[:, 0]
    want = quantisation_fit_mean(np.ascontiguousarray(c), F._qfit_inverse())
    assert np.array_equal(g[94:94 + 2 * len(F.QFIT_QUALITIES)], want)
