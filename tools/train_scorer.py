"""Train the generation-loss scorer end to end: photos -> pairs -> network -> shipped weights.

Thin script: the code is ``ops.scorer_training.run``; ``python tools/train_scorer.py --help`` lists the options.
"""
import sys

from ops.scorer_training.run import main

if __name__ == "__main__":
    sys.exit(main())
