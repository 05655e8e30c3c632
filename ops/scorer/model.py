"""The generation-loss network: per-block scores and weights, pooled to one score per image."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .features import (BLOCK_META_DIM, IMAGE_META_DIM, K_BLOCKS, QFIT_QUALITIES, Features,
                       _reference_tables, dct_blocks)

PIX_IN = 192 + 56 + 56          # RGB pixels + horizontal and vertical luma differences


def quantisation_fit(y_dct: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """How well each block's luma DCT coefficients sit on the grid of each candidate table:
    (..., 64) coefficients, (Q, 64) steps -> (..., 2Q): per table, the mean distance of
    c / step to the nearest integer over the coefficients that round to non-zero (x4, so
    unquantised content gives ~1 and content quantised with that table, or one whose steps
    it divides, ~0), and the share of such coefficients.  A JPEG decoded and saved again at
    a high quality keeps its first quantisation visible here while the file's own tables
    claim high quality: the double-compression cue of a "high-quality re-save"."""
    r = y_dct.unsqueeze(-2) / tables                         # (..., Q, 64)
    live = (r.abs() >= 0.5).float()
    off = (r - torch.round(r)).abs()
    n = live.sum(-1)
    fit = 4 * (off * live).sum(-1) / (n + 1.0)
    return torch.cat([fit, n / 64], -1)


class GenerationLossNet(nn.Module):
    """Scores each 8x8 block from its DCT (MLP), its pixels and their luma gradients (MLP: a
    dense layer over the whole block sees what a stack of 3x3 convolutions would, at a
    fraction of the CPU cost on 8x8 inputs), its own metadata and
    the file's metadata; each block yields a score and a weight; the masked softmax-weighted
    mean of the scores plus an image-level term is the logit (permutation invariant)."""

    def __init__(self, k: int = K_BLOCKS, width: int = 64, image_meta_dim: int = IMAGE_META_DIM,
                 block_meta_dim: int = BLOCK_META_DIM, dropout: float = 0.0,
                 meta_norm: bool = False, image_stats: bool = False, global_dim: int = 0,
                 global_dropout: float = 0.0, qfit_qualities: list[int] | None = None,
                 damage_head: bool = False, image_term: bool = True):
        super().__init__()
        # qfit_qualities: the standard-table qualities the per-block quantisation fit tries
        # (default QFIT_QUALITIES, the 12 the whole-image statistics use)
        quals = [int(q) for q in (QFIT_QUALITIES if qfit_qualities is None else qfit_qualities)]
        if not quals or min(quals) < 1 or max(quals) > 100:
            raise ValueError(f"qfit_qualities must be JPEG qualities 1..100, got {quals}")
        self.config = {"k": k, "width": width, "image_meta_dim": image_meta_dim,
                       "block_meta_dim": block_meta_dim, "dropout": dropout,
                       "meta_norm": meta_norm, "image_stats": image_stats,
                       "global_dim": global_dim, "global_dropout": global_dropout,
                       "qfit_qualities": quals, "damage_head": bool(damage_head),
                       "image_term": bool(image_term)}
        # image_stats: the quantisation fit of every block (to the head) and, averaged over
        # the present blocks, with the mean log-magnitude DCT spectrum (to the image branch)
        self.image_stats = bool(image_stats)
        qdim = 2 * len(quals)
        extra_block = qdim if image_stats else 0
        extra_image = qdim + 192 if image_stats else 0
        w = width
        self.dropout = float(dropout)     # on the block features, training only
        # meta_norm: spread width / height / file size / bits per pixel, which features.py
        # squeezes into ~0.1 of range (log2(w)/12 ...), to about unit range, so a small
        # change of resolution (a downscale) is a usable input: log2(w) -> (log2 w - 9) / 2,
        # log2(bytes) -> (log2 bytes - 16) / 4, log2(bpp) -> log2(bpp) / 2
        scale, shift = torch.ones(image_meta_dim), torch.zeros(image_meta_dim)
        if meta_norm:
            scale[:4] = torch.tensor([6.0, 6.0, 6.0, 2.5])
            shift[:4] = torch.tensor([-4.5, -4.5, -4.0, 0.0])
        self.register_buffer("_meta_scale", scale, persistent=False)
        self.register_buffer("_meta_shift", shift, persistent=False)
        self.dct = nn.Sequential(nn.Linear(192, 2 * w), nn.GELU(), nn.Linear(2 * w, w), nn.GELU())
        self.pix = nn.Sequential(nn.Linear(PIX_IN, 2 * w), nn.GELU(), nn.Linear(2 * w, w),
                                 nn.GELU())
        self.meta = nn.Sequential(nn.Linear(image_meta_dim + extra_image, w // 2), nn.GELU(),
                                  nn.Linear(w // 2, w // 2), nn.GELU())
        # global_dim: whole-image statistics (features.global_stats), standardised with the
        # training set's mean / std (saved with the weights), through their own branch
        self.global_dim = int(global_dim)
        self.global_dropout = float(global_dropout)   # on the standardised inputs, training only
        fm_dim = w // 2
        if self.global_dim:
            self.register_buffer("g_mean", torch.zeros(self.global_dim))
            self.register_buffer("g_std", torch.ones(self.global_dim))
            self.glob = nn.Sequential(nn.Linear(self.global_dim, w), nn.GELU(),
                                      nn.Linear(w, w // 2), nn.GELU())
            fm_dim += w // 2
        self.head = nn.Sequential(nn.Linear(2 * w + fm_dim + block_meta_dim + extra_block, w),
                                  nn.GELU(), nn.Linear(w, 2))
        if image_stats:
            tables = torch.from_numpy(_reference_tables()[[q - 1 for q in quals]])
            self.register_buffer("_qtables", tables.float(), persistent=False)
        # image_term: a linear term of the image features added to the pooled block score.
        # Without it (image_term=False) the image features reach the logit only through the
        # block head, which sees them next to each block's own features (docs/scorer.md, model card: "The two summands of the logit")
        self.image_term = nn.Linear(fm_dim, 1) if image_term else None
        # damage_head: a side output for training only, the copy's measured damage predicted
        # from each block's hidden head features, pooled with the same weights (the score
        # itself stays free: fitting it to the damage hurt, see the model card's experiment log)
        self.damage = nn.Linear(w, 1) if damage_head else None
        self.register_buffer("_luma", torch.tensor([0.299, 0.587, 0.114]), persistent=False)

    def forward(self, dct: torch.Tensor, pixels: torch.Tensor, block_meta: torch.Tensor,
                image_meta: torch.Tensor, mask: torch.Tensor,
                global_stats: torch.Tensor | None = None, with_damage: bool = False,
                with_parts: bool = False):
        """Logits (B,), and the predicted damage (B,) too when ``with_damage`` (a net built
        with ``damage_head``).  ``with_parts``: instead of the logit, its two summands, the
        pooled block score and the image term (zeros without one), each (B,).
        dct (B,K,3,64) float; pixels (B,K,8,8,3) uint8 or float 0..255; block_meta (B,K,Mb);
        image_meta (B,Mi); mask (B,K) bool; global_stats (B,G), needed when the net was built
        with global_dim."""
        b, k = mask.shape
        d = torch.sign(dct) * torch.log1p(dct.abs())            # compress the coefficient range
        fd = self.dct(d.reshape(b * k, 192))
        p = pixels.float().reshape(b * k, 8, 8, 3) / 127.5 - 1.0
        y = p @ self._luma
        gx = (y[:, :, 1:] - y[:, :, :-1]).reshape(b * k, 56)
        gy = (y[:, 1:, :] - y[:, :-1, :]).reshape(b * k, 56)
        fp = self.pix(torch.cat([p.reshape(b * k, 192), 4 * gx, 4 * gy], 1))
        im = image_meta * self._meta_scale + self._meta_shift
        extra = []
        if self.image_stats:
            qf = quantisation_fit(dct[:, :, 0].float(), self._qtables)       # (B, K, QFIT)
            m = mask.float().unsqueeze(-1)
            cnt = m.sum(1).clamp_min(1.0)
            spec = (d.abs().reshape(b, k, 192) * m).sum(1) / cnt
            im = torch.cat([im, (qf * m).sum(1) / cnt, spec / 4], 1)
            extra = [qf.reshape(b * k, -1)]
        fm = self.meta(im)
        if self.global_dim:
            if global_stats is None or global_stats.shape[-1] != self.global_dim:
                raise ValueError(f"this scorer needs {self.global_dim} global statistics per "
                                 "image (features.global_stats)")
            g = (global_stats - self.g_mean) / self.g_std
            if self.global_dropout > 0:
                g = F.dropout(g, self.global_dropout, self.training)
            fm = torch.cat([fm, self.glob(g)], 1)
        if self.dropout > 0:
            fd = F.dropout(fd, self.dropout, self.training)
            fp = F.dropout(fp, self.dropout, self.training)
        x = torch.cat([fd, fp, fm.repeat_interleave(k, 0),
                       block_meta.reshape(b * k, -1).float()] + extra, 1)
        hidden = self.head[1](self.head[0](x))
        out = self.head[2](hidden).reshape(b, k, 2)
        score, weight = out[..., 0], out[..., 1]
        m = mask.float()
        weight = weight.masked_fill(~mask, -1e4)
        weight = torch.exp(weight - weight.max(1, keepdim=True).values) * m
        norm = weight.sum(1).clamp_min(1e-6)
        pooled = (weight * score).sum(1) / norm
        term = self.image_term(fm).squeeze(1) if self.image_term is not None else None
        if with_parts:
            return pooled, (torch.zeros_like(pooled) if term is None else term)
        logit = pooled if term is None else pooled + term
        if not with_damage:
            return logit
        if self.damage is None:
            raise ValueError("this scorer was built without damage_head")
        dmg = (weight * self.damage(hidden).reshape(b, k)).sum(1) / norm
        return logit, dmg


def collate(feats: list[Features]) -> dict[str, torch.Tensor]:
    """Stack features into the network's input tensors (DCT computed here)."""
    pixels = np.stack([f.pixels for f in feats])
    g = (np.stack([f.global_stats for f in feats])
         if all(f.global_stats is not None for f in feats) else None)
    return tensors(pixels, np.stack([f.block_meta for f in feats]),
                   np.stack([f.image_meta for f in feats]), np.stack([f.mask for f in feats]), g)


def tensors(pixels: np.ndarray, block_meta: np.ndarray, image_meta: np.ndarray,
            mask: np.ndarray, global_stats: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    out = {"dct": torch.from_numpy(dct_blocks(pixels)),
           "pixels": torch.from_numpy(np.ascontiguousarray(pixels)),
           "block_meta": torch.from_numpy(block_meta.astype(np.float32)),
           "image_meta": torch.from_numpy(image_meta.astype(np.float32)),
           "mask": torch.from_numpy(mask.astype(bool))}
    if global_stats is not None and global_stats.size:
        out["global_stats"] = torch.from_numpy(global_stats.astype(np.float32))
    return out
