"""Group-mode evaluation of the generation-loss scorer (used by tools/eval_scorer.py, ops.scorer_training.evaluate).

Every evaluation chain is scored as one group of copies: ``ops.scorer.phylogeny`` fits every
ordered pair's transform and reconstructs the derivation tree, combined with the network's
scores of the same copies.  A pair (closer, further) is right when the group ranks the closer
copy first (a pair split into two groups is wrong); a chain's root is right when it is the
original or a copy with its very pixels.  The re-upload property: a JPEG re-save at a quality
<= its parent's estimated quality and the same size must not rank above its parent.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

REUPLOAD_SEED = 20261207


def _fits_of(copies) -> np.ndarray:
    """(2, n, n): fit errors e[i, j] of i -> j (inf: unrelated; diagonal 0) and the
    geometric steps of each fit."""
    from ops.scorer.fit import copy_from_bytes
    from ops.scorer.phylogeny import pair_fits
    cs = [copy_from_bytes(c.data, str(k)) for k, c in enumerate(copies)]
    e = np.zeros((2, len(cs), len(cs)))
    for (i, j), f in pair_fits(cs, workers=1).items():
        e[:, i, j] = f.error, f.geometric_steps
    return e


def _chain_fits(args):
    photos, index, seed, realistic = args
    try:
        from .pairsets import chain_copies
        from ops.scorer.features import blas_one_thread
        copies, _ = chain_copies(photos, index, seed, realistic=realistic)
        with blas_one_thread():
            return index, _fits_of(copies), None
    except Exception as exc:              # noqa: BLE001 - counted and reported
        return index, None, f"chain {index}: {type(exc).__name__}: {exc}"


def group_fits(photos_dir, chains: int, seed: int, workers: int, realistic: float,
               cache: str | Path | None) -> dict[int, np.ndarray]:
    """Fit matrices of every chain (chain index -> ``_fits_of``), cached as an npz."""
    from .chains import GENERATOR_VERSION
    from .pairsets import list_photos, map_chains, photo_set_id
    from ops.scorer.fit import FIT_VERSION
    from .realistic import REALISTIC_VERSION
    name = (f"groupfits_{chains}_{seed}_r{round(100 * realistic)}_v{GENERATOR_VERSION}"
            f"r{REALISTIC_VERSION}f{FIT_VERSION}_p{photo_set_id(photos_dir)}.npz")
    path = Path(cache) / name if cache else None
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {int(k[1:]): z[k] for k in z.files}
    photos = list_photos(photos_dir)
    res = map_chains(_chain_fits, [(photos, i, seed, realistic) for i in range(chains)],
                     workers)
    out = {i: e for i, e, err in res if err is None}
    if path is not None:
        np.savez(path, **{f"c{i}": e for i, e in out.items()})
    return out


def _ranks(e: np.ndarray, scores: np.ndarray) -> tuple[dict[int, tuple[int, int]], list]:
    """Family and rank of each copy, from the (2, n, n) fits of ``_fits_of``."""
    from ops.scorer.fit import Fit
    from ops.scorer.phylogeny import reconstruct
    n = e.shape[1]
    fits = {(i, j): Fit(float(e[0, i, j]), None, [], int(e[1, i, j]))
            for i in range(n) for j in range(n) if i != j}
    fams = reconstruct([_Named(str(i)) for i in range(n)], scores, fits)
    return {m.index: (fi, m.rank) for fi, f in enumerate(fams) for m in f.members}, fams


class _Named:
    """Stands for a copy where only its name is read (the fits are given)."""

    def __init__(self, name: str):
        self.name = name


def group_report(ps, z: np.ndarray, fits: dict[int, np.ndarray]) -> dict:
    """Pair accuracy per family and overall, and root accuracy, of group mode on the pair
    set ``ps`` (its chains' copies scored ``z``, logits)."""
    from .evaluate import wilson
    s = 1 / (1 + np.exp(-z.astype(np.float64)))
    starts = np.flatnonzero(np.r_[True, ps.chain[1:] != ps.chain[:-1]])
    ends = np.r_[starts[1:], ps.chain.size]
    rank_of = np.full(ps.chain.size, -1, np.int64)
    fam_of = np.full(ps.chain.size, -1, np.int64)
    roots, missing = [], 0
    tie_pairs = {(int(a), int(b)) for a, b in zip(ps.closer[ps.tie], ps.further[ps.tie])}
    for a, b in zip(starts, ends):
        e = fits.get(int(ps.chain[a]))
        if e is None or e.shape[1] != b - a:
            missing += 1
            continue
        ranks, fams = _ranks(e, s[a:b])
        for k, (fi, r) in ranks.items():
            fam_of[a + k], rank_of[a + k] = fi, r
        if b - a >= 2:
            root = a + fams[0].root.index
            roots.append(len(fams) == 1 and (root == a or (int(a), int(root)) in tie_pairs))
    o = ~ps.tie
    c, f, fam = ps.closer[o], ps.further[o], ps.family[o]
    known = rank_of[c] >= 0
    right = (fam_of[c] == fam_of[f]) & (rank_of[c] < rank_of[f]) & known

    def row(sel):
        sel = sel & known
        return {"pairs": int(sel.sum()), "accuracy": float(right[sel].mean()) if sel.any()
                else float("nan"), "ci95": wilson(right[sel])}

    return {"ordered_pairs": int(known.sum()), "chains_without_fits": missing,
            "accuracy": float(right[known].mean()), "accuracy_ci95": wilson(right[known]),
            "per_family": {str(k): row(fam == k) for k in sorted(set(fam.tolist()))},
            "root_is_original": {"chains": len(roots), "accuracy": float(np.mean(roots)),
                                 "ci95": wilson(np.array(roots, bool))}}


# ---------------------------------------------------------------- re-upload property
def _reupload_pair(args):
    """A realistic parent JPEG (an original, or a platform copy of one) and a JPEG re-save
    of it at quality <= the parent's estimated quality, same size; their features and fit
    errors.  None when the re-save decodes to the parent's very pixels (no order)."""
    photos, i, seed, k = args
    from . import realistic as RL
    from . import transforms as T
    from .pairsets import _photo, copy_features
    from ops.scorer.features import blas_one_thread
    try:
        rng = np.random.default_rng([seed, i])
        photo = _photo(str(photos[i % len(photos)]))
        parent, nominal = RL.make_real_original(photo, rng)
        if parent.format != "JPEG" or rng.random() < 0.5:
            parent, _ = RL.real_step(parent, "platform", nominal, rng)
        with blas_one_thread():
            fp, info = copy_features(parent, k)
            q_est = int(round(info.jpeg_quality)) or 75
            q = int(rng.integers(max(5, q_est - 30), q_est + 1))
            sub = str(rng.choice(["4:2:0", "4:2:0", "4:4:4"]))
            child = T.to_jpeg(parent.pixels, q, sub, optimize=bool(rng.integers(2)))
            if T.same_pixels(parent, child):
                return i, None, None, None, None
            fc, _ = copy_features(child, k)
            return i, fp, fc, _fits_of([parent, child]), None
    except Exception as exc:              # noqa: BLE001
        return i, None, None, None, f"pair {i}: {type(exc).__name__}: {exc}"


FEATURE_ARRAYS = ("pixels", "block_meta", "image_meta", "mask", "global_stats")


def reupload_set(photos_dir, n: int, k: int, workers: int, cache) -> tuple[list, np.ndarray, int]:
    """Features (parent, child alternating) and fit matrices of the ``n`` re-upload pairs,
    the pairs left out (identical pixels) and errors; cached as an npz."""
    from .pairsets import list_photos, map_chains, photo_set_id
    from ops.scorer.features import FEATURES_VERSION, Features
    from ops.scorer.fit import FIT_VERSION
    from .realistic import REALISTIC_VERSION
    name = (f"reupload_{n}_{REUPLOAD_SEED}_k{k}_r{REALISTIC_VERSION}f{FEATURES_VERSION}"
            f"x{FIT_VERSION}_p{photo_set_id(photos_dir)}.npz")
    path = Path(cache) / name if cache else None
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as z:
            arr = {a: z[a] for a in z.files}
    else:
        photos = list_photos(photos_dir)
        res = map_chains(_reupload_pair, [(photos, i, REUPLOAD_SEED, k) for i in range(n)],
                         workers)
        ok = [r for r in res if r[1] is not None]
        feats = [f for r in ok for f in (r[1], r[2])]
        arr = {a: np.stack([getattr(f, a) for f in feats]) for a in FEATURE_ARRAYS}
        arr["fits"] = np.stack([r[3] for r in ok]) if ok else np.zeros((0, 2, 2, 2))
        arr["errors"] = np.array(sum(1 for r in res if r[4]))
        if path is not None:
            np.savez(path, **arr)
    feats = [Features(**{a: arr[a][i] for a in FEATURE_ARRAYS})
             for i in range(arr["pixels"].shape[0])]
    return feats, arr["fits"], int(arr["errors"])


def reupload_report(scorer, photos_dir, n: int, workers: int, cache=None) -> dict:
    """Single-file and group-mode share of ``n`` re-upload pairs whose parent ranks first."""
    from .evaluate import wilson
    feats, fits, n_err = reupload_set(photos_dir, n, scorer.k, workers, cache)
    errors = range(n_err)
    ok = range(len(fits))
    s = scorer.score_features(feats).reshape(-1, 2)
    single = s[:, 1] > s[:, 0]
    group = []
    for e, sc in zip(fits, s):
        ranks, _ = _ranks(e, sc)
        group.append(ranks[0][0] == ranks[1][0] and ranks[0][1] < ranks[1][1])
    group = np.array(group, bool)
    return {"pairs": len(ok), "identical_pixels_skipped": n - len(ok) - len(errors),
            "errors": len(errors),
            "single_file": {"accuracy": float(single.mean()), "ci95": wilson(single)},
            "group_mode": {"accuracy": float(group.mean()), "ci95": wilson(group)}}


def markdown(single: dict, group: dict, oracles: dict | None, reupload: dict | None) -> str:
    """Per family: single-file and group-mode accuracy next to the oracles' (on the pairs
    the oracles can measure, which keep the original's geometry)."""
    cols = ("mse", "ssimulacra2", "butteraugli")
    out = ["| family | pairs | single-file | group mode | oracle pairs | MSE | SSIMULACRA2 "
           "| Butteraugli |", "|---|---|---|---|---|---|---|---|"]
    fams = [("**all**", single, group, (oracles or {}).get("overall"))]
    fams += [(k, single["per_family"][k], group["per_family"].get(k, {}),
              (oracles or {}).get("per_family", {}).get(k)) for k in single["per_family"]]
    for name, s, g, o in fams:
        ga = g.get("accuracy", float("nan"))
        orc = (" | ".join(f"{100 * o[c]:.1f}%" for c in cols) if o and o["pairs"]
               else " | ".join("—" for _ in cols))
        out.append(f"| {name} | {s.get('pairs', s.get('ordered_pairs'))} | "
                   f"{s['accuracy']:.1%} | {ga:.1%} | {o['pairs'] if o else 0} | {orc} |")
    r = group["root_is_original"]
    out += ["", f"Group mode: the original (or a copy with its very pixels) is the root in "
            f"{r['accuracy']:.1%} of {r['chains']} chains "
            "({:.1%}–{:.1%}).".format(*r["ci95"])]
    if reupload:
        out += ["", f"Re-upload property ({reupload['pairs']} pairs; "
                f"{reupload['identical_pixels_skipped']} re-saves with the parent's very "
                f"pixels left out): the parent ranks first in "
                f"{reupload['single_file']['accuracy']:.2%} single-file and "
                f"{reupload['group_mode']['accuracy']:.2%} in group mode."]
    return "\n".join(out) + "\n"
