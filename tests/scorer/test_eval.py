"""tools/eval_scorer.py: the rotate+JPEG experiment finds JPEG fixed points; pair reports."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ops.scorer.weights import Scorer
from tests.scorer.synth import photo_like

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ev():
    spec = importlib.util.spec_from_file_location("eval_scorer", ROOT / "tools" / "eval_scorer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def scorer():
    return Scorer()          # the shipped weights: the experiment is what is tested here


def test_generation_experiment_stops_at_the_fixed_point(ev, scorer, tmp_path):
    px = photo_like(200, 260, seed=5)
    on_grid, off_grid = tmp_path / "grid.png", tmp_path / "off.png"
    Image.fromarray(np.ascontiguousarray(px[:192, :192])).save(on_grid)
    Image.fromarray(np.ascontiguousarray(px[:197, :197])).save(off_grid)
    g = ev.generation_experiment(scorer, on_grid, 60, 75)
    assert g["settles_at"] is not None and 5 <= g["settles_at"] < 60
    assert max(g["score_at"]) <= g["settles_at"]          # nothing scored past the fixed point
    assert g["size"] == "192x192"
    o = ev.generation_experiment(scorer, off_grid, 30, 75)
    assert o["settles_at"] is None and 30 in o["score_at"]
    # off the grid the damage itself keeps growing with the rounds
    assert o["distance_spearman"] > 0.8
    for r in (g, o):
        assert -1 <= r["spearman_all"] <= 1 and -1 <= r["spearman_logspaced"] <= 1
    md = ev.markdown({"ordered_pairs": 1, "chains": 1, "seed": 0, "accuracy": 1.0,
                      "baselines": {}, "per_family": {}, "generation_loss": [g, o]})
    assert "| never |" in md and f"| {g['settles_at']} |" in md


def test_baselines_count_ties_half(ev):
    assert ev._baseline(np.array([2, 1, 1]), np.array([1, 2, 1])) == pytest.approx(0.5)
