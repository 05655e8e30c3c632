"""Pair generator: ordered by construction, lossless re-saves are ties, seeded."""
import numpy as np
import pytest

from ops.scorer_training import chains as C
from ops.scorer_training import transforms as T
from tests.scorer.synth import photo_like


@pytest.fixture(scope="module")
def photo():
    return photo_like(200, 260, seed=5)


def test_png_of_a_jpeg_is_a_tie_not_an_edit(photo):
    jpg = T.to_jpeg(photo, 60)
    png = T.to_png(jpg.pixels)
    webp_ll = T.to_webp(jpg.pixels, 80, lossless=True)
    copies = [T.to_png(photo), jpg, png, webp_ll]
    pairs = {(p.closer, p.further): p for p in C.chain_pairs(copies, ["jpeg", "lossless",
                                                                       "lossless"])}
    assert not pairs[(0, 1)].tie and pairs[(0, 1)].family == "jpeg"
    assert pairs[(1, 2)].tie and pairs[(1, 3)].tie and pairs[(2, 3)].tie
    assert not pairs[(0, 2)].tie and pairs[(0, 2)].family == "multi_generation"
    assert len(png.data) > len(jpg.data)          # bigger file, same pixels


def test_every_family_runs_and_changes_or_keeps_pixels(photo):
    rng = np.random.default_rng(0)
    src = T.to_jpeg(photo, 85)
    for fam in C.FAMILY_WEIGHTS:
        out = C.step(src, fam, rng, platform_scale=0.1)
        assert out.pixels.dtype == np.uint8 and out.pixels.ndim == 3
        if fam == "lossless":
            assert T.same_pixels(src, out)
        elif fam in ("jpeg", "webp", "gif", "quantize", "resave_hq", "platform"):
            assert not T.same_pixels(src, out), fam
    with pytest.raises(ValueError, match="unknown transform family"):
        C.step(src, "sepia", rng)


def test_platform_resizes_to_long_side_and_uses_420(photo):
    rng = np.random.default_rng(1)
    out = C.step(T.to_png(photo), "platform", rng, platform_scale=0.1)   # sides 108..205
    assert max(out.size) <= 205 and out.format == "JPEG"
    from PIL import Image, JpegImagePlugin
    import io
    with Image.open(io.BytesIO(out.data)) as im:
        assert JpegImagePlugin.get_sampling(im) == 2


def test_chains_are_seeded(photo):
    a = C.make_chain(photo, np.random.default_rng([7, 3]))
    b = C.make_chain(photo, np.random.default_rng([7, 3]))
    assert a[1] == b[1] and [c.data for c in a[0]] == [c.data for c in b[0]]


def test_resize_filters(photo):
    for m in T.RESIZE_FILTERS:
        out = T.resize(photo, (97, 75), m)
        assert out.shape == (75, 97, 3), m
    lin = T.resize(photo, (97, 75), "bicubic", linear_light=True)
    gam = T.resize(photo, (97, 75), "bicubic", gamma=2.2)
    plain = T.resize(photo, (97, 75), "bicubic")
    assert not np.array_equal(lin, plain) and not np.array_equal(gam, plain)
    # point sampling with offset 0 picks floor(i * scale) rows/columns
    pt = T.resize(photo, (130, 100), "nearest_offset")
    assert np.array_equal(pt, photo[::2, ::2])
    with pytest.raises(ValueError):
        T.resize(photo, (0, 5))


def test_generation_chain_rotates_and_reencodes(photo):
    cs, cycle = C.generation_chain(photo, 4)
    assert cycle is None
    assert [c.format for c in cs] == ["PNG"] + ["JPEG"] * 4
    assert cs[1].size == (200, 260) and cs[4].size == (260, 200)


def test_optimised_jpeg_of_noise_at_high_quality_encodes():
    # Pillow's default one-shot buffer (1 byte/pixel) is too small for this picture
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    for q in (90, 94, 100):
        out = T.to_jpeg(noise, q, "4:4:4", optimize=True, progressive=q == 100)
        assert out.format == "JPEG" and out.size == (400, 300)


