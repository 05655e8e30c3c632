"""Image selection by coefficient of variation and fragment selection on planted maps."""
import numpy as np
import pytest

from ops.compare.generate import image_curves
from ops.compare.select import anisotropic_map, best_window, select_image
from ops.compare.study import is_excluded


def _variant(fmt, q, bpp, s2):
    return {"format": fmt, "setting": {"name": "quality", "value": q}, "params": {"quality": q},
            "crop": None, "resolution": None, "bpp": bpp, "metrics": {"ssimulacra2": s2}}


def _image(name, bpp_scale):
    """JPEG and WebP reach the same SSIMULACRA2 at quality q; WebP needs ``bpp_scale`` times
    the bits of JPEG."""
    vs = []
    for q in (20, 40, 60, 80):
        s2 = 30 + 0.6 * q
        vs.append(_variant("jpeg", q, 0.02 * q, s2))
        vs.append(_variant("webp", q, 0.02 * q * bpp_scale, s2))
    return {"source": f"/data/{name}", "sha256": name, "width": 64, "height": 64,
            "variants": vs}


def test_cv_picks_the_image_with_largest_cross_format_spread():
    images = [_image("a.png", 1.2), _image("b.png", 3.0), _image("c.png", 0.9)]
    curves = lambda img: image_curves(img, "", "format", "ssimulacra2", "bits_per_pixel")  # noqa
    best, scores = select_image(images, curves, [50, 60, 70])
    assert best["source"].endswith("b.png")
    # the CV of (x, 3x) is 0.5 whatever x: exact, from the definition std / mean
    assert scores[1] == pytest.approx(0.5)
    assert scores[0] == pytest.approx(0.1 / 1.1)          # std(1, 1.2) / mean(1, 1.2)
    kept = [i for i in images if not is_excluded(i, ["b.png"])]
    best, _ = select_image(kept, curves, [50, 60, 70])
    assert best["source"].endswith("a.png")


def test_targets_out_of_range_do_not_count():
    images = [_image("a.png", 2.0)]
    curves = lambda img: image_curves(img, "", "format", "ssimulacra2", "bits_per_pixel")  # noqa
    best, scores = select_image(images, curves, [99])     # no format reaches 99
    assert best is None and scores == [None]


def test_anisotropic_map_finds_planted_disagreement():
    rng = np.random.default_rng(0)
    h, w = 90, 120
    maps_per_target = []
    for t in range(3):
        ms = []
        for k in range(4):
            m = rng.uniform(0.5, 0.7, (h, w))
            m[5:35, 10:40] = 9.0                     # high but equal in every variant: no spread
            m[50:74, 70:94] = 1.0 + 2.5 * k           # variants disagree strongly here
            ms.append(m)
        maps_per_target.append(ms)
    aniso = anisotropic_map(maps_per_target)
    assert aniso.shape == (h, w)
    assert best_window(aniso, 24, 24) == (70, 50, 24, 24)


def test_best_window_matches_brute_force_and_clips():
    rng = np.random.default_rng(1)
    m = rng.random((23, 31))
    x, y, w, h = best_window(m, 7, 5)
    sums = np.array([[m[j:j + 5, i:i + 7].sum() for i in range(31 - 6)] for j in range(23 - 4)])
    jj, ii = np.unravel_index(np.argmax(sums), sums.shape)
    assert (x, y, w, h) == (ii, jj, 7, 5)
    assert best_window(m, 100, 100) == (0, 0, 31, 23)
