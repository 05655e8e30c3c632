"""dj-analyze: run a recipe's ops computing every stat, drop nothing, describe the stats
(``python -m pipelines.cli.analyze`` runs it too).

Writes under ``<work_dir>/analysis/``: ``overall.csv`` / ``overall.md`` (count, mean, std, min,
p05, p25, p50, p75, p95, max per stat, plus any ``percentiles`` of the recipe), ``ops.csv``
(per op: rows in, errored, would drop), ``plots/<stat>-hist.png`` and ``plots/<stat>-box.png``,
``report.html`` with all of them, and ``stats.jsonl`` (id, stats, meta of every row; the full
rows with ``export_original_dataset: true``, as ``dataset.jsonl``).  The run itself (logs,
summary, errors) goes to ``analysis/run/``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
from typing import Optional

from ops.base import Aggregator, Deduplicator, Filter
from ops.fields import Fields

logger = logging.getLogger("imgjuicer")


def _analysis_recipe(recipe, out_dir: str):
    """The recipe as the analyzer runs it: its own work dir and export, every op but the
    aggregators (they draw figures from a finished dataset), no export sharding/dropping."""
    from pipelines.compat import CompatSettings
    from pipelines.config import build_ops

    ops = build_ops(recipe)
    keep = [i for i, op in enumerate(ops) if not isinstance(op, Aggregator)]
    skipped = [ops[i].name for i in range(len(ops)) if i not in keep]
    if skipped:
        logger.info("analyzer: skipping aggregators %s (they draw from a finished dataset)",
                    ", ".join(skipped))
    compat = dataclasses.replace(recipe.compat or CompatSettings(), export_options={})
    run = dataclasses.replace(
        recipe, work_dir=os.path.join(out_dir, "run"),
        export_path=os.path.join(out_dir, "dataset.jsonl"),
        process=[recipe.process[i] for i in keep], compat=compat)
    ops = [ops[i] for i in keep]
    for op in ops:
        if isinstance(op, (Filter, Deduplicator)):
            op.keep_all = True
    return run, ops


def _auto_rows(recipe, out_dir: str):
    """``auto: true``: the analysis runs on the first ``auto_num`` rows of the dataset."""
    from pipelines.compat import dataset_options
    from pipelines.dataset import export_batches, prepare_table, read_rows

    logger.info("analyzer (auto): %s on the first %d rows",
                ", ".join(n for n, _ in recipe.process), recipe.compat.auto_num)
    table = prepare_table(read_rows(recipe.dataset_path, **dataset_options(recipe)),
                          recipe.dataset_path, recipe.image_columns)
    table = table.slice(0, recipe.compat.auto_num).drop_columns([Fields.id])
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "auto_input.jsonl")
    export_batches([table.to_pydict()] if table.num_rows else [], path)
    return dataclasses.replace(recipe, dataset_path=path, image_columns=None)


def analyze(recipe) -> dict:
    """Run the analysis; returns the paths written and the overall table."""
    from pipelines import analysis as an
    from pipelines.cli.process import run_recipe
    from pipelines.compat import DEFAULT_PERCENTILES

    compat = recipe.compat
    out_dir = os.path.join(recipe.work_dir, "analysis")
    plots = os.path.join(out_dir, "plots")
    shutil.rmtree(plots, ignore_errors=True)
    os.makedirs(plots, exist_ok=True)
    if compat is not None and compat.auto:
        recipe = _auto_rows(recipe, out_dir)
    run, ops = _analysis_recipe(recipe, out_dir)
    summary = run_recipe(run, ops)
    dedups = [op.name for op in ops if isinstance(op, Deduplicator)]
    collector = an.StatsCollector()
    stats_path = os.path.join(out_dir, "stats.jsonl")
    keep_rows = compat is not None and compat.export_original_dataset
    with open(run.export_path, encoding="utf-8") as src, \
            open(stats_path + ".tmp", "w", encoding="utf-8") as dst:
        for line in src:
            if not line.strip():
                continue
            row = json.loads(line)
            collector.add_row(row, dedups)
            dst.write(json.dumps({k: row.get(k) for k in (Fields.id, Fields.stats, Fields.meta)},
                                 ensure_ascii=False) + "\n")
    os.replace(stats_path + ".tmp", stats_path)
    if not keep_rows:
        os.remove(run.export_path)
    percentiles = compat.percentiles if compat is not None else DEFAULT_PERCENTILES
    header, rows = an.overall_table(collector.numeric, percentiles)
    an.write_csv(os.path.join(out_dir, "overall.csv"), header, rows)
    op_header = ["#", "op", "kind", "rows in", "errored", "would drop", "seconds"]
    op_rows = [[o["index"], o["op"], o["kind"], o["rows_in"], o["errored"],
                collector.would_drop.get(o["op"], 0) if o["kind"] in ("filter", "deduplicator")
                else "", o["seconds"]] for o in summary["ops"]]
    an.write_csv(os.path.join(out_dir, "ops.csv"), op_header, op_rows)
    text_header = ["stat", "count", "distinct", "top", "freq"]
    text_rows = [[k, sum(c.values()), len(c), *c.most_common(1)[0]]
                 for k, c in sorted(collector.text.items())]
    if text_rows:
        an.write_csv(os.path.join(out_dir, "categorical.csv"), text_header, text_rows)
    figures = {}
    import numpy as np
    for name in sorted(collector.numeric):
        v = np.frombuffer(collector.numeric[name], dtype=np.float64)
        if len(v):
            figures[name] = an.plot_numeric(name, v, plots)
    for name, counts in sorted(collector.text.items()):
        figures[name] = (an.plot_text(name, counts, plots),)
    all_in_one = None
    if compat is not None and compat.save_stats_in_one_file:
        all_in_one = an.plot_all(collector.numeric, os.path.join(plots, "all-stats.png"))
    errored = summary.get("errored", 0)
    lines = [f"{collector.rows} samples analyzed ({summary.get('rows_in')} in, {errored} "
             f"errored: see {os.path.join(run.work_dir, 'errors.jsonl')}); "
             f"{collector.kept_by_all} pass every filter and deduplicator."]
    md = [f"# Analysis of {recipe.project_name}\n", lines[0] + "\n", "## Overall\n",
          an.markdown_table(header, rows), "## Ops\n", an.markdown_table(op_header, op_rows)]
    if text_rows:
        md += ["## Text stats\n", an.markdown_table(text_header, text_rows)]
    with open(os.path.join(out_dir, "overall.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(md))
    sections = [("Summary", f"<p>{an.html.escape(lines[0])}</p>"),
                ("Overall", an.html_table(header, rows)), ("Ops", an.html_table(op_header, op_rows))]
    if text_rows:
        sections.append(("Text stats", an.html_table(text_header, text_rows)))
    if all_in_one:
        sections.append(("All stats", f'<img src="plots/{os.path.basename(all_in_one)}">'))
    for name, paths in figures.items():
        imgs = "".join(f'<img src="plots/{os.path.basename(p)}" alt="{an.html.escape(name)}">'
                       for p in paths)
        sections.append((name, f'<div class="stat">{imgs}</div>'))
    report = os.path.join(out_dir, "report.html")
    an.write_html(report, f"imgjuicer analysis: {recipe.project_name}", sections)
    return {"analysis_dir": out_dir, "report": report, "overall": [dict(zip(header, r))
                                                                   for r in rows],
            "ops": [dict(zip(op_header, r)) for r in op_rows], "summary": summary,
            "figures": {k: list(v) for k, v in figures.items()}, "stats": stats_path,
            "dataset": run.export_path if keep_rows else None}


def main(argv: Optional[list[str]] = None) -> int:
    """dj-analyze --config recipe.yaml [--key value ...]"""
    from pipelines.cli.process import log_level, setup_logging
    from pipelines.compat import flag_args
    from pipelines.config import RecipeError, parse_recipe

    argv = flag_args(list(sys.argv[1:] if argv is None else argv))
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    try:
        recipe = parse_recipe(argv)
    except RecipeError as exc:
        print(f"dj-analyze: recipe error: {exc}", file=sys.stderr)
        return 2
    setup_logging(recipe.work_dir, log_level(recipe))
    try:
        result = analyze(recipe)
    except RecipeError as exc:
        print(f"dj-analyze: recipe error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dj-analyze: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        logger.debug("analysis failed", exc_info=True)
        print(f"dj-analyze: failed: {type(exc).__name__}: {exc}\n(traceback in "
              f"{os.path.join(recipe.work_dir, 'run.log')})", file=sys.stderr)
        return 1
    with open(os.path.join(result["analysis_dir"], "overall.md"), encoding="utf-8") as fh:
        print(fh.read())
    print(f"report: {result['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
