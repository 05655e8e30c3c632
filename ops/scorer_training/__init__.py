"""Training of the generation-loss scorer: source photos, edit chains, pair sets, the training
loop, evaluation and full-reference oracles.  No op and no runtime module imports this package
(the shipped weights are loaded by ``ops.scorer.weights``); it needs the ``[train]`` extra,
and the wheel leaves it out (pyproject.toml): it runs from a checkout (editable install).

Training works in a checkout: photos, pair-set caches and the shipped weights live under it
(``REPO``), and the scripts in ``tools/`` (train_scorer, eval_scorer, scorer_oracles,
prepare_scorer_photos) call the ``main`` of run, evaluate, oracles and photos.
"""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
