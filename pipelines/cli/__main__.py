"""``python -m pipelines.cli --config recipe.yaml``: dj-process."""
from .process import main

main()
