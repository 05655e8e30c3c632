"""Matched-quality aggregation, BD-rate (checked against the independent ``bjontegaard``
package), bootstrap intervals and the reference tool's linear interpolation."""
import math
import warnings

import numpy as np
import pytest

from ops.compare.analysis import analyse, csv_tables, matched_bpp
from ops.compare.bdrate import bd_rate, bootstrap_interval, rd_frontier
from ops.image.interpolate import setting_for_target, value_at_setting


def rd_curve(scale: float, n: int = 6, slope: float = 14.0, seed: int = 0):
    """A plausible RD curve: quality rises with log rate, slightly noisy, strictly monotone."""
    rng = np.random.default_rng(seed)
    rate = np.geomspace(0.2, 3.0, n) * scale
    q = 40 + slope * np.log(rate / scale * 4) + rng.uniform(-0.3, 0.3, n)
    return rate, np.maximum.accumulate(q + np.arange(n) * 1e-3)


@pytest.mark.parametrize("method", ["cubic", "pchip"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bd_rate_agrees_with_the_bjontegaard_package(method, seed):
    bjontegaard = pytest.importorskip("bjontegaard")
    ra, qa = rd_curve(1.0, seed=seed)
    rt, qt = rd_curve(0.8 + 0.1 * seed, seed=seed + 10)
    ref = bjontegaard.bd_rate(ra, qa, rt, qt, method=method, min_overlap=0)
    assert bd_rate(ra, qa, rt, qt, method) == pytest.approx(ref, rel=1e-9, abs=1e-9)
    # a lower-is-better metric (Butteraugli-like): same curves, distance = 100 - quality
    ref_d = bjontegaard.bd_rate(ra, -(100 - qa), rt, -(100 - qt), method=method, min_overlap=0)
    got_d = bd_rate(ra, 100 - qa, rt, 100 - qt, method, higher_is_better=False)
    assert got_d == pytest.approx(ref_d, rel=1e-9, abs=1e-9)


def test_bd_rate_of_a_uniformly_cheaper_codec_is_its_saving():
    ra, qa = rd_curve(1.0)
    for method in ("cubic", "pchip"):
        assert bd_rate(ra, qa, ra * 0.7, qa, method) == pytest.approx(-30.0, abs=1e-6)
        assert bd_rate(ra, qa, ra, qa, method) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(ra[:3], qa[:3], ra[:3], qa[:3], "cubic") is None    # cubic needs 4 points
    assert bd_rate(ra, qa, ra * 50, qa + 200, "pchip") is None          # no overlap


def test_frontier_drops_costlier_worse_points():
    r, q = rd_frontier([1, 2, 3, 4, None], [10, 20, 15, 30, 40])
    assert list(r) == [1, 2, 4] and list(q) == [10, 20, 30]


def test_bootstrap_interval_is_reproducible_and_about_right():
    rng = np.random.default_rng(3)
    x = rng.normal(10.0, 2.0, 400)
    lo, hi = bootstrap_interval(x, n=2000, seed=1)
    assert bootstrap_interval(x, n=2000, seed=1) == (lo, hi)
    half = 1.96 * 2.0 / math.sqrt(400)                    # normal-theory half width
    assert lo < x.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_interval([1.0]) is None


def _variant(fmt, q, bpp, s2, w=100, h=100, **params):
    return {"format": fmt, "setting": {"name": "quality", "value": q}, "params": params,
            "bpp": bpp, "width": w, "height": h, "crop": None, "resolution": None,
            "metrics": {"ssimulacra2": s2, "butteraugli_p3": 10 - s2 / 10, "psnr": 20 + s2 / 4},
            "timings": {"encode_seconds": 0.01 * q / 100}}


def test_matched_quality_interpolates_each_image_before_aggregating():
    # image A is easy (SSIMULACRA2 = q), image B hard (= q - 20); bpp = q / 50 for both
    qs = [40, 50, 60, 70, 80, 90]
    a = [_variant("jpeg", q, q / 50, q) for q in qs]
    b = [_variant("jpeg", q, q / 50, q - 20) for q in qs]
    assert matched_bpp(a, 70, method="linear") == pytest.approx(70 / 50)
    assert matched_bpp(b, 70, method="linear") == pytest.approx(90 / 50)
    doc = analyse([{"source": "a.png", "variants": a}, {"source": "b.png", "variants": b}],
                  levels=[60, 70], method="linear", n_boot=200)
    row = next(r for r in doc["matched_quality"] if r["level"] == 70)
    assert row["n"] == 2 and row["mean"] == pytest.approx((1.4 + 1.8) / 2)
    # the per-image values travel with the row
    assert row["per_image"] == {"a.png": pytest.approx(1.4), "b.png": pytest.approx(1.8)}
    assert row["encode_ms_per_mpx"]["mean"] == pytest.approx(
        (1e9 * 0.01 * 0.70 / 1e4 + 1e9 * 0.01 * 0.90 / 1e4) / 2)
    # level 90 is out of range for B: counted, not silently averaged
    row90 = analyse([{"source": "b.png", "variants": b}], levels=[90])["matched_quality"][0]
    assert row90["out_of_range"] == 1 and row90["n"] == 0


def test_bd_rates_against_the_baseline_and_csv():
    qs = [30, 45, 60, 75, 90]
    imgs = []
    for k, hard in enumerate((0, 8, 15)):
        vs = [_variant("jpeg", q, q / 40, q - hard) for q in qs]
        vs += [_variant("avif", q, 0.75 * q / 40, q - hard, speed=6) for q in qs]
        imgs.append({"source": f"{k}.png", "variants": vs})
    doc = analyse(imgs, baseline="jpeg", n_boot=100)
    rows = [r for r in doc["bd_rate"] if r["metric"] == "ssimulacra2"]
    assert {r["curve"] for r in rows} == {"AVIF"} and {r["baseline"] for r in rows} == {"JPEG"}
    for r in rows:                                   # the same quality at 75 % of the bits
        assert r["n"] == 3 and r["mean"] == pytest.approx(-25.0, abs=1e-6)
    tables = csv_tables(doc)
    assert set(tables) == {"statistics.csv", "matched_quality.csv", "bd_rate.csv"}
    assert "AVIF,JPEG,ssimulacra2,cubic,3,0,3,-25" in tables["bd_rate.csv"]
    head = tables["statistics.csv"].splitlines()[0]
    assert head.endswith("mean,median,p05,p25,p75,p95,min,max")


def test_linear_interpolation_is_the_reference_tools():
    # straight line between the two bracketing points
    assert setting_for_target([10, 20, 40, 80], [1, 2, 3, 5], 4.0, "linear") == 60.0
    # the first bracketing pair wins on non-monotone data, endpoints included
    assert setting_for_target([10, 20, 30, 40], [40, 60, 55, 70], 57, "linear") == 18.5
    assert setting_for_target([10, 20, 30], [40, 60, 70], 60, "linear") == 20.0
    # a flat bracketing pair gives its midpoint; repeated settings are averaged
    assert setting_for_target([10, 20, 30], [50, 50, 70], 50, "linear") == 15.0
    assert setting_for_target([10, 10, 20], [40, 60, 70], 60, "linear") == 15.0
    assert setting_for_target([10, 20], [1, 2], 2.5, "linear") is None
    assert value_at_setting([10, 20, 40], [1, 2, 3], 30, "linear") == 2.5
    # PCHIP bends between points where linear does not
    assert setting_for_target([10, 20, 30, 80], [1, 4, 5, 6], 5.5, "linear") == 55.0
    assert setting_for_target([10, 20, 30, 80], [1, 4, 5, 6], 5.5, "pchip") != \
        pytest.approx(55.0, abs=0.5)
    with pytest.raises(ValueError, match="interpolation"):
        setting_for_target([1, 2], [1, 2], 1.5, "cubic")


def test_no_warnings_from_empty_groups():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = analyse([{"source": "x.png", "variants": [_variant("jpeg", 50, 1.0, 50)]}])
    assert doc["bd_rate"] == [] and doc["matched_quality"][0]["n"] in (0, 1)
