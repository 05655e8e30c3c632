"""Wall time of the full comparison-figure set of a study (default: recipes/format-comparison.yaml
on the demo images), with the peer measured in the same run: the same figures without the
refinement re-encodes and with the reference tool's interpolation (refine=0,
interpolation linear: a straight line between the two bracketing measurements).

    .venv/bin/python tools/bench/bench_compare.py [--study recipes/format-comparison.yaml]
        [--quality-json PATH] [--repeat 1]

The study must have been measured first (dj-process --config <recipe>), or pass
--quality-json.  Figures go to a temporary directory.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

def run(study, opts) -> tuple[float, dict]:
    from ops.compare.generate import generate_figures
    with tempfile.TemporaryDirectory() as out:
        t0, c0 = time.perf_counter(), time.process_time()
        manifest = generate_figures(study, out, opts)
        dt = time.perf_counter() - t0
        manifest["cpu"] = time.process_time() - c0
        n_files = sum(len(f) for _, _, f in os.walk(os.path.join(out, "comparison")))
    manifest["files"] = n_files
    return dt, manifest


def summary(label: str, dt: float, m: dict) -> str:
    groups = [g for g in m["groups"] if not g.get("skipped")]
    encodes = sum(len(r.get("tries") or []) for g in groups for r in g["measured"])
    sel = sum(g["seconds"]["select_encode_measure"] for g in groups)
    fig = sum(g["seconds"]["figures"] for g in groups)
    return (f"{label:<36} wall {dt:6.1f} s  cpu {m['cpu']:6.1f} s  groups {len(groups)}  "
            f"files {m['files']}  encodes {encodes}  (select+encode+measure {sel:.1f} s, "
            f"figures {fig:.1f} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default=str(REPO / "recipes" / "format-comparison.yaml"))
    ap.add_argument("--quality-json", default=None, help="use this quality.json instead of the "
                    "one the study recipe writes (the recipe's comparison section still applies)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    from pipelines.cli.compare import figure_op
    from ops.compare.study import Study, check_quality, load_study, read_json, recipe_info
    os.chdir(REPO)
    if args.quality_json:
        info = recipe_info(args.study)
        doc = check_quality(read_json(args.quality_json), args.quality_json)
        study = Study(doc.get("study_id") or info["project_name"], doc,
                      os.path.abspath(args.quality_json), info["work_dir"], args.study,
                      info["dataset_dir"], info["recipe"])
    else:
        study = load_study(args.study)
    n_var = sum(len(i["variants"]) for i in study.images)
    print(f"study {study.study_id}: {len(study.images)} images, {n_var} variants; targets "
          f"{[(g.metric, g.values) for g in figure_op(study, {}).options.target_groups]}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f} (shared: compare cpu with wall); python "
          f"{platform.python_version()}")
    for k in range(args.repeat):
        dt, m = run(study, figure_op(study, {}).options)
        print(summary("imgjuicer dj-compare (refine=2)", dt, m))
        dt0, m0 = run(study, figure_op(study, {"refine": 0, "interpolation": "linear"}).options)
        print(summary("peer: reference tool's way (linear, refine=0)", dt0, m0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
