"""ops.scorer_training.evaluate (tools/eval_scorer.py): the rotate+JPEG experiment finds JPEG fixed points; pair reports."""

import numpy as np
import pytest
from PIL import Image

from ops.scorer.weights import Scorer
from tests.scorer.synth import photo_like


@pytest.fixture(scope="module")
def ev():
    from ops.scorer_training import evaluate
    return evaluate


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
    assert "| never |" in md and f"| {g['settles_at']} (cycle of 4) |" in md
    assert g["period"] == 4 and o["period"] is None


def _adjacent_pairs(family, **arrays):
    """A PairSet of 2 * len(family) one-block copies whose pair i is (copy 2i, copy 2i + 1),
    chain i, family ``family[i]``; ``arrays`` override or add fields (e.g. ref_mse)."""
    from ops.scorer_training.pairsets import PairSet
    n = 2 * len(family)
    fields = dict(pixels=np.zeros((n, 1, 8, 8, 3), np.uint8),
                  block_meta=np.zeros((n, 1, 1), np.float16),
                  image_meta=np.zeros((n, 1), np.float32), mask=np.ones((n, 1), bool),
                  file_size=np.arange(n), width=np.ones(n, np.int64),
                  height=np.ones(n, np.int64), jpeg_quality=np.zeros(n, np.float32),
                  format=np.array(["PNG"] * n), chain=np.arange(n) // 2,
                  closer=np.arange(0, n, 2), further=np.arange(1, n, 2),
                  family=np.asarray(family), tie=np.zeros(n // 2, bool))
    return PairSet(**(fields | arrays))


def test_baselines_count_ties_half(ev):
    assert ev._baseline(np.array([2, 1, 1]), np.array([1, 2, 1])) == pytest.approx(0.5)


def test_pair_report_gives_wilson_intervals(ev):
    n_copies, fam = 40, np.array(["a"] * 10 + ["b"] * 30)
    ps = _adjacent_pairs(fam[::2])
    z = np.arange(n_copies, dtype=np.float32)          # every further copy scores higher ...
    z[1] = -1.0                                        # ... but the first "a" pair
    r = ev.pair_report(ps, z, 0)
    a, b = r["per_family"]["a"], r["per_family"]["b"]
    assert a["accuracy"] == pytest.approx(0.8) and b["accuracy"] == 1.0
    # 4 of 5 right is known only loosely; 15 of 15 excludes chance but not 90%
    assert a["ci95"][0] < 0.5 < 0.8 < a["ci95"][1] < 1.0
    assert 0.75 < b["ci95"][0] < 0.9 and b["ci95"][1] == pytest.approx(1.0)
    assert r["accuracy_ci95"][0] < r["accuracy"] < r["accuracy_ci95"][1]
    md = ev.markdown({**r, "chains": 20, "seed": 0, "generation_loss": []})
    assert "| a | 5 | 80.0% | " in md and "95% interval" in md
    # keep-the-best-copy view: every chain here is (original, copy)
    assert r["original_vs_copy"]["pairs"] == 20 and r["copy_vs_copy"]["pairs"] == 0
    assert r["best_copy"] == {"chains": 20, "accuracy": pytest.approx(19 / 20),
                              "ci95": r["best_copy"]["ci95"]}
    # a copy with the original's very pixels (a tie) may take the lowest score
    ps.tie[1] = True
    z[3] = z[2] - 1
    assert ev.pair_report(ps, z, 0)["best_copy"]["accuracy"] == pytest.approx(19 / 20)
    z[3], ps.tie[1] = z[2] + 1, False
    # with three copies, a copy-vs-copy pair counts there, not against the original
    ps.chain[2:4] = 0
    ps.chain[4:] -= 1
    ps.closer[1] = 1
    r = ev.pair_report(ps, z, 0)
    assert r["copy_vs_copy"]["pairs"] == 1 and r["original_vs_copy"]["pairs"] == 19
    assert "| chains whose original scores lowest | 19 |" in ev.markdown(
        {**r, "chains": 19, "seed": 0, "generation_loss": []})


def test_gross_error_row_counts_heavy_jpegs_of_better_copies(ev):
    # closer -> further: PNG -> q20 (counted), q80 -> q30 (counted), q50 -> q20 (source too
    # poor), PNG -> q31 (not heavy), WebP -> q10 (counted), PNG -> PNG (not a JPEG)
    fmt = [("PNG", 0, "JPEG", 20), ("JPEG", 80, "JPEG", 30), ("JPEG", 50, "JPEG", 20),
           ("PNG", 0, "JPEG", 31), ("WEBP", 0, "JPEG", 10), ("PNG", 0, "PNG", 0)]
    ps = _adjacent_pairs(["jpeg"] * len(fmt),
                         format=np.array([x for c0, _, f0, _ in fmt for x in (c0, f0)]),
                         jpeg_quality=np.array([x for _, qc, _, qf in fmt for x in (qc, qf)],
                                               np.float32))
    z = np.arange(2 * len(fmt), dtype=np.float32)
    z[3] = -1.0                                  # the q80 -> q30 pair is ordered wrong
    r = ev.pair_report(ps, z, 0)
    row = r["heavy_jpeg_of_better_copy"]
    assert row["pairs"] == 3 and row["accuracy"] == pytest.approx(2 / 3)
    md = ev.markdown({**r, "chains": 6, "seed": 0, "generation_loss": []})
    assert "| q <= 30 JPEG of a non-JPEG or q >= 60 copy (pairs) | 3 | 66.7% |" in md


def test_damage_gap_rows_split_pairs_by_measured_damage(ev):
    # six (closer, further) chains: gaps of -1, 0.1, 0.5, 2, 6 dB of (1 + MSE), one resized
    mc = np.array([9.0, 9.0, 9.0, 9.0, 9.0, 9.0])
    gap_db = np.array([-1.0, 0.1, 0.5, 2.0, 6.0, 0.0])
    mf = 10 * 10 ** (gap_db / 10) - 1
    mf[5] = np.nan
    ref = np.stack([mc, mf], 1).reshape(-1).astype(np.float32)
    n = ref.size
    ps = _adjacent_pairs(["jpeg"] * (n // 2), ref_mse=ref)
    z = np.arange(n, dtype=np.float32)
    z[3] = -5.0                                   # the 0.1 dB pair is ordered wrong
    rows = ev.pair_report(ps, z, 0)["by_damage_gap"]
    assert {k: v["pairs"] for k, v in rows.items()} == {
        "no worse by MSE": 1, "0-0.3 dB": 1, "0.3-1 dB": 1, "1-3 dB": 1, ">= 3 dB": 1,
        "geometry changed": 1}
    assert rows["0-0.3 dB"]["accuracy"] == 0.0 and rows[">= 3 dB"]["accuracy"] == 1.0
    md = ev.markdown({**ev.pair_report(ps, z, 0), "chains": 6, "seed": 0, "generation_loss": []})
    assert "| 0-0.3 dB | 1 | 0.0% |" in md
    assert "| photo |" not in md                  # no generation experiment, no table
    # a pair set built before the measurement has no such rows
    ps.ref_mse = np.full(n, np.nan, np.float32)
    assert ev.pair_report(ps, z, 0)["by_damage_gap"] == {}
    assert "dB of 1 + MSE" not in ev.markdown({**ev.pair_report(ps, z, 0), "chains": 6,
                                               "seed": 0, "generation_loss": []})


def test_parts_report_scores_each_summand_of_the_logit_alone(ev):
    ps = _adjacent_pairs(["a", "a", "b", "b"])      # four (closer, further) pairs
    blocks = np.array([0, 1, 0, 1, 0, 1, 1, 0], np.float32)    # right in a, half right in b
    term = np.array([3, 0, 3, 0, 0, 5, 0, 5], np.float32)      # wrong in a, right in b
    r = ev.parts_report(ps, np.stack([blocks, term], 1))
    assert r["a"] == {"pairs": 2, "logit": 0.0, "pooled_blocks": 1.0, "image_term": 0.0}
    assert r["b"] == {"pairs": 2, "logit": 1.0, "pooled_blocks": 0.5, "image_term": 1.0}
    assert r["all"]["pairs"] == 4 and r["all"]["logit"] == 0.5
    md = ev.markdown({**ev.pair_report(ps, blocks + term, 0), "chains": 4, "seed": 0,
                      "generation_loss": [], "logit_parts": r})
    assert "| a | 2 | 0.0% | 100.0% | 0.0% |" in md
