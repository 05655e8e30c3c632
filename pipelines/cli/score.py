"""dj-score: rank copies of a picture best first (closest to the original).

Several files are scored together: they are grouped into copies of one picture (perceptual
hashes) and each group's derivation tree is reconstructed (``phylogeny``): every copy gets
its rank, the copy it was made from and the fitted transform.  One file (or
``--independent``) is scored by the no-reference network alone."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif",
                  ".tiff", ".avif", ".jxl", ".ppm", ".pgm", ".pnm", ".heic", ".heif"}


def expand(paths: list[str]) -> list[str]:
    """Files as given, folders replaced by the image files under them (recursive, sorted)."""
    out = []
    for p in paths:
        q = Path(p)
        if q.is_dir():
            out += sorted(str(f) for f in q.rglob("*")
                          if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print each group's ranking (``rank score path`` lines, then the parent and fitted
    transform); unreadable files are reported on stderr.  Returns 0 when every file scored,
    1 when some could not be read, 2 on a usage or weights error."""
    ap = argparse.ArgumentParser(
        prog="dj-score",
        description="Rank versions of the same picture, best (closest to the original) "
                    "first.  Scores are in (0, 1), higher = further from the original, and "
                    "only comparable between copies of one image.  Given several files (or "
                    "folders, searched recursively), groups them into copies of one picture "
                    "and reconstructs which copy was made from which.")
    ap.add_argument("files", nargs="+", metavar="FILE_OR_FOLDER")
    ap.add_argument("--weights", help="scorer.pt (default: the shipped weights)")
    ap.add_argument("--json", action="store_true", help="one JSON object per file")
    ap.add_argument("--independent", action="store_true",
                    help="score every file alone with the network (no groups, no tree)")
    ap.add_argument("--threshold", type=int, default=10,
                    help="perceptual-hash distance (bits) within which files are copies")
    ap.add_argument("--sheet", metavar="PNG", help="draw every group as a ranked contact "
                    "sheet with the derivation tree's arrows")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    try:
        a = ap.parse_args(argv)
    except SystemExit as exc:         # argparse exits on --help / bad usage
        return int(exc.code or 0)
    from ops.scorer.weights import Scorer
    files = expand(a.files)
    if not files:
        print("dj-score: no image files found", file=sys.stderr)
        return 2
    try:
        scorer = Scorer(a.weights, threads=a.threads)
    except (FileNotFoundError, ValueError) as exc:
        print(f"dj-score: {exc}", file=sys.stderr)
        return 2
    if a.independent or len(files) == 1:
        if a.sheet:
            print("dj-score: --sheet needs several files scored together", file=sys.stderr)
        return _independent(scorer, files, a.json)
    return _groups(scorer, files, a)


def _independent(scorer, files: list[str], as_json: bool) -> int:
    from ops.image.io import ImageLoadError
    results = scorer.score_files(files)
    ok = sorted(((s, p) for s, p in zip(results, files) if isinstance(s, float)),
                key=lambda t: t[0])
    for rank, (score, path) in enumerate(ok, 1):
        if as_json:
            print(json.dumps({"rank": rank, "score": score, "file": path}))
        else:
            print(f"{rank:4d}  {score:.6f}  {path}")
    bad = [(p, r) for p, r in zip(files, results) if isinstance(r, ImageLoadError)]
    for path, err in bad:
        print(f"dj-score: error: {err}", file=sys.stderr)
    return 1 if bad else 0


def _groups(scorer, files: list[str], a) -> int:
    from ops.image.io import ImageLoadError
    from ops.scorer.phylogeny import group_and_reconstruct, load_copies
    copies, feats, hashes, names, bad = [], [], [], [], []
    for p, got in zip(files, load_copies(files, scorer.k)):
        if isinstance(got, ImageLoadError):
            bad.append(got)
            continue
        copies.append(got[0])
        feats.append(got[1])
        hashes.append(got[2])
        names.append(p)
    scores = scorer.score_features(feats)
    families = group_and_reconstruct(copies, scores, hashes, a.threshold,
                                     progress=len(copies) > 6)
    for gi, fam in enumerate(families, 1):
        if not a.json:
            print(f"group {gi}: {len(fam.members)} "
                  f"cop{'y' if len(fam.members) == 1 else 'ies'}")
        for m in fam.members:
            if a.json:
                print(json.dumps({"group": gi, **m.as_dict(names)}))
                continue
            print(f"{m.rank:4d}  {m.score:.6f}  {m.name}")
            if m.parent is None:
                if len(fam.members) > 1:
                    print("      root: the best copy")
            else:
                flag = " (direction uncertain: the scores decided)" if m.uncertain else ""
                print(f"      <- {names[m.parent]}: {', '.join(m.transform)}"
                      f" (fit error {m.error:.3g}){flag}")
    if len(families) > 1:
        print(f"dj-score: warning: the files are not all copies of one picture: "
              f"{len(families)} groups, never ranked against each other", file=sys.stderr)
    if a.sheet:
        from ops.scorer.sheet import draw_families
        draw_families(families, {i: c.pixels for i, c in enumerate(copies)}, names, a.sheet)
        print(f"dj-score: contact sheet written to {a.sheet}", file=sys.stderr)
    for err in bad:
        print(f"dj-score: error: {err}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
