"""Full-reference oracles (MSE, SSIMULACRA2, Butteraugli) on the scorer's evaluation pairs.

Thin script: the code is ``ops.scorer_training.oracles``; ``python tools/scorer_oracles.py --help`` lists the options.
"""
import sys

from ops.scorer_training.oracles import main

if __name__ == "__main__":
    sys.exit(main())
