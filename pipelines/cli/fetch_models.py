"""tools/fetch_models.py: download model weights into assets_cache/ (run where a network
exists; copy the folder after).

    python tools/fetch_models.py                 # defaults: CLIP, BLIP ITM, FastSAM-x, FastSAM-s
    python tools/fetch_models.py FastSAM-s.pt openai/clip-vit-base-patch32
    python tools/fetch_models.py --recipe recipes/imgdiff-dataset.yaml   # what a recipe needs
    python tools/fetch_models.py --list          # what is known and what is already on disk
    python tools/fetch_models.py --dry-run NAME  # where NAME would go, without downloading

The downloading is ``ops.models.fetch``; this module is its command line (``--recipe`` reads a
recipe, which is why it lives with the other command lines and not in the runtime).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops.models.assets import assets_dir, offline_reason
from ops.models.fetch import (DEFAULTS, ULTRALYTICS_RELEASE, FetchError, fetch, plan_for)


def recipe_models(recipe: str) -> list[str]:
    """Every model name the ops of ``recipe`` declare (present or not), in recipe order."""
    from ops.models.requirements import specs_of
    from pipelines.config import build_ops, parse_recipe
    names: list[str] = []
    for op in build_ops(parse_recipe(["--config", recipe])):
        for spec in specs_of(op):
            if spec.name not in names:
                names.append(spec.name)
    return names


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="models to fetch (default: the four defaults)")
    ap.add_argument("--recipe", action="append", default=[],
                    help="also fetch every model this recipe's ops need (repeatable)")
    ap.add_argument("--list", action="store_true", help="list known models and what is on disk")
    ap.add_argument("--dry-run", action="store_true", help="show where each name would go")
    ap.add_argument("--force", action="store_true", help="fetch again even if present")
    ap.add_argument("--assets", type=Path, default=None,
                    help="target folder (default: $IMGJUICER_ASSETS or <repo>/assets_cache)")
    ap.add_argument("--ultralytics-release", default=ULTRALYTICS_RELEASE,
                    help=f"ultralytics/assets release holding .pt files ({ULTRALYTICS_RELEASE})")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    root = (args.assets or assets_dir()).expanduser().resolve()
    if args.list:
        print(f"assets dir: {root}")
        for alias, name in DEFAULTS.items():
            p = plan_for(name, root)
            print(f"  {alias:<10} {name:<34} {'present' if p.present() else 'missing'}  "
                  f"{p.target}")
        return 0
    names = list(args.names)
    try:
        for r in args.recipe:
            names += [n for n in recipe_models(r) if n not in names]
    except Exception as exc:  # a recipe that does not parse
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        plans = [plan_for(n, root) for n in (names or list(DEFAULTS.values()))]
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        for p in plans:
            print(f"{p.name} [{p.kind}] -> {p.target}"
                  f"{' (present)' if p.present() else ''}")
        return 0
    todo = [p for p in plans if args.force or not p.present()]
    for p in plans:
        if p not in todo:
            print(f"{p.name}: already in {p.target}")
    if todo and offline_reason():
        print(f"error: downloads are off ({offline_reason()}); unset it to fetch "
              f"{', '.join(p.name for p in todo)}", file=sys.stderr)
        return 1
    failed = 0
    for p in todo:
        print(f"{p.name}: fetching into {p.target} ...", flush=True)
        try:
            fetch(p, args.ultralytics_release)
            print(f"{p.name}: done")
        except Exception as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
