"""Evaluate the generation-loss scorer on held-out photos: pair accuracy, baselines, generations.

    .venv/bin/python tools/eval_scorer.py                     # shipped weights, 1200 chains
    .venv/bin/python tools/eval_scorer.py --generations 200   # shorter rotate+JPEG chain

Pairs come from the held-out photos only (never seen in training) with a seed the training
never uses.  Accuracy counts ordered pairs whose further copy scores higher; tied pairs
(identical pixels, e.g. the PNG of a JPEG) are reported apart by how close their scores are.
Baselines, on the same pairs: bigger file wins, higher resolution wins, higher estimated JPEG
quality wins (lossless formats count as 100), random.  Equal values count half.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import REPO as ROOT

EVAL_SEED = 20261122


def _baseline(closer: np.ndarray, further: np.ndarray) -> float:
    """Accuracy of 'the copy with the larger value is the closer one' (equal -> half)."""
    return float(np.mean(np.where(closer > further, 1.0, np.where(closer == further, 0.5, 0.0))))


def wilson(right: np.ndarray) -> list[float]:
    """95% Wilson interval of an accuracy over ``right`` (bools): a family row of 40-250
    pairs is only known to within several points, which the report must show."""
    from scipy.stats import binomtest
    if right.size == 0:
        return [float("nan"), float("nan")]
    ci = binomtest(int(right.sum()), int(right.size)).proportion_ci(0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def _row(right: np.ndarray, sel: np.ndarray) -> dict:
    """One report row: how many of the pairs ``sel`` picks, their accuracy and its interval."""
    return {"pairs": int(sel.sum()),
            "accuracy": float(right[sel].mean()) if sel.any() else float("nan"),
            "ci95": wilson(right[sel])}


GROSS_MAX_Q, GROSS_MIN_SOURCE_Q = 30, 60    # the "heavy JPEG of a better copy" row


def pair_report(ps, z: np.ndarray, seed: int) -> dict:
    o = ~ps.tie
    c, f = ps.closer[o], ps.further[o]
    fam = ps.family[o]
    right = z[f] > z[c]
    q = np.where(ps.format == "JPEG", ps.jpeg_quality, 100.0)
    rng = np.random.default_rng(seed)
    res = {
        "ordered_pairs": int(o.sum()), "accuracy": float(right.mean()),
        "accuracy_ci95": wilson(right),
        "per_family": {str(k): _row(right, fam == k) for k in sorted(set(fam.tolist()))},
        "baselines": {
            "bigger_file_wins": _baseline(ps.file_size[c], ps.file_size[f]),
            "higher_resolution_wins": _baseline(ps.width[c] * ps.height[c],
                                                ps.width[f] * ps.height[f]),
            "higher_jpeg_quality_wins": _baseline(q[c], q[f]),
            "random": float(np.mean(rng.random(c.size) < 0.5)),
        },
    }
    # the deduplicator's task: pairs whose closer copy is the chain's original, and chains in
    # which the original (or a copy with its very pixels) gets the lowest score of all copies
    first = np.r_[True, ps.chain[1:] != ps.chain[:-1]] if ps.chain.size else np.zeros(0, bool)
    from_orig = first[c]
    for name, sel in (("original_vs_copy", from_orig), ("copy_vs_copy", ~from_orig)):
        res[name] = _row(right, sel)
    starts = np.flatnonzero(first)
    # copies with the original's very pixels: tie pairs whose closer copy is an original
    tied_to_orig = {(int(i), int(j)) for i, j in zip(ps.closer[ps.tie], ps.further[ps.tie])
                    if first[i]}
    best_ok = []
    for a, b in zip(starts, np.r_[starts[1:], ps.chain.size]):
        if b - a < 2:
            continue
        best = a + int(np.argmin(z[a:b]))
        best_ok.append(best == a or (int(a), best) in tied_to_orig)
    res["best_copy"] = {"chains": len(best_ok),
                        "accuracy": float(np.mean(best_ok)) if best_ok else float("nan"),
                        "ci95": wilson(np.array(best_ok, bool))}
    # gross errors, the ones users see first: a heavily compressed JPEG (q <= 30) made from
    # a copy that is not a JPEG or is a JPEG of q >= 60, scored as the better of the two
    # (q: the estimated JPEG quality, 100 for a copy that is not a JPEG)
    heavy = (ps.format[f] == "JPEG") & (q[f] <= GROSS_MAX_Q)
    res["heavy_jpeg_of_better_copy"] = _row(right, heavy & (q[c] >= GROSS_MIN_SOURCE_Q))
    res["by_damage_gap"] = damage_gap_report(ps, right, c, f)
    t = ps.tie
    if t.any():
        s = 1 / (1 + np.exp(-z))
        d = np.abs(s[ps.further[t]] - s[ps.closer[t]])
        res["tied_pairs"] = {"pairs": int(t.sum()), "median_abs_score_diff": float(np.median(d)),
                             "share_within_0.01": float(np.mean(d < 0.01))}
    return res


def parts_report(ps, parts: np.ndarray) -> dict:
    """Per family, how often each summand of the logit alone orders the pairs right:
    ``parts`` (N, 2) = the pooled block score and the image term (train.score_set parts)."""
    o = ~ps.tie
    c, f, fam = ps.closer[o], ps.further[o], ps.family[o]
    z = parts.sum(1)
    rights = {"logit": z[f] > z[c], "pooled_blocks": parts[f, 0] > parts[c, 0],
              "image_term": parts[f, 1] > parts[c, 1]}
    rows = {"all": np.ones(c.size, bool)} | {str(k): fam == k for k in sorted(set(fam.tolist()))}
    return {name: {"pairs": int(sel.sum()),
                   **{k: float(r[sel].mean()) if sel.any() else float("nan")
                      for k, r in rights.items()}}
            for name, sel in rows.items()}


# how much more damage the further copy carries, in dB of (1 + MSE against the pristine
# pixels): 0.3 dB is a 7% rise, 3 dB doubles it
GAP_BINS = ((0.0, 0.3), (0.3, 1.0), (1.0, 3.0), (3.0, np.inf))


def damage_gap_report(ps, right: np.ndarray, c: np.ndarray, f: np.ndarray) -> dict:
    """Accuracy of the ordered pairs by how much damage the further step added, measured
    where both copies keep the original's geometry (``PairSet.ref_mse``); pairs with a
    resize or crop on either side form their own row, and so do pairs whose further copy
    measures no worse (a re-encode can land nearer the pristine pixels; the pair is still
    ordered by construction)."""
    if not ps.ref_mse.size or not np.isfinite(ps.ref_mse).any():
        return {}
    mc, mf = ps.ref_mse[c].astype(np.float64), ps.ref_mse[f].astype(np.float64)
    known = np.isfinite(mc) & np.isfinite(mf)
    gap = np.where(known, 10 * np.log10((1 + np.nan_to_num(mf)) / (1 + np.nan_to_num(mc))),
                   np.nan)
    rows = {"no worse by MSE": known & (gap <= 0)}
    worse = known & (gap > 0)
    for lo, hi in GAP_BINS:
        name = f"{lo:g}-{hi:g} dB" if np.isfinite(hi) else f">= {lo:g} dB"
        rows[name] = worse & (gap >= lo) & (gap < hi)
    rows["geometry changed"] = ~known
    return {k: _row(right, sel) for k, sel in rows.items()}


def generation_experiment(scorer, photo: Path, generations: int, quality: int) -> dict:
    """Rotate 90 degrees + JPEG re-encode ``generations`` times; Spearman of score vs
    generation.  A chain can settle into an exact cycle: a picture whose sides sit on the
    JPEG grid reaches a fixed point (round g decodes to the pixels of round g - 4), others
    cycle longer (a leaf photo: round 106 = round 82).  Every round from the cycle's first
    on is a member of it, derived from every other, so no score can rise there: the chain
    ends at that round (``settles_at``, with the cycle's ``period``; None when no round
    repeats; see ``chains.jpeg_rounds``).  ``distance_spearman`` is the same statistic for
    the pixels' own RMS distance to the original (turned back): how monotone the damage
    itself is."""
    from PIL import Image
    from scipy.stats import spearmanr
    from .chains import generation_chain
    from .pairsets import copy_features
    with Image.open(photo) as im:
        px = np.asarray(im.convert("RGB"))
    copies, cycle = generation_chain(px, generations, quality)    # ends where a cycle starts
    settles, period = (None, None) if cycle is None else (cycle[0] - cycle[1], cycle[1])
    last = len(copies) - 1
    scores = scorer.score_features([copy_features(c, scorer.k)[0] for c in copies])
    ref = px.astype(np.float32)
    dist = np.array([np.sqrt(np.mean((np.rot90(c.pixels, -g).astype(np.float32) - ref) ** 2))
                     for g, c in enumerate(copies)])
    gens = np.arange(len(copies))
    logspaced = np.unique(np.round(np.concatenate([[0], np.geomspace(1, last, 40)])))
    logspaced = logspaced.astype(int)
    return {"photo": photo.name, "size": f"{px.shape[1]}x{px.shape[0]}",
            "generations": generations, "quality": quality, "settles_at": settles,
            "period": period,
            "spearman_all": float(spearmanr(gens, scores).statistic),
            "spearman_logspaced": float(spearmanr(logspaced, scores[logspaced]).statistic),
            "distance_spearman": float(spearmanr(gens, dist).statistic),
            "score_at": {int(g): round(float(scores[g]), 4)
                         for g in (0, 1, 2, 5, 10, 50, 100, 300, generations) if g <= last}}


def _settles(g: dict) -> str:
    if g["settles_at"] is None:
        return "never"
    period = g.get("period")
    return f"{g['settles_at']}" + (f" (cycle of {period})" if period else "")


def markdown(report: dict) -> str:
    """The report as the tables the model card shows."""
    out = [f"Held-out pairs: {report['ordered_pairs']} ordered + "
           f"{report.get('tied_pairs', {}).get('pairs', 0)} tied, from {report['chains']} "
           f"chains over the held-out photos (seed {report['seed']}).", "",
           "| | pairwise accuracy |", "|---|---|",
           f"| **generation-loss scorer** | **{report['accuracy']:.1%}**"
           + (" (95%: {:.1%}–{:.1%})".format(*report["accuracy_ci95"])
              if "accuracy_ci95" in report else "") + " |"]
    out += [f"| baseline: {k.replace('_', ' ')} | {v:.1%} |"
            for k, v in report["baselines"].items()]
    out += ["", "| family | pairs | accuracy | 95% interval |", "|---|---|---|---|"]
    out += [f"| {k} | {v['pairs']} | {v['accuracy']:.1%} | "
            + ("{:.1%}–{:.1%}".format(*v["ci95"]) if "ci95" in v else "—") + " |"
            for k, v in report["per_family"].items()]
    if "best_copy" in report:
        bc, ov, cc = report["best_copy"], report["original_vs_copy"], report["copy_vs_copy"]
        out += ["", "| keep-the-best-copy view | n | accuracy | 95% interval |",
                "|---|---|---|---|"]
        out += [f"| {name} | {v.get('pairs', v.get('chains'))} | {v['accuracy']:.1%} | "
                + "{:.1%}–{:.1%}".format(*v["ci95"]) + " |"
                for name, v in (("original vs a copy (pairs)", ov),
                                ("copy vs copy (pairs)", cc),
                                ("chains whose original scores lowest", bc),
                                (f"q <= {GROSS_MAX_Q} JPEG of a non-JPEG or q >= "
                                 f"{GROSS_MIN_SOURCE_Q} copy (pairs)",
                                 report.get("heavy_jpeg_of_better_copy")))
                if v is not None]
    if report.get("by_damage_gap"):
        out += ["", "| damage the further copy adds (dB of 1 + MSE vs. pristine) | pairs | "
                "accuracy | 95% interval |", "|---|---|---|---|"]
        out += [f"| {k} | {v['pairs']} | {v['accuracy']:.1%} | "
                + "{:.1%}–{:.1%}".format(*v["ci95"]) + " |"
                for k, v in report["by_damage_gap"].items()]
    lp = report.get("logit_parts")
    if lp:
        out += ["", "| family | pairs | logit | pooled block score alone | image term alone |",
                "|---|---|---|---|---|"]
        out += [f"| {k} | {v['pairs']} | {v['logit']:.1%} | {v['pooled_blocks']:.1%} | "
                f"{v['image_term']:.1%} |" for k, v in lp.items()]
    t = report.get("tied_pairs")
    if t:
        out += ["", f"Tied pairs (identical pixels, e.g. PNG of a JPEG): median |score "
                f"difference| {t['median_abs_score_diff']:.4f}, {t['share_within_0.01']:.0%} "
                "within 0.01."]
    if not report["generation_loss"]:
        return "\n".join(out) + "\n"
    out += ["", "| photo | size | rotate 90° + JPEG q75 rounds | settles at round | "
            "Spearman (all rounds) | Spearman (log-spaced) | pixel distance Spearman |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {g['photo']} | {g['size']} | {g['generations']} | "
            f"{_settles(g)} | "
            f"{g['spearman_all']:.3f} | {g['spearman_logspaced']:.3f} | "
            f"{g['distance_spearman']:.3f} |" for g in report["generation_loss"]]
    return "\n".join(out) + "\n"


def eval_pair_set(photos: str | Path, chains: int, seed: int, k: int, workers: int,
                  cache: str | Path | None, realistic: bool = False):
    """The held-out pair set of ``chains`` chains over ``photos`` with ``k`` blocks per copy,
    loaded from (or built into) the ``cache`` folder; no cache when it is empty / None.
    ``realistic``: realistic chains (``ops.scorer_training.realistic``) instead of the current set."""
    from .pairsets import cached_pairs
    return cached_pairs(photos, chains, seed, k, workers, cache, tag="eval", progress=False,
                        realistic=1.0 if realistic else 0.0)


def add_chain_set_args(ap: argparse.ArgumentParser, cache_help: str) -> None:
    """The options naming an evaluation chain set (shared with tools/scorer_oracles.py)."""
    ap.add_argument("--photos", default=str(ROOT / "data" / "scorer" / "photos" / "heldout"))
    ap.add_argument("--chains", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=EVAL_SEED, help="chain seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default=str(ROOT / "data" / "scorer"), help=cache_help)
    ap.add_argument("--realistic", action="store_true",
                    help="realistic chains (camera / web originals, platform copies, "
                         "re-uploads, messengers, screenshots, GIFs) instead of the current set")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="scorer.pt (default: shipped)")
    add_chain_set_args(ap, "folder caching the held-out pair set ('' = no cache)")
    ap.add_argument("--generations", type=int, default=1000)
    ap.add_argument("--generation-photos", type=int, default=3)
    ap.add_argument("--quality", type=int, default=75, help="JPEG quality of the generations")
    ap.add_argument("--out", help="write the report as JSON here")
    ap.add_argument("--markdown", help="write the report as markdown tables here")
    ap.add_argument("--groups", action="store_true",
                    help="also group mode: each chain scored as one group (ops/scorer_training/groups_eval.py)")
    ap.add_argument("--reupload-pairs", type=int, default=0,
                    help="also the re-upload property on this many pairs (2000 in the report)")
    ap.add_argument("--oracles", help="JSON of tools/scorer_oracles.py on the same chain set, "
                    "shown next to both modes")
    a = ap.parse_args(argv)
    if a.generations < 1 or a.generation_photos < 0:
        ap.error("--generations must be >= 1 (--generation-photos 0 skips the experiment)")
    from .pairsets import list_photos
    from .train import score_set
    from ops.scorer.weights import Scorer
    t0 = time.time()
    scorer = Scorer(a.weights)
    ps = eval_pair_set(a.photos, a.chains, a.seed, scorer.k, a.workers, a.cache, a.realistic)
    parts = score_set(scorer.model, ps, parts=True)       # logit = their sum
    z = parts.sum(1)
    report = {"photos": a.photos, "chains": a.chains, "seed": a.seed,
              "realistic": a.realistic,
              "copies": int(ps.pixels.shape[0]), **pair_report(ps, z, a.seed)}
    extra_md = ""
    if a.groups or a.reupload_pairs:
        from . import groups_eval as EG
        if a.groups:
            fits = EG.group_fits(a.photos, a.chains, a.seed, a.workers,
                                 1.0 if a.realistic else 0.0, a.cache)
            report["group_mode"] = EG.group_report(ps, z, fits)
        if a.reupload_pairs:
            report["reupload"] = EG.reupload_report(scorer, a.photos, a.reupload_pairs,
                                                    a.workers, a.cache)
        oracles = json.loads(Path(a.oracles).read_text()) if a.oracles else None
        if a.groups:
            extra_md = "\n" + EG.markdown(report, report["group_mode"], oracles,
                                          report.get("reupload"))
    if scorer.model.image_term is not None:
        report["logit_parts"] = parts_report(ps, parts)
    photos = list_photos(a.photos)
    pick = np.linspace(0, len(photos) - 1, min(a.generation_photos, len(photos))).astype(int)
    report["generation_loss"] = [generation_experiment(scorer, photos[i], a.generations,
                                                       a.quality) for i in pick]
    report["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    if a.markdown:
        Path(a.markdown).write_text(markdown(report) + extra_md)
    fam_min = min(v["accuracy"] for v in report["per_family"].values())
    sp = min((g["spearman_logspaced"] for g in report["generation_loss"]),
             default=float("nan"))
    if "group_mode" in report:
        g = report["group_mode"]
        print(f"group mode: accuracy {g['accuracy']:.4f} (target 0.97), worst family "
              f"{min(v['accuracy'] for v in g['per_family'].values()):.4f} (target 0.93), "
              f"root {g['root_is_original']['accuracy']:.4f} (target 0.98)", file=sys.stderr)
    if "reupload" in report:
        r = report["reupload"]
        print(f"re-upload: single-file {r['single_file']['accuracy']:.4f} (target 0.95), "
              f"group {r['group_mode']['accuracy']:.4f} (target 0.995)", file=sys.stderr)
    print(f"accuracy {report['accuracy']:.4f} (target 0.97), worst family {fam_min:.4f} "
          f"(target 0.90), generation Spearman (log-spaced, worst photo) {sp:.3f} (target 0.95)",
          file=sys.stderr)
    return 0
