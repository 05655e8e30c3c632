"""dj-compare: comparison figures and the HTML report of a codec study."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional

from ops.compare.study import StudyError, list_studies, load_study


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dj-compare",
        description="Matched-quality / matched-size comparison figures, Butteraugli distortion "
                    "maps and an HTML report for a codec study (docs/comparison-figures.md).")
    p.add_argument("study", nargs="?", help="study recipe (.yaml), quality.json, or study name "
                   "(recipes/<name>.yaml or outputs/<name>/quality.json)")
    p.add_argument("--crop-size", type=int, default=128, help="crop side before zoom (px)")
    p.add_argument("--zoom", type=int, default=3, help="nearest-neighbour zoom factor")
    p.add_argument("--max-columns", type=int, default=4, help="tiles per figure row")
    p.add_argument("--tile-parameter", default=None,
                   help="what differs between tiles: format (default), crop, resolution or an "
                        "encoder parameter (overrides comparison.tile_parameter)")
    p.add_argument("--source-image", default=None,
                   help="use this measured source image instead of the CV-based choice")
    p.add_argument("--output", default=None,
                   help="figures go to OUTPUT/comparison/ (default: the study's work_dir)")
    p.add_argument("--threads", type=int, default=1, help="encoder / Butteraugli threads")
    p.add_argument("--refine", type=int, default=2,
                   help="extra re-encodes per tile towards a missed target (0 = plain "
                        "interpolation)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--list", action="store_true",
                   help="list studies with quality measurements and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")
    return p


def _print_list() -> int:
    rows = list_studies()
    if not rows:
        print("no study recipes (recipes/*.yaml with quality_report_aggregator) and no "
              "outputs/*/quality.json here")
        return 0
    print(f"{'study':<24} {'measured':<9} {'images':>6} {'variants':>8}  quality.json")
    for r in rows:
        print(f"{r['study']:<24} {'yes' if r['measured'] else 'no':<9} {r['images']:>6} "
              f"{r['variants']:>8}  {os.path.relpath(r['quality_json'])}"
              + (f"  (recipe {r['recipe']})" if r["recipe"] else ""))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Run dj-compare; returns the exit status (0 ok, 2 bad study or arguments)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if args.list:
        return _print_list()
    if not args.study:
        print("dj-compare: give a STUDY (or --list)", file=sys.stderr)
        return 2
    from ops.image.codecs import CodecError
    from ops.image.io import ImageLoadError
    from ops.compare.generate import Options, generate_figures
    try:
        study = load_study(args.study)
        opts = Options(crop_size=args.crop_size, zoom=args.zoom, max_columns=args.max_columns,
                       tile_parameter=args.tile_parameter, source_image=args.source_image,
                       threads=args.threads, report=not args.no_report,
                       refine=args.refine)
        out = args.output or study.work_dir
        manifest = generate_figures(study, out, opts)
    except (StudyError, CodecError, ImageLoadError, FileNotFoundError) as exc:
        print(f"dj-compare: {exc}", file=sys.stderr)
        return 2
    comp = os.path.join(out, "comparison")
    done = [g for g in manifest["groups"] if not g.get("skipped")]
    for g in manifest["groups"]:
        if g.get("skipped"):
            print(f"skipped {g['level'] + '/' if g['level'] else ''}{g['metric']}: {g['skipped']}")
    print(f"{len(done)} figure groups in {manifest['seconds']} s under {comp}")
    if manifest.get("report"):
        print(f"report: {os.path.join(comp, manifest['report'])}")
    return 0 if done else 1
