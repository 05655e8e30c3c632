"""Interactive plots of a study (plotly; its bundled JavaScript is copied next to the report,
so nothing is fetched) and the multi-study index page.

Plots: rate-distortion per curve at matched quality (mean over images, p05-p95 band, the
worst-5 % curve, each image's own curve on hover), quality vs setting, bits per quality point
vs setting, and size vs encode time (Pareto front) at every quality level.
"""
from __future__ import annotations

import glob
import html
import json
import os
import shutil
import time
from typing import Optional

from .analysis import curves, value

PLOTLY_JS = "assets/plotly.min.js"
COLOURS = {"jpeg": "#d55e00", "webp": "#009e73", "avif": "#0072b2", "jxl": "#cc79a7"}
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7f7f7f",
           "#000000")
QUALITY_KEYS = {"ssimulacra2": ("SSIMULACRA2", True), "butteraugli_p3": ("Butteraugli 3-norm",
                False), "psnr": ("PSNR (dB)", True)}


def copy_plotly(comp_dir: str) -> str:
    """plotly.min.js from the installed plotly package, next to the report (once)."""
    from plotly.offline import get_plotlyjs_version
    import plotly
    src = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")
    dst = os.path.join(comp_dir, PLOTLY_JS)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if not os.path.exists(dst) or os.path.getsize(dst) != os.path.getsize(src):
        shutil.copyfile(src, dst)
    return get_plotlyjs_version()


def _colours(cs: dict) -> dict:
    """Curve colour: the format's when a format has one curve, else a palette per curve."""
    per_fmt: dict = {}
    for lb, c in cs.items():
        per_fmt.setdefault(c["format"], []).append(lb)
    out, k = {}, 0
    for lb, c in cs.items():
        if len(per_fmt[c["format"]]) == 1 and c["format"] in COLOURS:
            out[lb] = COLOURS[c["format"]]
        else:
            out[lb] = PALETTE[k % len(PALETTE)]
            k += 1
    return out


def _layout(title: str, xtitle: str, ytitle: str, xlog: bool = False) -> dict:
    xaxis = {"title": {"text": xtitle}, "type": "log" if xlog else "linear"}
    if xlog:
        xaxis["dtick"] = "D2"            # label 2 and 5 between the decades, nothing else
    return {"title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left",
                      "y": 0.98, "yanchor": "top"}, "height": 440,
            "margin": {"l": 60, "r": 20, "t": 70, "b": 50}, "hovermode": "closest",
            "xaxis": xaxis,
            "yaxis": {"title": {"text": ytitle}}, "legend": {"font": {"size": 11}},
            "template": "plotly_white"}


def _short(path: str) -> str:
    return os.path.basename(path)


