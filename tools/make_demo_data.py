"""Build the demo data set (data/demo) from photos that installed packages ship.

Thin script: the code is ``pipelines.demo_data``; ``python tools/make_demo_data.py --help`` lists the options.
"""
import sys

from pipelines.demo_data import main

if __name__ == "__main__":
    sys.exit(main())