def test_generations_family_keeps_log_spaced_checkpoints(photo):
    src = T.to_png(photo)
    for seed in range(4):
        out = C.generations(src, np.random.default_rng([11, seed]))
        assert 1 <= len(out) <= C.GENERATION_CHECKPOINTS
        assert all(c.format == "JPEG" for c in out)
        assert len({c.data for c in out}) == len(out)      # distinct rounds, not repeats
    # in a chain, every checkpoint is a copy of its own, labelled "generations"
    rng = np.random.default_rng(0)
    for i in range(200):
        copies, fams = C.make_chain(photo, np.random.default_rng([3, i]))
        if fams.count("generations") > 1:
            break
    else:
        pytest.fail("no chain with a multi-checkpoint generations step in 200 seeds")
    assert len(copies) == len(fams) + 1


def test_generations_stop_at_the_jpeg_fixed_point(photo):
    # 192 x 192: sides on the 16 pixel grid, so rotate + JPEG settles on a fixed point
    px = np.ascontiguousarray(photo[:192, :192])
    rng = np.random.default_rng(0)
    out = C.generations(T.to_png(px), rng, n=200, quality=75, subsampling="4:2:0")
    assert len(out) < C.GENERATION_CHECKPOINTS           # checkpoints 34 and 200 never come
    cur = out[-1]
    for _ in range(4):                                   # a fixed point: 4 more rounds = same
        cur = T.to_jpeg(T.rotate90(cur.pixels), 75, "4:2:0")
    assert T.same_pixels(cur, out[-1])
    # off the grid the picture keeps changing, and every checkpoint is kept
    odd = np.ascontiguousarray(photo[:197, :197])
    out = C.generations(T.to_png(odd), rng, n=40, quality=75, subsampling="4:2:0")
    assert len(out) == C.GENERATION_CHECKPOINTS


def test_jpeg_rounds_end_where_any_cycle_starts():
    # this 64 x 64 picture enters a cycle of 8 rounds at q90: round 25 = round 17
    px = np.ascontiguousarray(photo_like(80, 80, seed=2)[:64, :64])
    rounds, cycle = C.jpeg_rounds(T.to_png(px), 200, 90, "4:2:0")
    assert cycle == (25, 8) and len(rounds) == 17
    assert len({C.pixel_key(c.pixels) for c in rounds}) == 17      # no repeats kept
    cur, later = rounds[-1], []
    for _ in range(8):                       # the last copy opens the cycle ...
        cur = T.to_jpeg(T.rotate90(cur.pixels), 90, "4:2:0")
        later.append(C.pixel_key(cur.pixels))
    assert later[-1] == C.pixel_key(rounds[-1].pixels)
    assert len(set(later)) == 8              # ... and its period is 8, not a divisor of it
    cur = rounds[-2]                         # the round before it is not on the cycle
    for _ in range(8):
        cur = T.to_jpeg(T.rotate90(cur.pixels), 90, "4:2:0")
    assert not T.same_pixels(cur, rounds[-2])
    # a source that already sits on its cycle adds nothing
    again, cyc = C.jpeg_rounds(rounds[-1], 200, 90, "4:2:0")
    assert again == [] and cyc == (8, 8)
    assert C.generations(rounds[-1], np.random.default_rng(0), n=50, quality=90,
                         subsampling="4:2:0") == []
    # same bytes in another shape are not a repeat
    assert C.pixel_key(np.zeros((2, 6, 3), np.uint8)) != C.pixel_key(np.zeros((6, 2, 3),
                                                                              np.uint8))


