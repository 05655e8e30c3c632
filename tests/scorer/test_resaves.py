"""Same-size JPEG re-save chains (ops/scorer_training/resaves.py): the re-upload training family."""
import io
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from ops.scorer_training import resaves as RS
from ops.scorer_training.chains import chain_pairs
from ops.scorer_training.pairsets import build_pairs, chain_copies, is_realistic, is_resave
from ops.scorer.features import file_info
from tests.scorer.synth import photo_like


def test_resave_quality_is_at_or_below_the_parent_and_often_equal():
    rng = np.random.default_rng(0)
    qs = [RS.resave_quality(80, rng) for _ in range(600)]
    assert max(qs) == 80 and min(qs) >= 80 - RS.MAX_GAP
    assert 0.25 < np.mean(np.array(qs) == 80) < 0.42
    assert RS.resave_quality(0, rng) <= 75 and RS.resave_quality(6, rng) >= 5


def test_chains_resave_at_the_same_size_and_no_higher_quality():
    photo = photo_like(300, 400, seed=11)
    subs, equal, steps = Counter(), 0, 0
    for i in range(30):
        copies, fams = RS.make_resave_chain(photo, np.random.default_rng([4, i]))
        assert len(copies) == len(fams) + 1 and RS.FAMILY in fams
        assert set(fams) <= {"platform", RS.FAMILY}
        for k, fam in enumerate(fams):
            if fam != RS.FAMILY:
                continue
            src, new = copies[k], copies[k + 1]
            assert new.format == "JPEG" and new.size == src.size
            q_src, q_new = RS.estimated_quality(src), RS.estimated_quality(new)
            assert q_new <= (q_src or 75)
            equal += q_new == q_src
            steps += 1
            with Image.open(io.BytesIO(new.data)) as im:
                subs[file_info(im, len(new.data)).subsampling] += 1
        # every pair of the chain is ordered, or a tie when the pixels are identical
        for p in chain_pairs(copies, fams):
            assert p.closer < p.further
    assert steps >= 30 and equal >= 5
    assert subs[2] > subs[0] > 0 and subs[1] > 0     # 4:2:0 mostly, 4:4:4 and 4:2:2 too


def test_resave_share_has_its_own_stream_and_leaves_other_chains_alone(tmp_path):
    picks = [is_resave(3, i, 0.25) for i in range(400)]
    assert 60 < sum(picks) < 140
    assert not any(is_resave(3, i, 0.0) for i in range(20))
    # a chain that is not a re-save chain is the very chain a set without them holds
    Image.fromarray(photo_like(200, 260, seed=1)).save(tmp_path / "a.png")
    photos = sorted(tmp_path.glob("*.png"))
    for i in range(12):
        with_r = chain_copies(photos, i, 3, realistic=0.5, resave=0.25)
        without = chain_copies(photos, i, 3, realistic=0.5)
        if is_resave(3, i, 0.25):
            assert RS.FAMILY in with_r[1]
        else:
            assert with_r[1] == without[1]
            assert [c.data for c in with_r[0]] == [c.data for c in without[0]]
    assert any(is_resave(3, i, 0.25) for i in range(12))
    assert any(not is_resave(3, i, 0.25) and is_realistic(3, i, 0.5) for i in range(12))
    ps = build_pairs(tmp_path, n_chains=4, seed=3, k=16, progress=False, resave=1.0)
    assert set(ps.family.tolist()) <= {"platform", "multi_generation", RS.FAMILY}
    assert (ps.family == RS.FAMILY).sum() >= 4


def test_replay_chains_of_another_seed_append_to_a_training_set(tmp_path):
    from ops.scorer_training.run import shift_chains
    from ops.scorer_training.train import ChainBatches
    Image.fromarray(photo_like(200, 240, seed=2)).save(tmp_path / "a.png")
    mixed = build_pairs(tmp_path, n_chains=3, seed=5, k=16, progress=False, resave=0.5)
    replay = build_pairs(tmp_path, n_chains=3, seed=0, k=16, progress=False)
    both = mixed.then(shift_chains(replay, int(mixed.chain.max()) + 1))
    assert len(both) == len(mixed) + len(replay)
    assert np.array_equal(both.chain[:mixed.chain.size], mixed.chain)
    assert both.chain[mixed.chain.size:].min() > mixed.chain.max()
    k = mixed.pixels.shape[0]
    assert np.array_equal(both.pixels[both.closer[len(mixed):]], replay.pixels[replay.closer])
    assert np.all(both.closer[len(mixed):] >= k)
    ChainBatches(both, 2, 0.25, np.random.default_rng(0))      # still grouped by chain


def test_weight_mean_lies_between_the_two_nets():
    from ops.scorer.model import GenerationLossNet
    from ops.scorer_training.train import mean_weights
    a, b = GenerationLossNet(k=8, width=8), GenerationLossNet(k=8, width=8)
    for p in b.parameters():
        p.data.add_(1.0)
    pa = [p.detach().clone() for p in a.parameters()]
    pb = [p.detach().clone() for p in b.parameters()]
    m = mean_weights(a, b, 0.5)
    for x, y, z in zip(pa, pb, m.parameters()):
        assert np.allclose(z.detach().numpy(), (x.numpy() + y.numpy()) / 2, atol=1e-6)
    with pytest.raises(ValueError):
        mean_weights(GenerationLossNet(k=8, width=8), GenerationLossNet(k=8, width=16))
