"""Prepare the scorer's source photos (Debian wallpaper packages, sample photos in wheels) under data/scorer/photos.

Thin script: the code is ``ops.scorer_training.photos``; ``python tools/prepare_scorer_photos.py --help`` lists the options.
"""
import sys

from ops.scorer_training.photos import main

if __name__ == "__main__":
    sys.exit(main())