def test_reference_mse_measures_damage_through_turns_not_across_resizes(photo):
    jpg = T.to_jpeg(photo, 30)
    direct = float(np.mean((jpg.pixels.astype(np.float64) - photo) ** 2))
    assert C.reference_mse(photo, photo) == 0.0
    assert C.reference_mse(photo, jpg.pixels) == pytest.approx(direct, rel=1e-5) and direct > 1
    for r in (1, 2, 3):        # a "generations" copy is measured turned back
        assert C.reference_mse(photo, np.rot90(jpg.pixels, r)) == pytest.approx(direct, rel=1e-5)
    assert np.isnan(C.reference_mse(photo, T.resize(photo, (130, 100), "bicubic")))
    assert np.isnan(C.reference_mse(photo, photo[1:-1, 1:-1]))
    # a square picture: the best fitting turn, not a wrong one
    sq = np.ascontiguousarray(photo[:192, :192])
    assert C.reference_mse(sq, np.rot90(sq, 1)) == 0.0


def test_chain_original_keeps_its_pristine_pixels(photo):
    for i in range(12):
        o = C.make_original(photo, np.random.default_rng([9, i]))
        assert o.pristine is not None and o.pristine.shape == o.pixels.shape
        if o.format == "PNG":
            assert np.array_equal(o.pristine, o.pixels)
        else:                  # a camera JPEG original already carries some damage
            assert 0 < C.reference_mse(o.pristine, o.pixels) < 20


def _level_gaps(px: np.ndarray) -> int:
    """Empty levels of each colour channel between its 2nd and 98th percentile (a
    histogram comb), summed over the channels."""
    gaps = 0
    for c in range(3):
        v = px[..., c].ravel().astype(int)
        lo, hi = (int(t) for t in np.percentile(v, [2, 98]))
        gaps += int(np.sum(np.bincount(v, minlength=256)[lo:hi + 1] == 0))
    return gaps


def test_tone_reduce_recolours_and_reduces_without_a_histogram_comb():
    photo = photo_like(300, 390, seed=11)
    box = photo[:300, :390].reshape(150, 2, 195, 2, 3).mean(axis=(1, 3))
    # the naive way, a contrast curve on 8-bit pixels, leaves empty levels the check sees
    naive = np.clip(np.rint((np.rint(box) - 128) * 1.3 + 128), 0, 255).astype(np.uint8)
    assert _level_gaps(naive) > 5
    for s in range(6):
        out = C.tone_reduce(photo, np.random.default_rng(s), 2)
        assert out.shape == (150, 195, 3) and out.dtype == np.uint8
        assert np.array_equal(out, C.tone_reduce(photo, np.random.default_rng(s), 2))
        assert _level_gaps(out) == 0
        assert np.abs(out.astype(np.float64) - box).mean() > 1.0      # recoloured
    assert C.tone_reduce(photo, np.random.default_rng(0), 3).shape == (100, 130, 3)
    with pytest.raises(ValueError, match=">= 2"):
        C.tone_reduce(photo, np.random.default_rng(0), 1)


def _is_crop_of(px: np.ndarray, variants: list[np.ndarray]) -> bool:
    h, w = px.shape[:2]
    for v in variants:
        ys, xs = np.nonzero(np.all(v == px[0, 0], axis=-1))
        for y, x in zip(ys, xs):
            if y + h <= v.shape[0] and x + w <= v.shape[1] and np.array_equal(
                    v[y:y + h, x:x + w], px):
                return True
    return False


def test_augmented_originals_are_recoloured_in_about_half_the_chains():
    from PIL import Image
    photo = photo_like(400, 520, seed=12)
    variants = []
    for r in range(4):
        for f in (False, True):
            v = np.rot90(photo, r)
            v = np.ascontiguousarray(v[:, ::-1] if f else v)
            variants += [v, np.asarray(Image.fromarray(v).reduce(2))]
    plain = [C.make_original(photo, np.random.default_rng([4, i])) for i in range(40)]
    assert all(_is_crop_of(o.pristine, variants) for o in plain)
    aug = [C.make_original(photo, np.random.default_rng([4, i]), augment=True)
           for i in range(40)]
    new = [o for o in aug if not _is_crop_of(o.pristine, variants)]
    assert 10 <= len(new) <= 30
    for o in new:             # reduced by 2 (a 400-px side cannot be reduced by 3 and
        assert max(o.pristine.shape[:2]) <= 260     # still give a 160-px crop)
        assert o.pristine.shape == o.pixels.shape
