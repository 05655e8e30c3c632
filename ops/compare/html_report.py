"""One HTML page per study: BD-rate and matched-quality tables, interactive plotly plots (zoom,
hover), static rate-distortion SVGs and the comparison figures in a lightbox viewer, and tool
versions.  Everything is local: plotly's bundled JavaScript is copied next to the page."""
from __future__ import annotations

import html
import os
import time
from typing import Optional

import numpy as np

from .interactive import PLOTLY_JS
from .study import FORMAT_ORDER, METRICS, Study, level_of, metric_value, study_levels, tile_label, \
    tile_of

RD_METRICS = ("ssimulacra2", "butteraugli", "psnr")
COLOURS = {"jpeg": "#d55e00", "webp": "#009e73", "avif": "#0072b2", "jxl": "#cc79a7"}

CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1300px;padding:0 20px;color:#222}
h1{margin:18px 0 4px}
h2{margin-top:34px;border-bottom:1px solid #ddd}
h3{margin:22px 0 6px}
.muted{color:#666}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plots img{width:420px;border:1px solid #eee}
.plots-i{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:14px}
.plot{border:1px solid #eee;min-height:430px}
td.ci{color:#666}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}
.thumbs a{display:block;width:300px;text-decoration:none;color:#444}
.thumbs img{width:300px;height:190px;object-fit:contain;background:#f4f4f4;border:1px solid #ddd}
.thumbs span{display:block;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f6f6f6}
td:first-child{text-align:left}
.versions td{text-align:left}
#lb{display:none;position:fixed;inset:0;background:rgba(0,0,0,.92);z-index:9;
  flex-direction:column;align-items:center;justify-content:center}
#lb.on{display:flex}
#lb img{max-width:88vw;max-height:86vh;image-rendering:pixelated;background:#fff}
#lb p{color:#eee;margin:8px}
#lb button{position:absolute;top:45%;font-size:34px;background:rgba(60,60,60,.8);border:0;
  border-radius:6px;color:#fff;cursor:pointer;padding:10px 18px}
#lb .prev{left:4px}
#lb .next{right:4px}
#lb .close{top:6px;right:6px}
"""

JS = """
(function () {
  var links = [].slice.call(document.querySelectorAll('a.lb'));
  var lb = document.getElementById('lb'), img = lb.querySelector('img');
  var cap = lb.querySelector('p'), cur = 0;
  function show(i) {
    cur = (i + links.length) % links.length;
    img.src = links[cur].getAttribute('href');
    cap.textContent = links[cur].dataset.caption + '  (' + (cur + 1) + '/' + links.length + ')';
    lb.classList.add('on');
    history.replaceState(null, '', '#fig-' + (cur + 1));
  }
  function hide() { lb.classList.remove('on'); history.replaceState(null, '', location.pathname); }
  links.forEach(function (a, i) {
    a.addEventListener('click', function (e) { e.preventDefault(); show(i); });
  });
  lb.querySelector('.prev').onclick = function (e) { e.stopPropagation(); show(cur - 1); };
  lb.querySelector('.next').onclick = function (e) { e.stopPropagation(); show(cur + 1); };
  lb.querySelector('.close').onclick = hide;
  lb.addEventListener('click', function (e) { if (e.target === lb) hide(); });
  document.addEventListener('keydown', function (e) {
    if (!lb.classList.contains('on')) return;
    if (e.key === 'Escape') hide();
    if (e.key === 'ArrowLeft') show(cur - 1);
    if (e.key === 'ArrowRight') show(cur + 1);
  });
  var m = location.hash.match(/^#fig-(\\d+)$/);
  if (m && links.length) show(+m[1] - 1);
})();
"""


def rd_curves(study: Study, level: str, tile_param: str, metric: str) -> dict:
    """{tile: (mean bpp per setting, mean metric per setting)} over the study's images."""
    acc: dict = {}
    for img in study.images:
        for v in img["variants"]:
            if level_of(v, tile_param) != level:
                continue
            y, b = metric_value(v, metric), v.get("bpp")
            s = v["setting"]["value"]
            if y is None or b is None or isinstance(s, bool):
                continue
            acc.setdefault(tile_of(v, tile_param), {}).setdefault(s, []).append((b, y))
    out = {}
    for tile, by_s in acc.items():
        keys = sorted(by_s)
        pts = [np.mean(np.array(by_s[k]), axis=0) for k in keys]
        out[tile] = ([float(p[0]) for p in pts], [float(p[1]) for p in pts])
    return out


def log_bpp_axis(ax) -> None:
    """Log-scale bpp axis labelled 0.1, 0.2, 0.5, 1, 2, 5 ... in plain numbers and no labels
    on minor ticks (matplotlib's default labels minor ticks inside a decade as "3x10^-1",
    which overlapped)."""
    import math
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_xscale("log")           # near-lossless points (e.g. JPEG XL q100) stay readable
    lo, hi = ax.get_xlim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    subs = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0) if decades <= 0.6 else \
        (1.0, 2.0, 3.0, 5.0) if decades <= 1.3 else (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def rd_plot(study: Study, level: str, tile_param: str, metric: str, path: str) -> Optional[str]:
    """Save one rate-distortion plot (SVG); None when the study has no such measurements."""
    from matplotlib.figure import Figure
    curves = rd_curves(study, level, tile_param, metric)
    if not curves:
        return None
    f = Figure(figsize=(5.6, 3.9), dpi=100)
    ax = f.add_subplot(1, 1, 1)
    rank = {k: i for i, k in enumerate(FORMAT_ORDER)}
    for tile in sorted(curves, key=lambda t: (rank.get(t[0], 9), str(t[1:]))):
        xs, ys = curves[tile]
        ax.plot(xs, ys, marker="o", ms=3, lw=1.6, label=tile_label(tile, tile_param),
                color=COLOURS.get(tile[0]) if len(tile) == 1 else None)
    label, higher = METRICS[metric][1], METRICS[metric][2]
    log_bpp_axis(ax)
    ax.set_xlabel("bits per pixel (mean over images per setting, log scale)")
    ax.set_ylabel(f"{label} ({'higher' if higher else 'lower'} is better)")
    ax.set_title(f"{label} vs bpp" + (f" · {level}" if level else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    f.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    f.savefig(path, format="svg")
    return path


def _versions(study: Study) -> dict:
    import matplotlib
    import PIL
    import scipy
    out = {k: v for k, v in (study.quality.get("tools") or {}).items() if k != "metrics"}
    out.update({"numpy": np.__version__, "scipy": scipy.__version__,
                "matplotlib": matplotlib.__version__, "pillow (figures)": PIL.__version__})
    for k, v in ((study.quality.get("tools") or {}).get("metrics") or {}).items():
        out[f"metric {k}"] = v
    return out


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _thumb(href: str, caption: str) -> str:
    return (f'<a class="lb" href="{_e(href)}" data-caption="{_e(caption)}">'
            f'<img loading="lazy" src="{_e(href)}" alt="{_e(caption)}">'
            f'<span>{_e(caption)}</span></a>')


def _group_html(g: dict) -> list:
    where = f"{g['level']}/{g['metric']}" if g["level"] else g["metric"]
    out = [f"<h3>{_e(where)}: {_e(METRICS[g['metric']][1])} targets "
           f"{_e(', '.join(str(v) for v in g['values']))}</h3>"]
    if g.get("skipped"):
        return out + [f'<p class="muted">Skipped: {_e(g["skipped"])}</p>']
    out.append(f'<p class="muted">Image {_e(os.path.basename(g["image"]))} '
               f'(highest cross-format CV of {_e(g["selection_output"])}); crop '
               f'{_e(g["window"])} from the {_e(g["window_from"])}; distortion scale 0–'
               f'{g["vmax"]:g}.</p><div class="thumbs">')
    figs = g["figures"]
    for v, p in figs["comparison"].items():
        out.append(_thumb(p, f"{where}: target {METRICS[g['metric']][1]} = {v}"))
    for v, p in figs["distortion_map_comparison"].items():
        out.append(_thumb(p, f"{where}: Butteraugli maps at {METRICS[g['metric']][1]} = {v}"))
    out.append(_thumb(figs["anisotropic"], f"{where}: anisotropic map and chosen crop"))
    out.append(_thumb(figs["original_annotated"], f"{where}: original, fragment highlighted"))
    out.append("</div><table><tr><th>tile</th><th>target</th><th>setting</th><th>bpp</th>"
               "<th>SSIMULACRA2</th><th>Butteraugli</th></tr>")
    for r in g["measured"]:
        m = r.get("metrics") or {}
        cells = [" ".join(str(x) for x in r["tile"]), r["target"],
                 f"{r['setting_name']} {r['setting']}" if "setting" in r else "out of range",
                 f"{r['bpp']:.3f}" if "bpp" in r else "",
                 f"{m['ssimulacra2']:.2f}" if "ssimulacra2" in m else "",
                 f"{m['butteraugli_max']:.2f}" if "butteraugli_max" in m else ""]
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    return out


def _ci(r: dict) -> str:
    ci = r.get("ci95")
    return f"{ci[0]:+.1f} … {ci[1]:+.1f}" if ci else "–"


def _bd_html(analysis: dict) -> list:
    from .analysis import BD_METRICS
    rows = [r for r in analysis["bd_rate"] if r.get("n")]
    out = [f"<h2>BD-rate against {_e(analysis['baseline'])}</h2>"]
    if not rows:
        return out + ["<p class=muted>Not computable: every curve needs 4 (cubic) or 2 "
                      "(piecewise cubic) points on its rate-distortion front, overlapping the "
                      "baseline's quality range.</p>"]
    out.append("<p class=muted>Per image (VCEG-M33 cubic fit and its piecewise-cubic "
               "variant, log rate over the overlapping quality range), then the mean over "
               "images with a bootstrap 95 % interval over images, and the median. Negative "
               "= fewer bits than the baseline for the same quality.</p><table><tr><th>curve"
               "</th><th>baseline</th><th>metric</th><th>method</th><th>images</th>"
               "<th>mean %</th><th>95 % interval</th><th>median %</th></tr>")
    for r in rows:
        out.append(f"<tr><td>{_e(r['curve'])}</td><td>{_e(r['baseline'])}</td>"
                   f"<td>{_e(BD_METRICS[r['metric']][0])}</td><td>{_e(r['method'])}</td>"
                   f"<td>{r['n']}/{r['images']}</td><td>{r['mean']:+.1f}</td>"
                   f"<td class=ci>{_ci(r)}</td><td>{r['median']:+.1f}</td></tr>")
    return out + ["</table>"]


def _matched_html(analysis: dict) -> list:
    out = [f"<h2>Bits per pixel at matched {_e(analysis['match_metric'])}</h2>"
           "<p class=muted>Each image's bpp interpolated at the level on its own sweep "
           f"({_e(analysis['interpolation'])}), then aggregated over images.</p>"
           "<table><tr><th>curve</th><th>level</th><th>images</th><th>mean</th>"
           "<th>95 % interval</th><th>median</th><th>p05 – p95</th><th>encode ms/MP</th>"
           "</tr>"]
    for r in analysis["matched_quality"]:
        if not r.get("n"):
            out.append(f"<tr><td>{_e(r['curve'])}</td><td>{r['level']:g}</td><td>0/"
                       f"{r['images']}</td><td colspan=5 class=ci>out of the measured range"
                       "</td></tr>")
            continue
        ci = r.get("ci95")
        t = (r.get("encode_ms_per_mpx") or {}).get("mean")
        out.append(f"<tr><td>{_e(r['curve'])}</td><td>{r['level']:g}</td><td>{r['n']}/"
                   f"{r['images']}</td><td>{r['mean']:.3f}</td><td class=ci>"
                   f"{f'{ci[0]:.3f} … {ci[1]:.3f}' if ci else '–'}</td><td>{r['median']:.3f}"
                   f"</td><td>{r['p05']:.3f} – {r['p95']:.3f}</td><td>"
                   f"{f'{t:.0f}' if t is not None else '–'}</td></tr>")
    return out + ["</table>"]


def write_report(study: Study, manifest: dict, comp_dir: str) -> str:
    """Write ``<comp_dir>/index.html`` (+ plots/*.svg); returns its path."""
    tile_param = manifest["tile_parameter"]
    levels = study_levels(study.images, tile_param)
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(study.study_id)}"
             f" comparison</title><style>{CSS}</style></head><body>",
             f"<h1>{_e(study.study_id)}</h1><p class=muted>{len(study.images)} images, "
             f"{sum(len(i['variants']) for i in study.images)} variants; figures generated "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {manifest['seconds']} s "
             f"from {_e(os.path.basename(study.quality_path or 'quality.json'))}; tiles by "
             f"{_e(tile_param)}, crop {manifest['crop_size']} px × {manifest['zoom']}.</p>",
             ]
    analysis = study.quality.get("analysis")
    if analysis is None:                 # a quality.json of schema /1: analyse it here
        from .analysis import analyse
        analysis = analyse(study.images)
    from .interactive import copy_plotly, plots_html, study_plots
    copy_plotly(comp_dir)
    parts.append(f'<script src="{PLOTLY_JS}"></script>')
    parts += _bd_html(analysis) + _matched_html(analysis)
    parts.append("<h2>Interactive plots</h2><p class=muted>Zoom by dragging, double-click to "
                 "reset; hover a point for its image and setting; click a legend entry to "
                 "hide a curve.</p>")
    parts.append(plots_html(study_plots(study, analysis)))
    parts.append("<h2>Rate–distortion (static)</h2>")
    for level in levels:
        plots = []
        for metric in RD_METRICS:
            name = f"rd_{level.replace('/', '_') + '_' if level else ''}{metric}.svg"
            p = rd_plot(study, level, tile_param, metric, os.path.join(comp_dir, "plots", name))
            if p:
                rel = os.path.relpath(p, comp_dir)
                plots.append(_thumb(rel, f"{METRICS[metric][1]} vs bpp {level}".strip()))
        if plots:
            parts.append(f'<div class="plots thumbs">{"".join(plots)}</div>')
    parts.append("<h2>Comparison figures</h2>")
    for g in manifest["groups"]:
        parts.extend(_group_html(g))
    parts.append("<h2>Tool versions</h2><table class=versions>")
    parts += [f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in _versions(study).items()]
    parts.append('</table><div id="lb"><button class="close" aria-label="close">×</button>'
                 '<button class="prev" aria-label="previous">‹</button><img alt="">'
                 '<button class="next" aria-label="next">›</button><p></p></div>'
                 f"<script>{JS}</script></body></html>")
    path = os.path.join(comp_dir, "index.html")
    with open(path, "w") as fh:
        fh.write("\n".join(parts))
    return path
