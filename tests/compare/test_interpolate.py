"""Setting interpolation: pure curves, and a real re-encode at the interpolated setting."""
import json

import numpy as np
import pytest

from ops.compare.reencode import encode_setting, reach_target
from ops.image.interpolate import setting_for_target, value_at_setting
from ops.image.io import load_image
from ops.image.metrics import measure


def test_increasing_and_decreasing_curves():
    q = [10, 20, 40, 80]
    up = [1.0, 2.0, 3.0, 5.0]                       # e.g. bpp: rises with quality
    assert setting_for_target(q, up, 2.0) == pytest.approx(20.0)
    s = setting_for_target(q, up, 4.0)
    assert 40 < s < 80
    assert value_at_setting(q, up, s) == pytest.approx(4.0, abs=1e-6)
    down = [9.0, 6.0, 3.0, 1.0]                     # e.g. Butteraugli: falls with quality
    s = setting_for_target(q, down, 4.5)
    assert 20 < s < 40
    assert value_at_setting(q, down, s) == pytest.approx(4.5, abs=1e-6)


def test_no_extrapolation_and_too_few_points():
    assert setting_for_target([10, 20, 30], [1, 2, 3], 3.5) is None
    assert setting_for_target([10, 20, 30], [1, 2, 3], 0.5) is None
    assert setting_for_target([10], [1], 1) is None
    assert value_at_setting([10, 20, 30], [1, 2, 3], 35) is None


def test_linear_with_two_points_and_lowest_setting_on_non_monotone_data():
    assert setting_for_target([0, 10], [0, 100], 25) == pytest.approx(2.5)
    # 50 is reached twice (between 10 and 20, again between 30 and 40): cheapest wins
    s = setting_for_target([10, 20, 30, 40], [40, 60, 55, 70], 50)
    assert 10 < s < 20


def test_unsorted_points_duplicates_and_missing_values():
    s = setting_for_target([40, 10, 20, 20, 30], [4, 1, 1.8, 2.2, None], 3)
    assert 20 < s < 40
    assert value_at_setting([40, 10, 20, 20], [4, 1, 1.8, 2.2], 20) == pytest.approx(2.0)


# Stated tolerances of the re-encode at the interpolated setting on this coarse sweep (quality
# steps of 15-20); refinement (the default, refine=2) must do much better.
TOLERANCE = {("jpeg", "psnr"): (0.4, 0.15),          # dB: plain interpolation, refined
             ("webp", "bits_per_pixel"): (0.10, 0.03)}  # relative


def _curve(doc, name, fmt, key):
    img = next(i for i in doc["images"] if i["source"].endswith(name))
    vs = [v for v in img["variants"] if v["format"] == fmt]
    vals = [v["bpp"] if key == "bits_per_pixel" else v["metrics"][key] for v in vs]
    return img, vs, [v["setting"]["value"] for v in vs], vals


@pytest.mark.parametrize("fmt,metric", sorted(TOLERANCE))
def test_reencode_at_interpolated_setting_meets_target(format_study, fmt, metric):
    qpath, _, _ = format_study
    doc = json.load(open(qpath))
    img, vs, settings, vals = _curve(doc, "calm.png", fmt, metric)
    pixels = np.asarray(load_image(img["source"], "RGB"))
    order = np.argsort(settings)
    for refine, tol in zip((0, 2), TOLERANCE[(fmt, metric)]):
        for a, b in zip(order[:-1], order[1:]):     # a target between each pair of points
            target = (vals[a] + vals[b]) / 2
            got = reach_target(pixels, fmt, vs[0]["params"], "quality", settings, vals, metric,
                               target, refine=refine)
            assert got is not None
            lo, hi = sorted((settings[a], settings[b]))
            assert lo <= got.interpolated <= hi
            m = measure(pixels, got.encoded.decoded, got.encoded.data, ["psnr"])
            err = abs(m["bpp"] - target) / target if metric == "bits_per_pixel" \
                else abs(m["psnr"] - target)
            assert err <= tol, (refine, target, got.tries, err)
    assert reach_target(pixels, fmt, vs[0]["params"], "quality", settings, vals, metric,
                        max(vals) * 1.5) is None


def test_encode_setting_rounds_integer_settings():
    assert encode_setting("jpeg", "quality", 71.6) == 72
    assert encode_setting("webp", "quality", 71.64) == 71.6
    assert encode_setting("avif", "quality", 140) == 100
