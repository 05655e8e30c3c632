"""Full-reference oracles on the scorer's held-out pairs: how often does the *damage* a
full-reference metric measures against the pristine pixels agree with the construction order?

    .venv/bin/python tools/scorer_oracles.py [--chains 1200] [--out data/scorer/oracles.json]

The scorer is trained and judged on (closer, further) pairs ordered by construction: the
further copy is derived from the closer one.  That order is not always "more damage": a
high-quality re-save or a resize can land nearer the pristine pixels than its source.  This
tool regenerates the evaluation chains of ``tools/eval_scorer.py`` (same photos, chains and
seed), measures every copy that keeps its original's geometry (turned back where a
"generations" chain turned it; resized or cropped copies have no pixel-aligned reference)
against the chain's pristine pixels with MSE, SSIMULACRA2 and Butteraugli (3-norm), and
reports, per transform family and overall, the share of ordered pairs each metric orders
right -- next to the shipped scorer's accuracy on the same pairs.  An oracle sees the
pristine pixels, which the no-reference scorer never does; where even the oracles fall short
of a target, the target asks the scorer to beat full-reference measurement.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import REPO as ROOT

METRICS = ("mse", "ssimulacra2", "butteraugli")
HIGHER_IS_WORSE = {"mse": True, "ssimulacra2": False, "butteraugli": True}
ORACLE_VERSION = 1         # bump when the measurement changes: caches are keyed by it


def measure(pristine: np.ndarray, px: np.ndarray) -> tuple[float, float, float]:
    """(MSE, SSIMULACRA2, Butteraugli 3-norm) of a copy against the pristine pixels, NaN
    when its geometry differs; identical pixels score (0, 100, 0) without running the
    metrics."""
    from ops.image.metrics.butteraugli import butteraugli
    from ops.image.metrics.ssimulacra2 import ssimulacra2
    from .chains import align_to
    p, mse = align_to(pristine, px)
    if p is None:
        return float("nan"), float("nan"), float("nan")
    if mse == 0.0:
        return 0.0, 100.0, 0.0
    return (mse, float(ssimulacra2(pristine, p)),
            float(butteraugli(pristine, p, distmap=False).pnorm))


def _chain(args) -> tuple[list[tuple[float, float, float]], list[tuple], str | None]:
    """Metrics of every copy of chain ``index`` and its pairs (runs in a worker); a chain
    that fails is reported, not fatal."""
    photos, index, seed, realistic = args
    try:
        from .chains import chain_pairs
        from .pairsets import chain_copies
        copies, fams = chain_copies(photos, index, seed, realistic=realistic)
        rows = [measure(copies[0].pristine, c.pixels) for c in copies]
        pairs = [(p.closer, p.further, p.family, p.tie) for p in chain_pairs(copies, fams)]
        return rows, pairs, None
    except Exception as exc:              # noqa: BLE001 - counted and reported, never lost
        return [], [], f"chain {index}: {type(exc).__name__}: {exc}"


def oracle_set(photos_dir: str | Path, chains: int, seed: int, workers: int,
               realistic: float = 0.0) -> dict:
    """Per-copy metrics and the pairs of ``chains`` chains, built as ``build_pairs`` builds
    them (chain i from photo i mod n, seeded by (seed, i)), so copy and pair indices match
    the evaluation pair set of the same photos, chains and seed."""
    from .pairsets import list_photos, map_chains
    photos = list_photos(photos_dir)
    results = map_chains(_chain, [(photos, i, seed, realistic) for i in range(chains)], workers)
    metrics, closer, further, family, tie, failed = [], [], [], [], [], []
    for rows, prs, err in results:
        if err:
            failed.append(err)
            continue
        base = len(metrics)
        metrics += rows
        for a, b, fam, t in prs:
            closer.append(base + a)
            further.append(base + b)
            family.append(fam)
            tie.append(t)
    return {"metrics": np.array(metrics, np.float64).reshape(-1, len(METRICS)),
            "closer": np.array(closer, np.int64), "further": np.array(further, np.int64),
            "family": np.array(family), "tie": np.array(tie, bool),
            "failed": np.array(failed, dtype=str)}


def report(s: dict, scores: np.ndarray | None = None) -> dict:
    """Per family and overall, on ordered pairs where both copies are measured: the share
    each metric orders right (strictly: an equal value is not right), and the scorer's
    accuracy on the same pairs when ``scores`` (one per copy) is given."""
    o = ~s["tie"]
    c, f, fam = s["closer"][o], s["further"][o], s["family"][o]
    m = s["metrics"]
    known = np.isfinite(m[c]).all(1) & np.isfinite(m[f]).all(1)
    right = {}
    for j, name in enumerate(METRICS):
        right[name] = (m[f, j] > m[c, j]) if HIGHER_IS_WORSE[name] else (m[f, j] < m[c, j])
    if scores is not None:
        right["scorer"] = scores[f] > scores[c]

    def rows(sel):
        out = {"pairs": int(sel.sum())}
        out.update({k: float(v[sel].mean()) if sel.any() else float("nan")
                    for k, v in right.items()})
        return out

    return {"ordered_pairs": int(o.sum()), "measured_pairs": int(known.sum()),
            "failed_chains": int(s["failed"].size), "overall": rows(known),
            "per_family": {str(k): rows(known & (fam == k))
                           for k in sorted(set(fam.tolist()))}}


def markdown(rep: dict) -> str:
    cols = [k for k in ("mse", "ssimulacra2", "butteraugli", "scorer") if k in rep["overall"]]
    out = [f"{rep['measured_pairs']} of {rep['ordered_pairs']} ordered pairs keep the "
           "original's geometry on both sides and are measured.", "",
           "| family | pairs | " + " | ".join(cols) + " |",
           "|---|---" + "|---" * len(cols) + "|"]
    items = [("**all measured**", rep["overall"])] + list(rep["per_family"].items())
    for name, r in items:
        if not r["pairs"]:
            continue
        out.append(f"| {name} | {r['pairs']} | "
                   + " | ".join(f"{100 * r[k]:.1f}%" for k in cols) + " |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    from .evaluate import add_chain_set_args
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_chain_set_args(ap, "folder caching the per-copy metrics and the pair set ('' = none)")
    ap.add_argument("--weights", help="scorer.pt to compare (default: shipped; '' = none)")
    ap.add_argument("--out", help="write the report as JSON here")
    ap.add_argument("--markdown", help="write the table as markdown here")
    a = ap.parse_args(argv)
    if a.chains < 1 or a.workers < 1:
        ap.error("--chains and --workers must be >= 1")
    from .chains import GENERATOR_VERSION
    from .pairsets import photo_set_id
    seed = a.seed
    t0 = time.time()
    from .realistic import REALISTIC_VERSION
    real = f"_real{REALISTIC_VERSION}" if a.realistic else ""
    cached = (Path(a.cache) / f"oracles_{a.chains}_{seed}{real}_v{GENERATOR_VERSION}"
                              f"o{ORACLE_VERSION}_p{photo_set_id(a.photos)}.npz") if a.cache else None
    if cached is not None and cached.exists():
        with np.load(cached, allow_pickle=False) as z:
            s = {k: z[k] for k in z.files}
    else:
        s = oracle_set(a.photos, a.chains, seed, a.workers, 1.0 if a.realistic else 0.0)
        if cached is not None:
            np.savez(cached, **s)
    scores = None if a.weights == "" else _scores(a, seed, s)
    rep = {"photos": a.photos, "chains": a.chains, "seed": seed, **report(s, scores),
           "seconds": round(time.time() - t0, 1)}
    text = json.dumps(rep, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    if a.markdown:
        Path(a.markdown).write_text(markdown(rep))
    return 0


def _scores(a, seed: int, s: dict) -> np.ndarray:
    """The scorer's logit per copy, from the evaluation pair set of the same photos, chains
    and seed (``eval_scorer.eval_pair_set``: cached, or built when missing); its pairs must be
    the oracle set's, copy for copy."""
    from .evaluate import eval_pair_set
    from .train import score_set
    from ops.scorer.weights import Scorer
    scorer = Scorer(a.weights or None)
    ps = eval_pair_set(a.photos, a.chains, seed, scorer.k, a.workers, a.cache, a.realistic)
    if not (np.array_equal(ps.closer, s["closer"]) and np.array_equal(ps.further, s["further"])
            and np.array_equal(ps.tie, s["tie"])):
        raise RuntimeError("the evaluation pair set and the oracle set hold different pairs "
                           "(a chain failed in one of them, or a stale cache): rebuild both")
    return score_set(scorer.model, ps)