def rd_matched(analysis: dict, cs: dict, colours: dict) -> dict:
    """bpp at every SSIMULACRA2 level: mean line, p05-p95 band, worst-5 % (p95 bpp) dashed,
    and every image's own matched points (hover: image, level, bpp)."""
    data = []
    rows = analysis["matched_quality"]
    for lb in cs:
        mine = [r for r in rows if r["curve"] == lb and r.get("n")]
        if not mine:
            continue
        col = colours[lb]
        lv = [r["level"] for r in mine]
        data.append({"type": "scatter", "x": [r["p05"] for r in mine] +
                     [r["p95"] for r in mine][::-1], "y": lv + lv[::-1], "fill": "toself",
                     "fillcolor": col, "opacity": 0.15, "line": {"width": 0},
                     "hoverinfo": "skip", "legendgroup": lb, "showlegend": False,
                     "name": f"{lb} p05-p95"})
        data.append({"type": "scatter", "mode": "lines+markers", "name": f"{lb} mean",
                     "x": [r["mean"] for r in mine], "y": lv, "legendgroup": lb,
                     "line": {"color": col, "width": 2.5},
                     "text": [f"{lb}<br>SSIMULACRA2 {r['level']:g}: mean {r['mean']:.3f} bpp "
                              f"(95% CI {r['ci95'][0]:.3f}-{r['ci95'][1]:.3f})<br>median "
                              f"{r['median']:.3f}, p05-p95 {r['p05']:.3f}-{r['p95']:.3f}, "
                              f"{r['n']} images" if r.get("ci95") else
                              f"{lb}: {r['mean']:.3f} bpp, {r['n']} image(s)" for r in mine],
                     "hoverinfo": "text"})
        data.append({"type": "scatter", "mode": "lines", "name": f"{lb} worst 5%",
                     "x": [r["p95"] for r in mine], "y": lv, "legendgroup": lb,
                     "line": {"color": col, "dash": "dash", "width": 1.5},
                     "hoverinfo": "x+name"})
        per_img: dict = {}
        for r in mine:
            for img, b in (r.get("per_image") or {}).items():
                if b is not None:
                    per_img.setdefault(img, []).append((b, r["level"]))
        for img, pts in per_img.items():
            data.append({"type": "scatter", "mode": "lines+markers", "legendgroup": lb,
                         "showlegend": False, "name": _short(img),
                         "x": [p[0] for p in pts], "y": [p[1] for p in pts],
                         "line": {"color": col, "width": 0.6}, "marker": {"size": 4},
                         "opacity": 0.35,
                         "text": [f"{_short(img)} · {lb}<br>SSIMULACRA2 {p[1]:g} at "
                                  f"{p[0]:.3f} bpp" for p in pts], "hoverinfo": "text"})
    if not data:
        return None
    return {"data": data, "layout": _layout(
        "Bits per pixel at matched SSIMULACRA2, per image then aggregated",
        "bits per pixel (log scale; band p05-p95 over images, dashed: worst 5%)",
        "SSIMULACRA2 (higher is better)", xlog=True)}


def rd_settings(images: list, cs: dict, colours: dict, key: str) -> Optional[dict]:
    """Metric vs bpp: every image's measured sweep (hover: image, setting, bpp, metric)
    plus the per-setting mean."""
    label, higher = QUALITY_KEYS[key]
    data = []
    for lb, c in cs.items():
        col = colours[lb]
        for img, vs in c["images"].items():
            pts = [(value(v, "bpp"), value(v, key), v["setting"]) for v in vs]
            pts = [p for p in pts if p[0] is not None and p[1] is not None]
            if not pts:
                continue
            data.append({"type": "scatter", "mode": "lines+markers", "legendgroup": lb,
                         "name": lb, "showlegend": False, "x": [p[0] for p in pts],
                         "y": [p[1] for p in pts], "opacity": 0.45,
                         "line": {"color": col, "width": 0.8}, "marker": {"size": 4},
                         "text": [f"{_short(img)} · {lb} {p[2]['name']}={p[2]['value']}<br>"
                                  f"{p[0]:.3f} bpp, {label} {p[1]:.3f}" for p in pts],
                         "hoverinfo": "text"})
        if any(d.get("legendgroup") == lb for d in data):
            data.append({"type": "scatter", "mode": "markers", "x": [None], "y": [None],
                         "name": lb, "legendgroup": lb, "marker": {"color": col}})
    if not data:
        return None
    return {"data": data, "layout": _layout(
        f"{label} vs bits per pixel, every image's sweep", "bits per pixel (log scale)",
        f"{label} ({'higher' if higher else 'lower'} is better)", xlog=True)}


def by_setting(analysis: dict, cs: dict, colours: dict, key: str, title: str,
               ytitle: str) -> Optional[dict]:
    """Mean and worst-5 % of a measurement per setting, one line pair per curve."""
    data = []
    worst = "p05" if QUALITY_KEYS.get(key, ("", True))[1] else "p95"
    for lb in cs:
        rows = [r for r in analysis["statistics"] if r["curve"] == lb and key in r]
        if not rows:
            continue
        xs = [r["value"] for r in rows]
        data.append({"type": "scatter", "mode": "lines+markers", "name": f"{lb} mean",
                     "x": xs, "y": [r[key]["mean"] for r in rows], "legendgroup": lb,
                     "line": {"color": colours[lb]},
                     "text": [f"{lb} {r['setting']}={r['value']}: mean {r[key]['mean']:.4g}, "
                              f"median {r[key]['median']:.4g}, {r['images']} images"
                              for r in rows], "hoverinfo": "text"})
        data.append({"type": "scatter", "mode": "lines", "name": f"{lb} worst 5%",
                     "x": xs, "y": [r[key][worst] for r in rows], "legendgroup": lb,
                     "line": {"color": colours[lb], "dash": "dash"}})
    if not data:
        return None
    setting = next((r["setting"] for r in analysis["statistics"]), "setting")
    return {"data": data, "layout": _layout(title, f"encoder {setting}", ytitle)}


