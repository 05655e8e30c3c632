"""Training: the loss orders pairs and ties, runs are reproducible, weights round-trip."""
import numpy as np
import pytest
import torch
from PIL import Image

from ops.scorer_training.pairsets import PairSet, build_pairs
from ops.scorer_training.train import TrainConfig, pair_loss, score_set, train
from ops.scorer.weights import load_model, save_weights
from tests.scorer.synth import photo_like


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    for i in range(2):
        Image.fromarray(photo_like(200, 240, seed=60 + i)).save(d / f"p{i}.png")
    return build_pairs(d, n_chains=6, seed=3, k=16, progress=False)


def test_pair_loss_direction_and_ties():
    lo, hi = torch.tensor([0.0]), torch.tensor([2.0])
    no = torch.tensor([False])
    assert pair_loss(lo, hi, no, 0.5) < pair_loss(hi, lo, no, 0.5)
    yes = torch.tensor([True])
    assert pair_loss(lo, lo, yes, 0.5) == 0 and pair_loss(lo, hi, yes, 0.5) > 0


def test_pair_set_measures_each_copys_damage(pairs):
    first = np.r_[True, pairs.chain[1:] != pairs.chain[:-1]]
    png_orig = first & (pairs.format == "PNG")
    assert png_orig.any() and np.all(pairs.ref_mse[png_orig] == 0)
    known = np.isfinite(pairs.ref_mse)
    assert np.any(known & ~first) and np.any(~known)        # resized copies are unmeasured
    # a measured copy has the original's geometry, turned or not
    w0, h0 = pairs.width[first][pairs.chain], pairs.height[first][pairs.chain]
    same = ((pairs.width == w0) & (pairs.height == h0)) | ((pairs.width == h0) & (pairs.height == w0))
    assert np.all(same[known])


def test_damage_loss_fits_known_copies_only():
    from ops.scorer_training.train import damage_loss, damage_target
    t = torch.from_numpy(damage_target(np.array([0.0, 9.0, np.nan, 99.0], np.float32)))
    assert torch.allclose(t[[0, 1, 3]], torch.tensor([0.0, 1.0, 2.0]))
    z = torch.tensor([0.0, 3.0, 100.0, 6.0])
    assert damage_loss(z, t, torch.tensor(3.0), torch.tensor(0.0)) == 0     # NaN row ignored
    assert damage_loss(z, t, torch.tensor(1.0), torch.tensor(0.0)) > 0
    none = torch.full((2,), float("nan"))
    assert damage_loss(z[:2], none, torch.tensor(1.0), torch.tensor(0.0)) == 0


def test_damage_weight_makes_the_logit_track_measured_damage(pairs):
    from ops.scorer_training.train import damage_target
    known = np.isfinite(pairs.ref_mse)
    t = damage_target(pairs.ref_mse[known])
    fits = {}
    for w in (0.0, 3.0):
        cfg = TrainConfig(steps=150, batch_pairs=16, width=16, threads=1, log_every=50,
                          damage_weight=w, lr=5e-3)
        z = score_set(train(pairs, cfg), pairs)[known]
        a, b = np.polyfit(t, z, 1)
        fits[w] = (np.corrcoef(t, z)[0, 1], np.sqrt(np.mean((z - a * t - b) ** 2)), a)
    # pairs alone only order the copies; the damage term makes the logit an affine, rising
    # function of the measured damage
    assert fits[3.0][2] > 0 and fits[3.0][0] > 0.98
    assert fits[3.0][1] < fits[0.0][1] / 3
    old = PairSet(**{**pairs.__dict__, "ref_mse": np.full(pairs.pixels.shape[0], np.nan,
                                                           np.float32)})
    with pytest.raises(ValueError, match="no measured damage"):
        train(old, TrainConfig(steps=1, batch_pairs=4, width=16, threads=1, damage_weight=1.0))


def test_pair_set_is_ordered_and_saved(pairs, tmp_path):
    assert len(pairs) > 0 and pairs.pixels.shape[1] == 16
    assert np.all(pairs.chain[pairs.closer] == pairs.chain[pairs.further])
    assert np.all(pairs.closer < pairs.further)
    pairs.save(tmp_path / "p.npz")
    back = PairSet.load(tmp_path / "p.npz")
    assert np.array_equal(back.pixels, pairs.pixels) and list(back.family) == list(pairs.family)


