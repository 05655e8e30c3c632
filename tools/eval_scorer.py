"""Evaluate the generation-loss scorer on held-out photos: pair accuracy, baselines, generations.

Thin script: the code is ``ops.scorer_training.evaluate``; ``python tools/eval_scorer.py --help`` lists the options.
"""
import sys

from ops.scorer_training.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