def bits_per_quality(images: list, cs: dict, colours: dict, key: str) -> Optional[dict]:
    """Bits per pixel per quality point (times the distance for Butteraugli, as the reference
    tool), per setting: mean and worst-5 % (p95)."""
    import numpy as np
    label, higher = QUALITY_KEYS[key]
    data = []
    for lb, c in cs.items():
        per: dict = {}
        for vs in c["images"].values():
            for v in vs:
                b, q = value(v, "bpp"), value(v, key)
                if b is not None and q is not None and q > 0:
                    per.setdefault(v["setting"]["value"], []).append(b / q if higher else b * q)
        if not per:
            continue
        xs = sorted(per)
        data.append({"type": "scatter", "mode": "lines+markers", "name": f"{lb} mean",
                     "x": xs, "y": [float(np.mean(per[x])) for x in xs], "legendgroup": lb,
                     "line": {"color": colours[lb]}})
        data.append({"type": "scatter", "mode": "lines", "name": f"{lb} worst 5%", "x": xs,
                     "y": [float(np.quantile(per[x], 0.95)) for x in xs], "legendgroup": lb,
                     "line": {"color": colours[lb], "dash": "dash"}})
    if not data:
        return None
    ytitle = f"bpp / {label}" if higher else f"bpp × {label}"
    setting = next((v["setting"]["name"] for c in cs.values() for vs in c["images"].values()
                    for v in vs), "setting")
    return {"data": data, "layout": _layout(
        f"Bits per pixel per {label} point (lower is better)", f"encoder {setting}", ytitle)}


def pareto(analysis: dict, cs: dict, colours: dict) -> Optional[dict]:
    """Size vs encode time at matched quality: one marker per curve and level (mean over
    images; a curve's markers share its colour), the Pareto front of each level dotted."""
    rows = [r for r in analysis["matched_quality"] if r.get("n")
            and (r.get("encode_ms_per_mpx") or {}).get("n")]
    if not rows:
        return None
    data = []
    for lb in cs:
        mine = [r for r in rows if r["curve"] == lb]
        if not mine:
            continue
        data.append({"type": "scatter", "mode": "markers+text", "name": lb,
                     "x": [r["encode_ms_per_mpx"]["mean"] for r in mine],
                     "y": [r["mean"] for r in mine],
                     "text": [f"{r['level']:g}" for r in mine], "textposition": "top center",
                     "textfont": {"size": 9, "color": "#777"},
                     "marker": {"size": 9, "color": colours[lb]},
                     "hovertext": [f"{lb} at SSIMULACRA2 {r['level']:g}<br>"
                                   f"{r['encode_ms_per_mpx']['mean']:.0f} ms/MP encode, "
                                   f"{r['mean']:.3f} bpp ({r['n']} images)" for r in mine],
                     "hoverinfo": "text"})
    for lv in analysis["levels"]:
        pts = sorted((r["encode_ms_per_mpx"]["mean"], r["mean"]) for r in rows
                     if r["level"] == lv)
        front, best = [], float("inf")
        for t, b in pts:
            if b < best:
                front.append((t, b))
                best = b
        if len(front) > 1:
            data.append({"type": "scatter", "mode": "lines", "showlegend": False,
                         "name": f"front at {lv:g}", "x": [p[0] for p in front],
                         "y": [p[1] for p in front], "hoverinfo": "name",
                         "line": {"color": "#999", "dash": "dot", "width": 1}})
    return {"data": data, "layout": _layout(
        "Size vs encode time at matched SSIMULACRA2 (labels: level; Pareto fronts dotted)",
        "encode time, ms per megapixel (log scale, mean over images)",
        "bits per pixel (mean over images)", xlog=True)}