def test_a_cached_set_of_more_or_fewer_chains_serves(pairs, tmp_path):
    from ops.scorer_training.pairsets import cached_pairs
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(2):                      # the photos of the `pairs` fixture
        Image.fromarray(photo_like(200, 240, seed=60 + i)).save(d / f"p{i}.png")
    small = build_pairs(d, n_chains=3, seed=3, k=16, progress=False)
    assert 0 < len(small) < len(pairs)
    # the 6-chain set, cached, gives exactly what building 3 chains gives
    big = cached_pairs(d, 6, 3, 16, 1, tmp_path, tag="train", progress=False)
    assert len(list(tmp_path.glob("pairs_train_6_3_k16_*.npz"))) == 1
    cut = cached_pairs(d, 3, 3, 16, 1, tmp_path, tag="train", progress=False)
    assert len(list(tmp_path.glob("pairs_train_3_*.npz"))) == 0       # sliced, not built
    for a in ("pixels", "block_meta", "image_meta", "mask", "file_size", "width", "chain",
              "closer", "further", "family", "tie", "global_stats", "ref_mse", "format"):
        assert np.array_equal(getattr(cut, a), getattr(small, a), equal_nan=a == "ref_mse"), a
    assert int(cut.failed) == 0 and len(big) == len(pairs)
    # ... and a set of 8 chains is the cached 6 plus chains 6 and 7, built alone
    eight = cached_pairs(d, 8, 3, 16, 1, tmp_path, tag="train", progress=False)
    whole = build_pairs(d, n_chains=8, seed=3, k=16, progress=False)
    assert len(list(tmp_path.glob("pairs_train_8_3_k16_*.npz"))) == 1
    for a in ("pixels", "block_meta", "chain", "closer", "further", "family", "tie",
              "global_stats", "ref_mse"):
        assert np.array_equal(getattr(eight, a), getattr(whole, a), equal_nan=a == "ref_mse"), a
    assert len(whole) > len(pairs)
    # other seeds, tags or k never serve it
    other = cached_pairs(d, 3, 4, 16, 1, tmp_path, tag="train", progress=False)
    assert len(list(tmp_path.glob("pairs_train_3_4_k16_*.npz"))) == 1 and len(other) > 0
    # nor does an augmented set serve a plain one, or the other way round
    aug = cached_pairs(d, 3, 3, 16, 1, tmp_path, tag="train", progress=False, augment=True)
    assert len(list(tmp_path.glob("pairs_train_aug1_3_3_k16_*.npz"))) == 1
    assert not np.array_equal(aug.pixels[:5], small.pixels[:5])
    again = cached_pairs(d, 3, 3, 16, 1, tmp_path, tag="train", progress=False)
    assert np.array_equal(again.pixels, small.pixels)


def test_training_is_reproducible_and_weights_round_trip(pairs, tmp_path):
    cfg = TrainConfig(steps=4, batch_pairs=8, width=16, threads=1, log_every=2)
    a, b = train(pairs, cfg), train(pairs, cfg)
    for (n, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), n
    path = save_weights(a, tmp_path / "gl" / "scorer.pt")
    back = load_model(path)
    assert np.allclose(score_set(back, pairs), score_set(a, pairs), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="train_scorer"):
        load_model(tmp_path / "nope.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a generation-loss weights file"):
        load_model(tmp_path / "bad.pt")


def test_flip_blocks_keeps_dct_magnitudes_and_changes_content():
    from ops.scorer.features import dct_blocks
    from ops.scorer_training.train import flip_blocks
    rng = np.random.default_rng(5)
    px = rng.integers(0, 256, size=(3, 16, 8, 8, 3), dtype=np.uint8)
    out = flip_blocks(px, np.random.default_rng(1))
    assert out.shape == px.shape and not np.array_equal(out, px)
    # a flip only changes the sign of odd frequencies: quantisation artifacts survive
    assert np.allclose(np.abs(dct_blocks(out)), np.abs(dct_blocks(px)), atol=1e-3)
    # each block is itself, flipped left-right and / or top-bottom
    for b, o in zip(px.reshape(-1, 8, 8, 3), out.reshape(-1, 8, 8, 3)):
        assert any(np.array_equal(o, v) for v in (b, b[:, ::-1], b[::-1], b[::-1, ::-1]))


