"""Train the generation-loss scorer end to end: photos -> pairs -> network -> shipped weights.

    .venv/bin/python tools/train_scorer.py --preset full --threads 1  # ~90 min, 2 cores
    .venv/bin/python tools/train_scorer.py --preset short    # minutes: proves the loop
Pair sets are cached under --work (data/scorer/) by (split, chains, seed); the weights go to
assets_cache/generation_loss/scorer.pt with the training record in the file's "extra".
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

from . import REPO as ROOT

PRESETS = {
    "short": {"chains": 1500, "val_chains": 150, "steps": 1500},
    "full": {"chains": 48000, "val_chains": 1200, "steps": 12000},
}


def pair_set(work: Path, split: str, chains: int, seed: int, workers: int, k: int | None = None,
             augment: bool = False, realistic: float = 0.0, resave: float = 0.0):
    """Build (or load the cached) pair set of a photo split, with ``k`` blocks per copy
    (default ``features.K_BLOCKS``), cached in ``work``; ``augment``: recoloured and
    reduced originals (``chains.make_original``); ``realistic`` / ``resave``: those shares of
    realistic and same-size JPEG re-save chains (``pairsets.chain_copies``)."""
    from .pairsets import cached_pairs
    from ops.scorer.features import K_BLOCKS
    k = K_BLOCKS if k is None else int(k)
    return cached_pairs(work / "photos" / split, chains, seed, k, workers, work, tag=split,
                        augment=augment, realistic=realistic, resave=resave)


def shift_chains(ps, offset: int):
    """``ps`` with its chain numbers moved up by ``offset``: a set of other chains (another
    seed) that ``PairSet.then`` can append to a set whose chains are all below ``offset``."""
    import dataclasses as dc
    return dc.replace(ps, chain=ps.chain + offset)


def _qualities(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    if ":" in text:
        a, b, step = (int(x) for x in text.split(":"))
        return tuple(range(a, b + 1, step))
    return tuple(int(x) for x in text.split(","))


def main(argv=None) -> int:
    from .train import TrainConfig
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="full")
    ap.add_argument("--chains", type=int, help="training chains (overrides the preset)")
    ap.add_argument("--val-chains", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-seed", type=int, help="seed of the training chains (validation: "
                    "this + 1); default --seed, so another --seed alone also draws other data")
    ap.add_argument("--batch-pairs", type=int, default=TrainConfig.batch_pairs)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--width", type=int, default=TrainConfig.width)
    ap.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    ap.add_argument("--dropout", type=float, default=TrainConfig.dropout)
    ap.add_argument("--flip-blocks", action=argparse.BooleanOptionalAction,
                    default=TrainConfig.flip_blocks, help="random flips of each block")
    ap.add_argument("--meta-norm", action=argparse.BooleanOptionalAction,
                    default=TrainConfig.meta_norm,
                    help="spread resolution / file-size inputs to unit range")
    ap.add_argument("--image-stats", action=argparse.BooleanOptionalAction,
                    default=TrainConfig.image_stats,
                    help="quantisation-fit and DCT-spectrum inputs")
    ap.add_argument("--global-stats", action=argparse.BooleanOptionalAction,
                    default=TrainConfig.global_stats,
                    help="whole-image statistics input (features.global_stats)")
    ap.add_argument("--global-dropout", type=float, default=TrainConfig.global_dropout,
                    help="dropout on the standardised whole-image statistics")
    ap.add_argument("--logit-l2", type=float, default=TrainConfig.logit_l2,
                    help="weight of the mean squared logit in the loss")
    ap.add_argument("--qfit-qualities", help="per-block quantisation-fit table qualities: "
                    "'10,20,...' or 'A:B:STEP' (default: the 12 of features.QFIT_QUALITIES)")
    ap.add_argument("--batch-chains", type=int, default=TrainConfig.batch_chains,
                    help="> 0: whole chains per step, every pair inside them (not --batch-pairs)")
    ap.add_argument("--damage-weight", type=float, default=TrainConfig.damage_weight,
                    help="weight of the fit of each copy's logit to its measured damage "
                         "(log10(1 + MSE against the pristine pixels), where the geometry is "
                         "kept); 0 = pairs only")
    ap.add_argument("--damage-head", type=float, default=TrainConfig.damage_head,
                    help="weight of a side task: a head of the net predicts that damage "
                         "(the score stays free); 0 = off")
    ap.add_argument("--image-term", action=argparse.BooleanOptionalAction,
                    default=TrainConfig.image_term,
                    help="add a linear term of the image features to the pooled block score "
                         "(off: they reach the logit only through the block head)")
    ap.add_argument("--family-balance", type=float, default=TrainConfig.family_balance,
                    help="pair sampling weight count(family)**-x (0 = uniform)")
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False,
                    help="training chains start from recoloured, reduced originals in half "
                         "the chains (chains.tone_reduce); validation chains never do")
    ap.add_argument("--realistic", type=float, default=0.0,
                    help="share of training and validation chains that are realistic ones "
                         "(camera / web originals, platform copies and re-uploads: "
                         "ops/scorer_training/realistic.py)")
    ap.add_argument("--resave", type=float, default=0.0,
                    help="share of training chains that are same-size JPEG re-save chains "
                         "(a parent and 1-3 re-saves at its quality or lower: "
                         "ops/scorer_training/resaves.py); validation chains never are")
    ap.add_argument("--replay-chains", type=int, default=0,
                    help="also train on this many chains of the current set drawn with "
                         "--replay-seed (with --init: the chains the initial weights were "
                         "trained on, so fine-tuning on other families keeps them)")
    ap.add_argument("--replay-seed", type=int, default=0,
                    help="chain seed of --replay-chains (the shipped run's: 0)")
    ap.add_argument("--mean-with", help="save the weight-space mean of the trained net and "
                    "these weights (same config; with --init: the initial weights)")
    ap.add_argument("--init", help="start from these weights (same config) instead of "
                    "random ones")
    ap.add_argument("--train-split", choices=("train", "heldout"), default="train",
                    help="photos of the training chains; 'heldout' is a diagnostic only: a net "
                         "trained on the very photos it is evaluated on (other chains of them) "
                         "measures what the inputs allow when unseen photos are not in the way")
    ap.add_argument("--k", type=int, help="blocks per image (default features.K_BLOCKS = 64; "
                    "the weights remember it and score with it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="processes generating pairs")
    ap.add_argument("--work", default=str(ROOT / "data" / "scorer"))
    ap.add_argument("--out", default=str(ROOT / "assets_cache" / "generation_loss" / "scorer.pt"))
    a = ap.parse_args(argv)
    if a.k is not None and not 1 <= a.k <= 4096:
        ap.error("--k must be 1..4096")
    data_seed = a.seed if a.data_seed is None else a.data_seed
    from .evaluate import EVAL_SEED as eval_seed     # the evaluation chains' seed
    verb = ("validate" if data_seed + 1 == eval_seed else
            "train" if a.train_split == "heldout" and data_seed == eval_seed else None)
    if verb:
        ap.error(f"data seed {data_seed} would {verb} on the evaluation chains "
                 f"(held-out photos, seed {eval_seed})")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    p = dict(PRESETS[a.preset])
    for key in ("chains", "val_chains", "steps"):
        if getattr(a, key) is not None:
            p[key] = getattr(a, key)
    work = Path(a.work)
    from .photos import main as prepare_photos
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        failed = prepare_photos(["--out", str(work / "photos"), "--cache", str(work / "cache"),
                                 "--if-stale"])
    if failed:
        raise RuntimeError(f"preparing the scorer photos in {work / 'photos'} failed")
    t0 = time.time()
    train_set = pair_set(work, a.train_split, p["chains"], data_seed, a.workers, a.k,
                         a.augment, a.realistic, a.resave)
    if a.replay_chains > 0:
        if a.replay_seed == data_seed or (a.train_split == "heldout"
                                          and a.replay_seed == eval_seed):
            ap.error("--replay-seed must name other chains than the training and "
                     "evaluation ones")
        train_set = train_set.then(shift_chains(
            pair_set(work, a.train_split, a.replay_chains, a.replay_seed, a.workers, a.k),
            int(train_set.chain.max()) + 1))
    val_set = pair_set(work, "heldout", p["val_chains"], data_seed + 1, a.workers, a.k,
                       realistic=a.realistic)
    t_data = time.time() - t0

    from .train import pair_accuracy, score_set, train
    from ops.scorer.weights import save_weights
    cfg = TrainConfig(steps=p["steps"], batch_pairs=a.batch_pairs, lr=a.lr, width=a.width,
                      weight_decay=a.weight_decay, dropout=a.dropout,
                      flip_blocks=a.flip_blocks, meta_norm=a.meta_norm,
                      image_stats=a.image_stats, global_stats=a.global_stats,
                      global_dropout=a.global_dropout, batch_chains=a.batch_chains,
                      logit_l2=a.logit_l2, damage_weight=a.damage_weight,
                      damage_head=a.damage_head, image_term=a.image_term,
                      qfit_qualities=_qualities(a.qfit_qualities),
                      family_balance=a.family_balance, seed=a.seed,
                      threads=a.threads)
    log = []
    init = None
    if a.init:
        from ops.scorer.weights import load_model
        init = load_model(a.init)
    model = train(train_set, cfg, val=val_set, on_log=log.append, init=init)
    if a.mean_with:
        from ops.scorer.weights import load_model
        from .train import mean_weights
        model = mean_weights(model, load_model(a.mean_with), 0.5)
    val_acc = pair_accuracy(score_set(model, val_set), val_set)
    record = {"preset": a.preset, **p, "seed": a.seed, "data_seed": data_seed,
              "train_split": a.train_split,
              "augment": a.augment, "realistic": a.realistic, "resave": a.resave,
              "replay_chains": a.replay_chains, "replay_seed": a.replay_seed,
              "mean_with": a.mean_with,
              "init": a.init,
              "config": dataclasses.asdict(cfg),
              "train_pairs": len(train_set), "val_pairs": len(val_set),
              "val_pair_accuracy": val_acc, "data_seconds": round(t_data),
              "train_seconds": round(time.time() - t0 - t_data),
              "command": "tools/train_scorer.py " + " ".join(argv if argv is not None
                                                             else sys.argv[1:])}
    out = save_weights(model, a.out, extra={"record": json.dumps(record)})
    log_path = work / f"train_log_{a.preset}_{Path(a.out).stem}.jsonl"
    log_path.write_text("\n".join(json.dumps(r) for r in log))
    print(json.dumps({**record, "weights": str(out), "bytes": out.stat().st_size}))
    return 0