def study_plots(study, analysis: dict) -> list[tuple[str, dict]]:
    """[(id, plotly figure dict)] for the report."""
    cs = curves(study.images)
    colours = _colours(cs)
    fig = rd_matched(analysis, cs, colours)
    out = [("rd-matched", fig)] if fig else []
    for key in QUALITY_KEYS:
        fig = rd_settings(study.images, cs, colours, key)
        if fig:
            out.append((f"rd-{key}", fig))
    measured = [k for k in QUALITY_KEYS if any(k in r for r in analysis["statistics"])]
    key = measured[0] if measured else "ssimulacra2"
    label = QUALITY_KEYS[key][0]
    fig = by_setting(analysis, cs, colours, key,
                     f"{label} vs encoder setting (mean, dashed: worst 5%)", label)
    if fig:
        out.append(("quality-setting", fig))
    fig = bits_per_quality(study.images, cs, colours, key)
    if fig:
        out.append(("bytes-per-quality", fig))
    fig = pareto(analysis, cs, colours)
    if fig:
        out.append(("pareto", fig))
    return out


def plots_html(plots: list[tuple[str, dict]]) -> str:
    """Divs plus one script drawing them with Plotly.newPlot (data as JSON)."""
    divs = "".join(f'<div class="plot" id="{pid}"></div>' for pid, _ in plots)
    payload = json.dumps({pid: fig for pid, fig in plots}, allow_nan=False,
                         default=float).replace("</", "<\\/")
    script = ("<script>(function(){var P=" + payload + ";Object.keys(P).forEach(function(k){"
              "Plotly.newPlot(k,P[k].data,P[k].layout,{responsive:true,displaylogo:false});"
              "});})();</script>")
    return f'<div class="plots-i">{divs}</div>{script}'


# ---------------------------------------------------------------------------- index
def _headline(qpath: str) -> str:
    try:
        with open(qpath) as fh:
            doc = json.load(fh)
    except (OSError, json.JSONDecodeError):
        return ""
    rows = [r for r in (doc.get("analysis") or {}).get("bd_rate", [])
            if r["metric"] == "ssimulacra2" and r["method"] == "pchip" and r.get("n")]
    return "; ".join(f"{html.escape(r['curve'])} {r['mean']:+.1f}%" for r in rows)


def write_index(root: str) -> str:
    """``<root>/index.html``: every study under ``<root>/*/`` with a report, its images,
    variants and SSIMULACRA2 BD-rates against its baseline, linked."""
    rows = []
    for rep in sorted(glob.glob(os.path.join(root, "*", "comparison", "index.html"))):
        work = os.path.dirname(os.path.dirname(rep))
        qpath = os.path.join(work, "quality.json")
        man = os.path.join(os.path.dirname(rep), "manifest.json")
        try:
            with open(man) as fh:
                m = json.load(fh)
        except (OSError, json.JSONDecodeError):
            m = {}
        base = ""
        try:
            with open(qpath) as fh:
                doc = json.load(fh)
            base = (doc.get("analysis") or {}).get("baseline", "")
            n_img, n_var = len(doc.get("images") or []), sum(
                len(i["variants"]) for i in doc.get("images") or [])
        except (OSError, json.JSONDecodeError):
            n_img = n_var = "?"
        rows.append(f"<tr><td><a href=\"{html.escape(os.path.relpath(rep, root))}\">"
                    f"{html.escape(m.get('study_id') or os.path.basename(work))}</a></td>"
                    f"<td>{n_img}</td><td>{n_var}</td><td>{html.escape(str(base))}</td>"
                    f"<td>{_headline(qpath)}</td></tr>")
    page = ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Codec studies"
            "</title><style>body{font:15px/1.45 system-ui,sans-serif;max-width:1200px;"
            "margin:0 auto;padding:0 20px}table{border-collapse:collapse}td,th{border:1px "
            "solid #ddd;padding:4px 8px}th{background:#f6f6f6}</style></head><body>"
            "<h1>Codec studies</h1><p>Generated " +
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + ". BD-rate: SSIMULACRA2, "
            "piecewise cubic, mean over images against the study's baseline (negative = "
            "fewer bits).</p><table><tr><th>study</th><th>images</th><th>variants</th>"
            "<th>baseline</th><th>BD-rate</th></tr>" + "".join(rows) +
            "</table></body></html>")
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "index.html")
    with open(path, "w") as fh:
        fh.write(page)
    return path

