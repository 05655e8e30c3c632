"""Siamese training of the generation-loss net on (closer, further) pairs, seeded."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .pairsets import PairSet
from ops.scorer.model import GenerationLossNet, tensors

logger = logging.getLogger("imgjuicer")


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_pairs: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    width: int = 64
    tie_weight: float = 0.5       # weight of the "identical pixels -> equal scores" term
    logit_l2: float = 1e-3        # keeps logits in a range where sigmoid scores stay distinct
    meta_jitter: float = 0.002    # noise on size/resolution metadata (anti-memorisation)
    dropout: float = 0.2          # on the per-block DCT and pixel features
    flip_blocks: bool = True      # random horizontal / vertical flips of each block
    meta_norm: bool = True        # resolution / file size inputs spread to unit range
    image_stats: bool = True      # quantisation fit + mean DCT spectrum inputs (model.py)
    family_balance: float = 0.25  # pairs drawn with weight count(family) ** -balance (model card: "Family balance")
    global_stats: bool = True     # whole-image statistics input (features.global_stats)
    global_dropout: float = 0.3   # dropout on those (standardised) statistics
    qfit_qualities: tuple[int, ...] | None = None   # per-block quantisation-fit tables (model)
    batch_chains: int = 0         # > 0: each step takes this many whole chains and learns
    #                               from every pair inside them (see ChainBatches)
    damage_weight: float = 0.0    # > 0: also fit each copy's logit to its measured damage
    #                               (damage_loss), where the pair set knows it
    damage_head: float = 0.0      # > 0: weight of a side task instead: a head of the net
    #                               predicts the measured damage (model damage_head)
    image_term: bool = True       # linear image-feature term added to the pooled block score
    seed: int = 0
    threads: int = 2
    log_every: int = 100


def pair_loss(z_closer: torch.Tensor, z_further: torch.Tensor, tie: torch.Tensor,
              tie_weight: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Logistic loss on the logit difference for ordered pairs (further must score higher);
    squared difference for tied pairs (a lossless re-save must score the same).  Mean over
    the pairs, or their ``weight``-weighted mean."""
    diff = z_further - z_closer
    ordered = F.softplus(-diff)
    tied = tie_weight * diff ** 2
    per_pair = torch.where(tie, tied, ordered)
    if weight is None:
        return per_pair.mean()
    return (per_pair * weight).sum() / weight.sum().clamp_min(1e-12)


def damage_target(ref_mse: np.ndarray) -> np.ndarray:
    """A copy's measured damage as the damage terms use it: log10(1 + MSE against the
    pristine pixels), 0 for a pristine copy, ~0.5 for a camera JPEG at quality 95, ~2 for
    quality 20; NaN where unknown."""
    return np.log10(1.0 + ref_mse.astype(np.float64)).astype(np.float32)


def damage_loss(z: torch.Tensor, target: torch.Tensor, scale: torch.Tensor,
                shift: torch.Tensor) -> torch.Tensor:
    """Huber distance of ``z`` to ``scale * target + shift`` over the copies whose target is
    known (not NaN); 0 when there is none.  The pair loss only says which copy of a pair is
    worse; this says by how much, for every copy whose damage can be measured (geometry
    kept: re-encodes, quantisation, rotations).  ``z`` is the logit (``damage_weight``, with
    ``scale`` kept positive by the caller and learnt with ``shift``) or the side head's
    output (``damage_head``, scale 1, shift 0).  Measured on the full set, fitting the logit
    cost 1.9 points of validation accuracy and the side head gained nothing at the end of
    training (model card: measured damage): both stay off by default."""
    known = ~torch.isnan(target)
    if not bool(known.any()):
        return z.sum() * 0.0
    return F.smooth_l1_loss(z[known], scale * target[known] + shift)


class ChainBatches:
    """Batches of whole chains.  A chain of n copies holds n(n-1)/2 pairs, so a step that
    runs the net on the copies of C chains (about 4 copies each) learns from ~7 pairs per
    chain: about 3.5x the pairs per forward pass of drawing pairs one by one, which cost up
    to two fresh copies each.  Chains are visited in a fresh random order every epoch; the
    family balance moves from sampling into per-pair loss weights."""

    def __init__(self, ps: PairSet, chains: int, balance: float, gen: np.random.Generator):
        self.c, self.gen = int(chains), gen
        n_chain = int(ps.chain.max()) + 1 if ps.chain.size else 0
        # copies and pairs are stored chain by chain (build_pairs): ranges by searchsorted
        if ps.chain.size and np.any(np.diff(ps.chain) < 0):
            raise ValueError("pair set copies are not grouped by chain")
        pair_chain = ps.chain[ps.closer]
        if pair_chain.size and np.any(np.diff(pair_chain) < 0):
            raise ValueError("pair set pairs are not grouped by chain")
        ids = np.arange(n_chain + 1)
        self.copy_at = np.searchsorted(ps.chain, ids)
        self.pair_at = np.searchsorted(pair_chain, ids)
        self.chains = np.flatnonzero(np.diff(self.pair_at) > 0)   # chains with any pair
        if self.chains.size == 0:
            raise ValueError("no chain in the pair set has a pair to learn from")
        w = family_weights(ps.family, balance)
        self.weight = (np.ones(len(ps)) if w is None else w * len(ps)).astype(np.float32)
        self.order, self.pos = gen.permutation(self.chains), 0

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """(copy indices, pair indices) of the next C chains."""
        if self.pos + self.c > self.order.size:
            self.order, self.pos = self.gen.permutation(self.chains), 0
        pick = self.order[self.pos:self.pos + self.c]
        self.pos += self.c
        copies = np.concatenate([np.arange(self.copy_at[i], self.copy_at[i + 1]) for i in pick])
        pairs = np.concatenate([np.arange(self.pair_at[i], self.pair_at[i + 1]) for i in pick])
        return copies, pairs