def test_meta_norm_and_dropout_round_trip(pairs, tmp_path):
    cfg = TrainConfig(steps=3, batch_pairs=8, width=16, threads=1, log_every=3, dropout=0.3,
                      flip_blocks=True, meta_norm=True)
    m = train(pairs, cfg)
    assert m.config["meta_norm"] and m.config["dropout"] == 0.3 and not m.training
    back = load_model(save_weights(m, tmp_path / "scorer.pt"))
    assert back.config["meta_norm"]
    z = score_set(back, pairs)
    assert np.allclose(z, score_set(m, pairs), atol=1e-6)     # eval mode: dropout is off
    plain = load_model(save_weights(m, tmp_path / "plain.pt"))
    plain._meta_scale.fill_(1.0)
    plain._meta_shift.zero_()
    assert not np.allclose(score_set(plain, pairs), z)         # the spreading is applied


def test_quantisation_fit_sees_an_earlier_jpeg_under_a_high_quality_resave():
    from ops.scorer.features import _reference_tables, dct_blocks, extract_bytes
    from ops.scorer.model import QFIT_QUALITIES, quantisation_fit
    from ops.scorer_training import transforms as T
    px = photo_like(256, 256, seed=71)
    tables = torch.from_numpy(_reference_tables()[[q - 1 for q in QFIT_QUALITIES]]).float()
    i40 = QFIT_QUALITIES.index(40)

    def fit(enc):
        f = extract_bytes(enc.data)
        y = torch.from_numpy(dct_blocks(f.pixels[f.mask]))[:, 0]
        return quantisation_fit(y, tables).mean(0).numpy()[: len(QFIT_QUALITIES)]

    direct = fit(T.to_jpeg(px, 95, "4:4:4"))
    resaved = fit(T.to_jpeg(T.to_jpeg(px, 40).pixels, 95, "4:4:4"))
    # both files say quality 95; only the re-save still sits on the quality-40 grid
    assert resaved[i40] < 0.7 < direct[i40]
    assert abs(fit(T.to_png(px))[i40] - 1.0) < 0.2           # unquantised: ~uniform offsets


def test_family_balance_weights():
    from ops.scorer_training.train import family_weights
    fam = np.array(["a"] * 90 + ["b"] * 10)
    assert family_weights(fam, 0) is None
    w = family_weights(fam, 1.0)
    assert np.isclose(w[:90].sum(), 0.5) and np.isclose(w[90:].sum(), 0.5)
    w = family_weights(fam, 0.5)
    assert 0.5 < w[:90].sum() < 0.9 and np.isclose(w.sum(), 1.0)


def test_image_stats_model_trains_and_round_trips(pairs, tmp_path):
    cfg = TrainConfig(steps=3, batch_pairs=8, width=16, threads=1, log_every=3,
                      image_stats=True, family_balance=0.5)
    m = train(pairs, cfg)
    back = load_model(save_weights(m, tmp_path / "s.pt"))
    assert back.config["image_stats"] and hasattr(back, "_qtables")
    assert np.allclose(score_set(back, pairs), score_set(m, pairs), atol=1e-6)


def test_scores_keep_the_logit_order_far_into_the_sigmoid_tail(pairs, tmp_path):
    from ops.scorer.features import Features
    from ops.scorer.weights import Scorer
    m = train(pairs, TrainConfig(steps=2, batch_pairs=8, width=16, threads=1, log_every=2))
    with torch.no_grad():
        m.image_term.bias.fill_(25.0)                  # every logit lands near 25
    scorer = Scorer(save_weights(m, tmp_path / "hot.pt"))
    feats = [Features(pairs.pixels[i], pairs.block_meta[i].astype(np.float32),
                      pairs.image_meta[i], pairs.mask[i], pairs.global_stats[i])
             for i in range(6)]
    z = score_set(scorer.model, pairs)[:6]
    s = scorer.score_features(feats)
    assert np.all(z > 17) and np.all(s < 1.0)          # float32 would give exactly 1.0
    assert len(np.unique(z)) == len(np.unique(s))
    assert np.array_equal(np.argsort(s, kind="stable"), np.argsort(z, kind="stable"))


