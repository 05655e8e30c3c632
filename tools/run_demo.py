"""Run the main recipes end to end on the demo data (offline) and say where the results are.

Thin script: the code is ``pipelines.cli.demo``; ``make demo`` runs it after building the data.
"""
import sys

from pipelines.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