def family_weights(family: np.ndarray, balance: float) -> np.ndarray | None:
    """Sampling probability of each pair, ``count(its family) ** -balance`` normalised: 0
    draws pairs uniformly (multi-generation pairs, over half of all, dominate), 1 gives every
    family the same share."""
    if balance <= 0:
        return None
    _, inv, counts = np.unique(family, return_inverse=True, return_counts=True)
    w = counts.astype(np.float64)[inv] ** -balance
    return w / w.sum()


def flip_blocks(pixels: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Flip every 8x8 block left-right and / or top-bottom at random.  A flip keeps a block
    on the JPEG grid and only changes the sign of odd DCT frequencies, so compression
    artifacts survive exactly while the content the net could memorise changes."""
    out = pixels.copy()
    lr = gen.random(pixels.shape[:2]) < 0.5
    tb = gen.random(pixels.shape[:2]) < 0.5
    out[lr] = out[lr][:, :, ::-1]
    out[tb] = out[tb][:, ::-1]
    return out


def _batch(ps: PairSet, idx: np.ndarray, gen: np.random.Generator | None, jitter: float,
           flip: bool = False, copies: np.ndarray | None = None):
    """Inputs for the copies of pairs ``idx`` (unique copies, each computed once; or exactly
    ``copies`` when given, which must hold every copy the pairs name)."""
    a, b = ps.closer[idx], ps.further[idx]
    if copies is None:
        uniq, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    else:
        uniq = np.sort(copies)
        inv = np.searchsorted(uniq, np.concatenate([a, b]))
    meta = ps.image_meta[uniq].copy()
    if gen is not None and jitter > 0:
        meta[:, :4] += gen.normal(0.0, jitter, size=(len(uniq), 4)).astype(np.float32)
    pixels = ps.pixels[uniq]
    if gen is not None and flip:
        pixels = flip_blocks(pixels, gen)
    t = tensors(pixels, ps.block_meta[uniq], meta, ps.mask[uniq], ps.global_stats[uniq])
    t["_damage"] = torch.from_numpy(damage_target(ps.ref_mse[uniq]) if ps.ref_mse.size
                                    else np.full(len(uniq), np.nan, np.float32))
    n = len(idx)
    return t, torch.from_numpy(inv[:n]), torch.from_numpy(inv[n:])


def score_set(model: GenerationLossNet, ps: PairSet, batch: int = 256,
              parts: bool = False) -> np.ndarray:
    """Logits of every copy in a pair set (eval mode, no grad); ``parts``: (N, 2), the pooled
    block score and the image term of each logit (model ``with_parts``)."""
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, ps.pixels.shape[0], batch):
            sl = slice(s, s + batch)
            t = tensors(ps.pixels[sl], ps.block_meta[sl], ps.image_meta[sl], ps.mask[sl],
                        ps.global_stats[sl])
            r = model(**t, with_parts=parts)
            out.append(torch.stack(r, 1).numpy() if parts else r.numpy())
    if out:
        return np.concatenate(out)
    return np.zeros((0, 2) if parts else 0, np.float32)


def pair_accuracy(z: np.ndarray, ps: PairSet) -> float:
    """Share of ordered pairs whose further copy has the higher logit (ties excluded)."""
    o = ~ps.tie
    if not o.any():
        return float("nan")
    return float(np.mean(z[ps.further[o]] > z[ps.closer[o]]))


def train(ps: PairSet, cfg: TrainConfig, val: PairSet | None = None,
          on_log=None, init: GenerationLossNet | None = None) -> GenerationLossNet:
    """Train from scratch, or go on from ``init`` (a loaded net of the same inputs: its
    standardisation of the whole-image statistics is kept); same data + config + seed ->
    same weights (single-process CPU)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    gen = np.random.default_rng(cfg.seed)
    k = ps.pixels.shape[1]
    g_dim = ps.global_stats.shape[1] if cfg.global_stats else 0
    if cfg.global_stats and not g_dim:
        raise ValueError("global_stats=True but the pair set has no global statistics "
                         "(built before them): rebuild it")
    model = init if init is not None else GenerationLossNet(k=k, width=cfg.width, dropout=cfg.dropout,
                              meta_norm=cfg.meta_norm, image_stats=cfg.image_stats,
                              global_dim=g_dim, global_dropout=cfg.global_dropout,
                              qfit_qualities=(None if cfg.qfit_qualities is None
                                              else list(cfg.qfit_qualities)),
                              damage_head=cfg.damage_head > 0, image_term=cfg.image_term)
    if init is not None and (init.config["k"] != k or init.global_dim != g_dim):
        raise ValueError("the initial net's inputs differ from the pair set's")
    if g_dim and init is None:
        g = ps.global_stats.astype(np.float64)
        model.g_mean.copy_(torch.from_numpy(g.mean(0)))
        model.g_std.copy_(torch.from_numpy(np.maximum(g.std(0), 1e-3)))
    if max(cfg.damage_weight, cfg.damage_head) > 0 and not np.any(np.isfinite(ps.ref_mse)):
        raise ValueError("damage_weight / damage_head > 0 but the pair set has no measured "
                         "damage (ref_mse; built before it): rebuild it")
    groups = [{"params": list(model.parameters())}]
    if cfg.damage_weight > 0:
        # logit ~ softplus(raw_scale) * damage + shift (training only, not saved)
        raw_scale = torch.nn.Parameter(torch.tensor(2.0))
        shift = torch.nn.Parameter(torch.tensor(0.0))
        groups.append({"params": [raw_scale, shift], "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, cfg.steps // 50)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps)
                                                                       / cfg.steps)))
    n = len(ps)
    order = gen.permutation(n)
    weights = family_weights(ps.family, cfg.family_balance)
    chains = (ChainBatches(ps, cfg.batch_chains, cfg.family_balance, gen)
              if cfg.batch_chains > 0 else None)
    pos, t0, run_loss, run_acc = 0, time.time(), 0.0, 0.0
    for step in range(cfg.steps):
        model.train()
        copies, pw = None, None
        if chains is not None:
            copies, idx = chains.next()
            pw = torch.from_numpy(chains.weight[idx])
        elif weights is not None:
            idx = gen.choice(n, size=cfg.batch_pairs, p=weights)
        else:
            if pos + cfg.batch_pairs > n:
                order, pos = gen.permutation(n), 0
            idx = order[pos:pos + cfg.batch_pairs]
            pos += cfg.batch_pairs
        t, ia, ib = _batch(ps, idx, gen, cfg.meta_jitter, cfg.flip_blocks, copies)
        damage = t.pop("_damage")
        if cfg.damage_head > 0:
            z, dmg = model(**t, with_damage=True)
        else:
            z = model(**t)
        tie = torch.from_numpy(ps.tie[idx])
        loss = (pair_loss(z[ia], z[ib], tie, cfg.tie_weight, pw)
                + cfg.logit_l2 * (z ** 2).mean())
        if cfg.damage_weight > 0:
            loss = loss + cfg.damage_weight * damage_loss(z, damage, F.softplus(raw_scale),
                                                          shift)
        if cfg.damage_head > 0:
            loss = loss + cfg.damage_head * damage_loss(dmg, damage, torch.tensor(1.0),
                                                        torch.tensor(0.0))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            o = ~tie
            acc = float((z[ib][o] > z[ia][o]).float().mean()) if o.any() else float("nan")
        run_loss += loss.item()
        run_acc += acc if acc == acc else 0.0
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            m = min(cfg.log_every, (step % cfg.log_every) + 1)
            rec = {"step": step + 1, "loss": run_loss / m, "train_acc": run_acc / m,
                   "lr": sched.get_last_lr()[0], "seconds": round(time.time() - t0, 1)}
            if val is not None and ((step + 1) % (cfg.log_every * 5) == 0
                                    or step + 1 == cfg.steps):
                rec["val_acc"] = pair_accuracy(score_set(model, val), val)
            run_loss = run_acc = 0.0
            logger.info("%s", rec)
            if on_log:
                on_log(rec)
    model.eval()
    return model


def mean_weights(a: GenerationLossNet, b: GenerationLossNet, share_b: float = 0.5) -> GenerationLossNet:
    """``a`` with every floating-point parameter and buffer replaced by
    ``(1 - share_b) * a + share_b * b``: the weight-space mean of a fine-tuned net and the net
    it started from (same config), which keeps part of both (model card, "Single-file
    targets")."""
    if a.config != b.config:
        raise ValueError("the two nets differ in their config")
    sa, sb = a.state_dict(), b.state_dict()
    a.load_state_dict({k: (1 - share_b) * v + share_b * sb[k] if v.is_floating_point() else v
                       for k, v in sa.items()})
    return a