def test_copy_features_equal_a_fresh_decode():
    from ops.scorer_training import transforms as T
    from ops.scorer_training.pairsets import copy_features
    from ops.scorer.features import extract_bytes
    px = photo_like(120, 136, seed=73)
    for c in (T.to_png(px), T.to_jpeg(px, 40, "4:2:2"), T.to_gif(px, 64, True),
              T.to_webp(px, 80, lossless=True), T.to_webp(px, 50)):
        c.pixels                                          # decoded once, as a chain does
        f, info = copy_features(c, 32)
        g = extract_bytes(c.data, 32)
        for name in ("pixels", "block_meta", "image_meta", "mask", "global_stats"):
            assert np.array_equal(getattr(f, name), getattr(g, name)), (c.format, name)
        assert (info.width, info.height) == (136, 120)


def test_global_stats_model_keeps_its_standardisation_and_needs_the_stats(pairs, tmp_path):
    from ops.scorer.features import GLOBAL_DIM
    from ops.scorer.model import tensors
    m = train(pairs, TrainConfig(steps=3, batch_pairs=8, width=16, threads=1, log_every=3,
                                 global_stats=True, global_dropout=0.2))
    assert m.global_dim == GLOBAL_DIM == pairs.global_stats.shape[1]
    g = pairs.global_stats.astype(np.float64)
    assert np.allclose(m.g_mean.numpy(), g.mean(0), atol=1e-5)
    back = load_model(save_weights(m, tmp_path / "g.pt"))
    assert torch.equal(back.g_mean, m.g_mean) and torch.equal(back.g_std, m.g_std)
    assert np.allclose(score_set(back, pairs), score_set(m, pairs), atol=1e-6)
    # the statistics change the score, and a net built with them refuses inputs without them
    t = tensors(pairs.pixels[:4], pairs.block_meta[:4], pairs.image_meta[:4], pairs.mask[:4],
                pairs.global_stats[:4])
    with torch.no_grad():
        z = back(**t)
        t2 = dict(t, global_stats=t["global_stats"].flip(0))
        assert not torch.allclose(z, back(**t2))
        with pytest.raises(ValueError, match="global statistics"):
            back(**{k: v for k, v in t.items() if k != "global_stats"})


def test_pair_sets_built_before_global_stats_still_load(pairs, tmp_path):
    from ops.scorer_training.pairsets import ARRAYS
    np.savez(tmp_path / "old.npz", **{a: getattr(pairs, a) for a in ARRAYS
                                      if a not in ("global_stats", "ref_mse")})
    old = PairSet.load(tmp_path / "old.npz")
    assert old.global_stats.shape == (pairs.pixels.shape[0], 0)
    assert np.isnan(old.ref_mse).all() and old.ref_mse.shape == (pairs.pixels.shape[0],)
    with pytest.raises(ValueError, match="rebuild"):
        train(old, TrainConfig(steps=1, batch_pairs=4, width=16, threads=1))
    m = train(old, TrainConfig(steps=1, batch_pairs=4, width=16, threads=1, global_stats=False))
    assert m.global_dim == 0 and np.isfinite(score_set(m, old)).all()


