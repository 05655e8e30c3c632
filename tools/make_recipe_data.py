"""Build the shipped recipes' committed data (recipes/data) from photos that packages ship.

Thin script: the code is ``pipelines.recipe_data``; ``python tools/make_recipe_data.py --help`` lists the options.
"""
import sys

from pipelines.recipe_data import main

if __name__ == "__main__":
    sys.exit(main())
