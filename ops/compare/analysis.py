"""Per-image matched-quality aggregation, setting statistics and BD-rates of a study.

A *curve* is one format with one set of fixed encoder parameters, crop and resolution, swept
over its quality setting (e.g. "AVIF speed=4").  For every image and curve, the bits per pixel
at each quality level (SSIMULACRA2 50 ... 90) are interpolated on that image's own sweep, and
only then aggregated over images (mean, median, p05-p95, bootstrap interval), as codec
comparisons people trust do; averaging bpp and metric at equal encoder settings (what the old
plots did) mixes images whose quality at one setting differs widely.
"""
from __future__ import annotations

import csv
import io
import math
from typing import Optional

from .bdrate import BD_METHODS, bd_rate, summary
from ops.image.interpolate import setting_for_target, value_at_setting
from .study import FORMAT_LABELS, FORMAT_ORDER, crop_name, resolution_name

DEFAULT_LEVELS = (50, 60, 70, 80, 90)
MATCH_METRIC = "ssimulacra2"
# BD-rate metrics: quality.json key -> (label, higher is better)
BD_METRICS = {"ssimulacra2": ("SSIMULACRA2", True),
              "butteraugli_p3": ("Butteraugli 3-norm", False),
              "psnr": ("PSNR", True)}
STAT_KEYS = ("bpp", "ssimulacra2", "butteraugli_p3", "butteraugli_max", "psnr", "ssim",
             "encode_seconds", "decode_seconds")


def _finite(x) -> Optional[float]:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) \
        and math.isfinite(x) else None


def value(variant: dict, key: str) -> Optional[float]:
    if key == "bpp":
        return _finite(variant.get("bpp"))
    if key in ("encode_seconds", "decode_seconds"):
        return _finite((variant.get("timings") or {}).get(key))
    return _finite((variant.get("metrics") or {}).get(key))


def _varying_params(images: list) -> dict:
    """{format: [params with more than one value in the study, besides the swept setting]}."""
    seen: dict = {}
    for img in images:
        for v in img["variants"]:
            name = v["setting"]["name"]
            for k, val in (v.get("params") or {}).items():
                if k != name:
                    seen.setdefault((v["format"], k), set()).add(repr(val))
    out: dict = {}
    for (fmt, k), vals in seen.items():
        if len(vals) > 1:
            out.setdefault(fmt, []).append(k)
    return {f: sorted(ks) for f, ks in out.items()}


def curve_of(variant: dict, varying: dict) -> tuple[str, str, tuple]:
    """(label, format, sort key) of the curve a variant belongs to."""
    fmt = variant["format"]
    params = variant.get("params") or {}
    parts = [FORMAT_LABELS.get(fmt, fmt.upper())]
    parts += [f"{k}={params.get(k)}" for k in varying.get(fmt, [])]
    level = [n for n in (crop_name(variant.get("crop")),
                         resolution_name(variant.get("resolution"))) if n]
    rank = FORMAT_ORDER.index(fmt) if fmt in FORMAT_ORDER else len(FORMAT_ORDER)
    label = " ".join(parts + level)
    return label, fmt, (rank, tuple(str(params.get(k)) for k in varying.get(fmt, [])),
                        tuple(level))


def curves(images: list) -> dict:
    """{label: {"format", "order", "images": {image: [variants with a numeric setting]}}}."""
    varying = _varying_params(images)
    out: dict = {}
    for img in images:
        for v in img["variants"]:
            s = v["setting"]["value"]
            if isinstance(s, bool) or not isinstance(s, (int, float)):
                continue
            label, fmt, order = curve_of(v, varying)
            c = out.setdefault(label, {"format": fmt, "order": order,
                                       "level": order[2], "images": {}})
            c["images"].setdefault(img["source"], []).append(v)
    return dict(sorted(out.items(), key=lambda kv: kv[1]["order"]))


def matched_bpp(variants: list, level: float, metric: str = MATCH_METRIC,
                method: str = "pchip") -> Optional[float]:
    """One image's bits per pixel at ``metric`` = ``level``, interpolated on its sweep (the
    setting reaching the level, then bpp at that setting); None outside the measured range."""
    return matched(variants, level, metric, method)[0]


def matched(variants: list, level: float, metric: str = MATCH_METRIC, method: str = "pchip"
            ) -> tuple[Optional[float], Optional[float]]:
    """(bpp, encode milliseconds per megapixel) of one image at ``metric`` = ``level``."""
    settings = [v["setting"]["value"] for v in variants]
    s = setting_for_target(settings, [value(v, metric) for v in variants], level, method)
    if s is None:
        return None, None
    bpp = value_at_setting(settings, [value(v, "bpp") for v in variants], s, method)
    ms = [value(v, "encode_seconds") for v in variants]
    ms = [None if t is None else 1e9 * t / (v["width"] * v["height"])
          for t, v in zip(ms, variants)]
    return bpp, value_at_setting(settings, ms, s, "linear")


def matched_quality(cs: dict, levels, metric: str = MATCH_METRIC, method: str = "pchip",
                    n_boot: int = 1000) -> list[dict]:
    rows = []
    for label, c in cs.items():
        for lv in levels:
            both = {img: matched(vs, lv, metric, method) for img, vs in c["images"].items()}
            per = {img: b for img, (b, _) in both.items()}
            got = [b for b in per.values() if b is not None]
            rows.append({"curve": label, "format": c["format"], "metric": metric, "level": lv,
                         "images": len(per), "out_of_range": len(per) - len(got),
                         **summary(got, n_boot),
                         "encode_ms_per_mpx": summary([t for _, t in both.values()], 0),
                         "per_image": per})
    return rows


