"""Prepare the data imgjuicer needs offline: WordNet for nltk, built from Debian's files.

Run by tools/install.sh (so by `make demo` / `make test`); idempotent and quick once done.
"""
from __future__ import annotations

import sys


def main() -> int:
    from ops.imgdiff.wordnet_setup import WordNetMissing, build_wordnet_dir
    try:
        path = build_wordnet_dir()
    except WordNetMissing as exc:
        print(f"setup_offline_data: {exc}", file=sys.stderr)
        return 1
    print(f"WordNet for nltk: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
