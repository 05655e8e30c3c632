"""The analyzer's tables and figures: an overall table per stat (CSV + Markdown), a histogram
and a box plot per stat (PNG), one HTML page with all of them."""
from __future__ import annotations

import csv
import html
import math
import os
import re
from array import array
from collections import Counter
from typing import Iterable, Optional

import numpy as np

from ops.fields import Fields, MetaKeys

HIST_MAX_BINS = 60
MAX_FLIERS = 2000      # outliers drawn per box plot (the whiskers use every value)


class StatsCollector:
    """Gathers every stat value of a dataset's rows: numbers (lists exploded, nested dicts as
    ``key.sub``) and strings; plus what an analyzer run noted would be dropped."""

    def __init__(self):
        self.numeric: dict[str, array] = {}
        self.text: dict[str, Counter] = {}
        self.rows = 0
        self._drops: dict[str, set] = {}          # op name -> ids (as the op saw them)
        self.kept_by_all = 0

    def add_row(self, row: dict, dedup_names: Iterable[str] = ()) -> None:
        self.rows += 1
        for key, value in (row.get(Fields.stats) or {}).items():
            self._add(key, value)
        meta = row.get(Fields.meta) or {}
        # a fan-out mapper after the op copies the note to every child: count the ids the op
        # decided on, not the rows that carry the note
        drops = [(e.get("op"), e.get("id")) for e in meta.get(MetaKeys.would_drop) or []
                 if isinstance(e, dict)]
        for name in dedup_names:
            info = meta.get(name)
            if isinstance(info, dict) and info.get(MetaKeys.would_drop) is not None:
                drops.append((name, info[MetaKeys.would_drop]))
        for name, sid in drops:
            self._drops.setdefault(name, set()).add(sid)
        self.kept_by_all += not drops

    @property
    def would_drop(self) -> dict[str, int]:
        """Per op name: how many samples (as the op saw them) it would have dropped."""
        return {name: len(ids) for name, ids in self._drops.items()}

    def _add(self, key: str, value) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, (int, float)):
            if math.isfinite(value):
                self.numeric.setdefault(key, array("d")).append(float(value))
        elif isinstance(value, str):
            self.text.setdefault(key, Counter())[value] += 1
        elif isinstance(value, (list, tuple)):
            for v in value:
                self._add(key, v)
        elif isinstance(value, dict):
            for k, v in value.items():
                self._add(f"{key}.{k}", v)


def percentile_label(p: float) -> str:
    return f"p{round(p * 100):02d}" if abs(p * 100 - round(p * 100)) < 1e-9 else f"p{p * 100:g}"


def overall_table(numeric: dict, percentiles: Iterable[float]) -> tuple[list[str], list[list]]:
    """Header and one row per stat: stat, count, mean, std, min, percentiles..., max."""
    pcts = sorted(set(percentiles))
    header = ["stat", "count", "mean", "std", "min", *map(percentile_label, pcts), "max"]
    rows = []
    for name in sorted(numeric):
        v = np.frombuffer(numeric[name], dtype=np.float64)
        if not len(v):
            continue
        q = np.quantile(v, pcts).tolist() if pcts else []
        rows.append([name, int(len(v)), float(v.mean()), float(v.std(ddof=1)) if len(v) > 1
                     else 0.0, float(v.min()), *q, float(v.max())])
    return header, rows


def fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def write_csv(path: str, header: list, rows: list) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def markdown_table(header: list, rows: list) -> str:
    def cell(x):
        return fmt(x).replace("|", "\\|")
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(header: list, rows: list) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(x))}</td>" for x in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def safe_name(stat: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stat).strip("_") or "stat"


def _figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_numeric(stat: str, values: np.ndarray, folder: str) -> tuple[str, str]:
    """``<stat>-hist.png`` and ``<stat>-box.png`` under ``folder``; returns both paths."""
    plt = _figure()
    from matplotlib import cbook
    name = safe_name(stat)
    hist_path = os.path.join(folder, f"{name}-hist.png")
    box_path = os.path.join(folder, f"{name}-box.png")
    edges = np.histogram_bin_edges(values, bins="auto")
    if len(edges) - 1 > HIST_MAX_BINS:
        edges = np.histogram_bin_edges(values, bins=HIST_MAX_BINS)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.hist(values, bins=edges, color="#4c72b0", edgecolor="white", linewidth=0.4)
    ax.set_title(f"{stat} (n={len(values)})")
    ax.set_xlabel(stat)
    ax.set_ylabel("samples")
    fig.tight_layout()
    fig.savefig(hist_path)
    plt.close(fig)
    bstats = cbook.boxplot_stats(values, whis=1.5)[0]
    fliers = bstats["fliers"]
    if len(fliers) > MAX_FLIERS:
        bstats["fliers"] = np.random.default_rng(0).choice(fliers, MAX_FLIERS, replace=False)
    fig, ax = plt.subplots(figsize=(6, 1.8), dpi=100)
    ax.bxp([bstats], orientation="horizontal", showfliers=True, widths=0.6)
    ax.set_yticks([])
    ax.set_xlabel(stat)
    ax.set_title(f"{stat}: median {fmt(float(bstats['med']))}, IQR "
                 f"[{fmt(float(bstats['q1']))}, {fmt(float(bstats['q3']))}]", fontsize=9)
    fig.tight_layout()
    fig.savefig(box_path)
    plt.close(fig)
    return hist_path, box_path


def plot_text(stat: str, counts: Counter, folder: str, top: int = 20) -> str:
    """Bar chart of the most frequent values of a string stat."""
    plt = _figure()
    path = os.path.join(folder, f"{safe_name(stat)}-hist.png")
    items = counts.most_common(top)
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(items) + 1.2), dpi=100)
    ax.barh([str(k)[:40] for k, _ in items][::-1], [c for _, c in items][::-1], color="#55a868")
    ax.set_title(f"{stat} (n={sum(counts.values())}, {len(counts)} distinct)")
    ax.set_xlabel("samples")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_all(numeric: dict, path: str) -> Optional[str]:
    """One figure holding every numeric stat's histogram (``save_stats_in_one_file``)."""
    if not numeric:
        return None
    plt = _figure()
    names = sorted(numeric)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3 * rows), dpi=100,
                             squeeze=False)
    for ax, name in zip(axes.flat, names):
        v = np.frombuffer(numeric[name], dtype=np.float64)
        ax.hist(v, bins=min(HIST_MAX_BINS, max(1, len(np.unique(v)))), color="#4c72b0")
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;
text-align:right}}td:first-child,th:first-child{{text-align:left}}
.stat{{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}}img{{max-width:100%}}</style>
</head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def write_html(path: str, title: str, sections: list[tuple[str, str]]) -> None:
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(PAGE.format(title=html.escape(title), body=body))