def setting_statistics(cs: dict) -> list[dict]:
    """Per curve and setting: mean, median, p05 ... p95 over images of every measurement
    (bpp, metrics, encode / decode seconds)."""
    rows = []
    for label, c in cs.items():
        by_setting: dict = {}
        for vs in c["images"].values():
            for v in vs:
                by_setting.setdefault(v["setting"]["value"], []).append(v)
        for s in sorted(by_setting):
            vs = by_setting[s]
            row = {"curve": label, "format": c["format"],
                   "setting": vs[0]["setting"]["name"], "value": s, "images": len(vs)}
            for key in STAT_KEYS:
                st = summary([value(v, key) for v in vs], n_boot=0)
                if st["n"]:
                    row[key] = {k: st[k] for k in ("mean", "median", "p05", "p25", "p75",
                                                     "p95", "min", "max")}
            rows.append(row)
    return rows


def _baseline_of(cs: dict, level: tuple, baseline: str) -> Optional[str]:
    same = [lb for lb, c in cs.items() if c["level"] == level]
    for lb in same:                                   # a curve label or a format name
        if lb == baseline or cs[lb]["format"] == baseline:
            return lb
    return same[0] if same else None


def bd_rates(cs: dict, baseline: str = "jpeg", n_boot: int = 1000) -> list[dict]:
    """BD-rate of every curve against the baseline curve at the same crop / resolution, per
    image and aggregated (mean over images with its bootstrap interval, median), for each BD
    metric and method."""
    rows = []
    for label, c in cs.items():
        base = _baseline_of(cs, c["level"], baseline)
        if base is None or base == label:
            continue
        anchor = cs[base]["images"]
        for key, (mlabel, higher) in BD_METRICS.items():
            for method in BD_METHODS:
                per = {}
                for img, vs in c["images"].items():
                    if img not in anchor:
                        continue
                    av = anchor[img]
                    per[img] = bd_rate([value(v, "bpp") for v in av], [value(v, key) for v in av],
                                       [value(v, "bpp") for v in vs], [value(v, key) for v in vs],
                                       method, higher)
                got = [x for x in per.values() if x is not None]
                if not per:
                    continue
                rows.append({"curve": label, "baseline": base, "metric": key,
                             "method": method, "images": len(per),
                             "not_computable": len(per) - len(got), **summary(got, n_boot),
                             "per_image": per})
    return rows


def analyse(images: list, baseline: str = "jpeg", levels=DEFAULT_LEVELS,
            method: str = "pchip", n_boot: int = 1000) -> dict:
    """The ``analysis`` section of quality.json."""
    cs = curves(images)
    return {"baseline": baseline, "match_metric": MATCH_METRIC, "levels": list(levels),
            "interpolation": method, "bootstrap": n_boot,
            "curves": [{"curve": lb, "format": c["format"], "images": len(c["images"])}
                       for lb, c in cs.items()],
            "matched_quality": matched_quality(cs, levels, MATCH_METRIC, method, n_boot),
            "bd_rate": bd_rates(cs, baseline, n_boot),
            "statistics": setting_statistics(cs)}


# ---------------------------------------------------------------------------- CSV
def _fmt(x):
    return "" if x is None else (f"{x:.6g}" if isinstance(x, float) else x)


def csv_tables(analysis: dict) -> dict[str, str]:
    """{file name: CSV text} for statistics, matched quality and BD-rate."""
    out = {}
    buf = io.StringIO()
    w = csv.writer(buf)
    stats = ("mean", "median", "p05", "p25", "p75", "p95", "min", "max")
    w.writerow(["curve", "format", "setting", "value", "images", "measure", *stats])
    for r in analysis["statistics"]:
        for key in STAT_KEYS:
            if key in r:
                w.writerow([r["curve"], r["format"], r["setting"], r["value"], r["images"], key,
                            *(_fmt(r[key][s]) for s in stats)])
    out["statistics.csv"] = buf.getvalue()
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ("n", "mean", "median", "p05", "p25", "p75", "p95")
    w.writerow(["curve", "format", "metric", "level", "images", "out_of_range", *cols,
                "ci95_low", "ci95_high"])
    for r in analysis["matched_quality"]:
        ci = r.get("ci95") or [None, None]
        w.writerow([r["curve"], r["format"], r["metric"], r["level"], r["images"],
                    r["out_of_range"], *(_fmt(r.get(c)) for c in cols), _fmt(ci[0]),
                    _fmt(ci[1])])
    out["matched_quality.csv"] = buf.getvalue()
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["curve", "baseline", "metric", "method", "images", "not_computable", "n",
                "mean_pct", "median_pct", "ci95_low", "ci95_high"])
    for r in analysis["bd_rate"]:
        ci = r.get("ci95") or [None, None]
        w.writerow([r["curve"], r["baseline"], r["metric"], r["method"], r["images"],
                    r["not_computable"], r["n"], _fmt(r.get("mean")), _fmt(r.get("median")),
                    _fmt(ci[0]), _fmt(ci[1])])
    out["bd_rate.csv"] = buf.getvalue()
    return out