def test_chain_batches_take_whole_chains_and_visit_every_chain(pairs):
    from ops.scorer_training.train import ChainBatches, family_weights
    cb = ChainBatches(pairs, 2, 0.5, np.random.default_rng(0))
    seen = set()
    for _ in range(len(cb.chains) // 2):            # one epoch
        copies, idx = cb.next()
        picked = set(pairs.chain[copies].tolist())
        assert len(picked) == 2 and not picked & seen
        seen |= picked
        # every copy of the picked chains, and every pair among them, nothing else
        assert sorted(copies.tolist()) == np.flatnonzero(np.isin(pairs.chain, list(picked))).tolist()
        assert sorted(idx.tolist()) == np.flatnonzero(
            np.isin(pairs.chain[pairs.closer], list(picked))).tolist()
    assert seen == set(cb.chains.tolist())
    # the family balance becomes per-pair loss weights, in proportion to the sampling ones
    w = family_weights(pairs.family, 0.5)
    assert np.allclose(cb.weight / cb.weight.sum(), w, rtol=1e-5)


def test_weighted_pair_loss_is_the_weighted_mean():
    lo, hi = torch.tensor([0.0, 1.0]), torch.tensor([2.0, 0.0])
    no = torch.tensor([False, False])
    each = [pair_loss(lo[i:i + 1], hi[i:i + 1], no[:1], 0.5) for i in range(2)]
    assert torch.isclose(pair_loss(lo, hi, no, 0.5, torch.ones(2)), pair_loss(lo, hi, no, 0.5))
    got = pair_loss(lo, hi, no, 0.5, torch.tensor([3.0, 1.0]))
    assert torch.isclose(got, (3 * each[0] + each[1]) / 4)


def test_training_on_chain_batches_is_reproducible(pairs):
    cfg = TrainConfig(steps=4, batch_chains=2, width=16, threads=1, log_every=2)
    a, b = train(pairs, cfg), train(pairs, cfg)
    for (n, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), n
    c = train(pairs, TrainConfig(steps=4, batch_pairs=8, width=16, threads=1, log_every=2))
    assert not torch.equal(a.head[0].weight, c.head[0].weight)     # a different sampler


def test_finer_quantisation_fit_tables_train_and_round_trip(pairs, tmp_path):
    from ops.scorer.features import _reference_tables
    quals = list(range(20, 101, 4))
    m = train(pairs, TrainConfig(steps=2, batch_pairs=8, width=16, threads=1, log_every=2,
                                 qfit_qualities=tuple(quals)))
    assert m.config["qfit_qualities"] == quals
    assert torch.equal(m._qtables, torch.from_numpy(_reference_tables()[[q - 1 for q in quals]]))
    back = load_model(save_weights(m, tmp_path / "fine.pt"))
    assert back.config["qfit_qualities"] == quals
    assert np.allclose(score_set(back, pairs), score_set(m, pairs), atol=1e-6)
    with pytest.raises(ValueError, match="qualities 1..100"):
        from ops.scorer.model import GenerationLossNet
        GenerationLossNet(image_stats=True, qfit_qualities=[0, 50])


def test_damage_head_learns_the_damage_and_leaves_the_score_alone(pairs, tmp_path):
    from ops.scorer.model import GenerationLossNet, tensors
    from ops.scorer_training.train import damage_target
    cfg = TrainConfig(steps=150, batch_pairs=16, width=16, threads=1, log_every=50,
                      damage_head=3.0, lr=5e-3)
    m = train(pairs, cfg)
    assert m.config["damage_head"] and m.damage is not None
    t = tensors(pairs.pixels, pairs.block_meta, pairs.image_meta, pairs.mask, pairs.global_stats)
    with torch.no_grad():
        z, dmg = m(**t, with_damage=True)
        assert torch.equal(z, m(**t))                 # the side output does not touch the score
    known = np.isfinite(pairs.ref_mse)
    target = damage_target(pairs.ref_mse[known])
    assert np.corrcoef(dmg.numpy()[known], target)[0, 1] > 0.98
    assert np.abs(dmg.numpy()[known] - target).mean() < 0.2
    back = load_model(save_weights(m, tmp_path / "head.pt"))
    assert back.config["damage_head"] and torch.equal(back.damage.weight, m.damage.weight)
    with pytest.raises(ValueError, match="without damage_head"):
        GenerationLossNet(k=16, width=16)(**{k: v for k, v in t.items() if k != "global_stats"},
                                         with_damage=True)


def _train_tool():
    from ops.scorer_training import run
    return run


def test_train_tool_never_trains_on_the_evaluation_chains(tmp_path, capsys):
    ts = _train_tool()
    for split, seed, verb in (("heldout", "20261122", "train"), ("heldout", "20261121", "validate"),
                              ("train", "20261121", "validate")):
        with pytest.raises(SystemExit) as e:
            ts.main(["--train-split", split, "--data-seed", seed, "--work", str(tmp_path)])
        assert e.value.code == 2
        assert f"would {verb} on the evaluation chains" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())         # refused before anything was prepared


