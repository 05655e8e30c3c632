"""ops.scorer_training.oracles (tools/scorer_oracles.py): full-reference oracles on the evaluation chains."""
import json

import numpy as np
import pytest
from PIL import Image

from ops.scorer_training import transforms as T
from tests.scorer.synth import photo_like


@pytest.fixture(scope="module")
def orc():
    from ops.scorer_training import oracles
    return oracles


def test_measure_turns_back_and_skips_other_geometry(orc):
    px = photo_like(96, 128, seed=7)
    jpg = T.to_jpeg(px, 30).pixels
    mse, s2, ba = orc.measure(px, jpg)
    assert mse > 1 and s2 < 90 and ba > 0.5
    # a copy turned by 90 degrees (as "generations" copies are) measures the same
    turned = orc.measure(px, np.rot90(jpg))
    assert turned == pytest.approx((mse, s2, ba), rel=1e-6)
    assert orc.measure(px, px) == (0.0, 100.0, 0.0)
    assert all(np.isnan(v) for v in orc.measure(px, px[:90]))
    # more damage, worse on every metric
    worse = orc.measure(px, T.to_jpeg(px, 8).pixels)
    assert worse[0] > mse and worse[1] < s2 and worse[2] > ba


def test_report_counts_strict_agreement_per_family(orc):
    # copies 0..5: three chains of (closer, further); metrics as (mse, ssimulacra2, butteraugli)
    m = np.array([[1, 90, 1], [4, 80, 2],          # all agree: further is worse
                  [4, 80, 2], [1, 90, 1],          # all disagree
                  [1, 90, 1], [np.nan] * 3], float)  # not measured (resized)
    s = {"metrics": m, "closer": np.array([0, 2, 4]), "further": np.array([1, 3, 5]),
         "family": np.array(["jpeg", "resave_hq", "resize_down"]),
         "tie": np.zeros(3, bool), "failed": np.array([], str)}
    rep = orc.report(s, scores=np.array([0, 1, 5, 6, 0, 1], float))
    assert rep["measured_pairs"] == 2 and rep["ordered_pairs"] == 3
    assert rep["overall"] == {"pairs": 2, "mse": 0.5, "ssimulacra2": 0.5,
                              "butteraugli": 0.5, "scorer": 1.0}
    assert rep["per_family"]["resave_hq"]["mse"] == 0.0
    assert rep["per_family"]["resize_down"]["pairs"] == 0
    md = orc.markdown(rep)
    assert "| jpeg | 1 | 100.0% | 100.0% | 100.0% | 100.0% |" in md and "resize_down" not in md


def test_cli_matches_the_eval_pair_set_copy_for_copy(orc, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(photo_like(200, 240, seed=40 + i)).save(photos / f"p{i}.png")
    out = tmp_path / "o.json"
    args = ["--photos", str(photos), "--chains", "4", "--seed", "3", "--workers", "1",
            "--cache", str(tmp_path), "--out", str(out), "--markdown", str(tmp_path / "o.md")]
    assert orc.main(args) == 0
    rep = json.loads(out.read_text())
    assert rep["failed_chains"] == 0 and rep["ordered_pairs"] >= 4
    assert 0 < rep["measured_pairs"] <= rep["ordered_pairs"]
    assert 0 <= rep["overall"]["scorer"] <= 1
    cached = sorted(tmp_path.glob("oracles_4_3_*.npz"))
    assert len(cached) == 1 and sorted(tmp_path.glob("pairs_eval_4_3_*.npz"))
    # the cached run gives the same report
    capsys.readouterr()
    assert orc.main(args) == 0
    again = json.loads(out.read_text())
    assert again["overall"] == rep["overall"] and again["per_family"] == rep["per_family"]
    # pairs that are not the eval set's are refused, not silently misaligned
    with np.load(cached[0]) as z:
        broken = {k: z[k] for k in z.files}
    broken["further"] = broken["further"][::-1].copy()
    np.savez(cached[0], **broken)
    with pytest.raises(RuntimeError, match="different pairs"):
        orc.main(args)


def test_cli_rejects_bad_counts(orc):
    with pytest.raises(SystemExit):
        orc.main(["--chains", "0"])
