"""dj-score: rank image files best first (closest to the original) by generation-loss score."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    """Print ``rank score path`` lines, lowest score (best copy) first; unreadable files are
    reported on stderr.  Returns 0 when every file scored, 1 when some could not be read,
    2 on a usage or weights error."""
    ap = argparse.ArgumentParser(
        prog="dj-score",
        description="Rank versions of the same picture, best (closest to the original) "
                    "first.  Scores are in (0, 1), higher = further from the original, and "
                    "only comparable between copies of one image.")
    ap.add_argument("files", nargs="+", metavar="FILE")
    ap.add_argument("--weights", help="scorer.pt (default: the shipped weights)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    try:
        a = ap.parse_args(argv)
    except SystemExit as exc:         # argparse exits on --help / bad usage
        return int(exc.code or 0)
    from ops.image.io import ImageLoadError
    from ops.scorer.weights import Scorer
    try:
        scorer = Scorer(a.weights, threads=a.threads)
    except (FileNotFoundError, ValueError) as exc:
        print(f"dj-score: {exc}", file=sys.stderr)
        return 2
    results = scorer.score_files(a.files)
    ok = sorted(((s, p) for s, p in zip(results, a.files) if isinstance(s, float)),
                key=lambda t: t[0])
    for rank, (score, path) in enumerate(ok, 1):
        if a.json:
            print(json.dumps({"rank": rank, "score": score, "file": path}))
        else:
            print(f"{rank:4d}  {score:.6f}  {path}")
    bad = [(p, r) for p, r in zip(a.files, results) if isinstance(r, ImageLoadError)]
    for path, err in bad:
        print(f"dj-score: error: {err}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