def test_train_tool_caches_pair_sets_per_block_count(tmp_path):
    ts = _train_tool()
    (tmp_path / "photos" / "train").mkdir(parents=True)
    Image.fromarray(photo_like(120, 150, seed=70)).save(tmp_path / "photos" / "train" / "a.png")
    small = ts.pair_set(tmp_path, "train", 2, 0, 1, k=8)
    default = ts.pair_set(tmp_path, "train", 2, 0, 1)
    assert small.pixels.shape[1] == 8 and default.pixels.shape[1] == 64
    names = sorted(p.name for p in tmp_path.glob("pairs_*.npz"))
    assert len(names) == 2 and sum("_k8_" in n for n in names) == 1
    # the same chains, a second call loads the cache
    assert np.array_equal(ts.pair_set(tmp_path, "train", 2, 0, 1, k=8).pixels, small.pixels)
    assert np.array_equal(small.closer, default.closer) and list(small.family) == list(default.family)
    # other photos: a cache of their own, never the old one
    Image.fromarray(photo_like(120, 150, seed=71)).save(tmp_path / "photos" / "train" / "a.png")
    other = ts.pair_set(tmp_path, "train", 2, 0, 1, k=8)
    assert len(list(tmp_path.glob("pairs_*.npz"))) == 3
    assert not np.array_equal(other.pixels, small.pixels)


def test_without_the_image_term_the_logit_is_the_pooled_block_score(pairs, tmp_path):
    from ops.scorer.model import tensors
    t = tensors(pairs.pixels, pairs.block_meta, pairs.image_meta, pairs.mask, pairs.global_stats)
    mask = t["mask"]
    gaps = {}
    for term in (True, False):
        m = train(pairs, TrainConfig(steps=20, batch_pairs=8, width=16, threads=1, log_every=10,
                                     image_term=term))
        assert m.config["image_term"] is term
        assert any(k.startswith("image_term.") for k in m.state_dict()) is term
        heads = []
        hook = m.head[2].register_forward_hook(lambda mod, i, o: heads.append(o))   # (B*K, 2)
        with torch.no_grad():
            z = m(**t)
        hook.remove()
        out = heads[0].reshape(mask.shape[0], mask.shape[1], 2)
        w = torch.softmax(out[..., 1].masked_fill(~mask, float("-inf")), 1)
        pooled = (w * out[..., 0]).sum(1)
        gaps[term] = (z - pooled).abs().max().item()
        parts = score_set(m, pairs, parts=True)          # (pooled, image term) per copy
        assert np.allclose(parts[:, 0], pooled.numpy(), atol=1e-5)
        assert np.allclose(parts.sum(1), z.numpy(), atol=1e-5)
        assert term or not parts[:, 1].any()
        back = load_model(save_weights(m, tmp_path / f"term{term}.pt"))
        assert back.config["image_term"] is term
        assert np.allclose(score_set(back, pairs), score_set(m, pairs), atol=1e-6)
    assert gaps[False] < 1e-5 and gaps[True] > 1e-3


def test_training_goes_on_from_initial_weights(pairs, tmp_path):
    from ops.scorer.model import GenerationLossNet
    cfg = TrainConfig(steps=3, batch_pairs=8, width=16, seed=0, threads=1)
    first = train(pairs, cfg)
    path = save_weights(first, tmp_path / "a.pt")
    init = load_model(path)
    g_mean = init.g_mean.clone()
    before = {k: v.clone() for k, v in init.state_dict().items()}
    more = train(pairs, cfg, init=init)
    assert more is init and torch.equal(more.g_mean, g_mean)      # standardisation kept
    assert any(not torch.equal(before[k], v) for k, v in more.state_dict().items())
    with pytest.raises(ValueError, match="inputs differ"):
        train(pairs, cfg, init=GenerationLossNet(k=4, width=16))
