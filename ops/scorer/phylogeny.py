"""Copy families: group copies of one picture and reconstruct how they were made from each other.

For every ordered pair of related copies ``fit.fit`` measures how well the transform fitted
from one to the other reproduces it (an asymmetric dissimilarity).  The derivation tree is the
optimum branching (Edmonds' minimum spanning arborescence, as in Dias, Rocha, Goldenstein,
"Image Phylogeny by Minimal Spanning Trees", IEEE TIFS 7(2), 2012, and Costa et al., "Image
Phylogeny Forests Reconstruction", IEEE TIFS 9(10), 2014) over the edge cost

    log(ERROR_FLOOR + error(parent -> child)) + STEP_COST * geometric steps of the fit
        + NET_WEIGHT * max(0, logit(parent) - logit(child))

The small floor keeps a bit-exact reproduction (a JPEG re-encoded with the child's own
tables gives the child again) apart from a nearly exact one; the step cost prefers the
simpler of two transforms that reproduce a copy equally well (its parent's "add a palette"
over its grandparent's "enlarge, then add a palette"); where the fits cannot tell the
direction (both errors alike: lossless re-saves, heavy crops), the no-reference score of
each copy decides.  The three weights were chosen on chains of the training photos
(seed 7, group mode as ``ops/scorer_training/groups_eval.py`` runs it), never on the
held-out ones.  The root is the best
copy; copies whose geometry cannot be matched to any other form families of their own.
"""
from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field

import numpy as np

from .fit import Copy, Fit, align, fit, inverse, refine
from .geometry import keypoints

logger = logging.getLogger("imgjuicer")
ERROR_FLOOR = 0.003   # see fit_cost
EXACT_BONUS = 1.0     # see fit_cost
STEP_COST = 0.3       # per geometric step (turn, crop, resize) of an edge's transform
NET_WEIGHT = 0.25     # weight of the no-reference logit difference in an edge's cost
NEAR_EXACT = 0.05     # both fits' windows this close: fit both on the whole pictures
UNCERTAIN = 0.25      # |fit_cost(a->b) - fit_cost(b->a)| below this: the fits cannot tell


@dataclass
class Member:
    """One copy in its family: its place in the tree and in the ranking."""

    index: int                   # position in the input list
    name: str
    score: float                 # no-reference score in (0, 1)
    rank: int = 0                # 1 = best copy (the root)
    parent: int | None = None    # input index of the copy it was made from
    depth: int = 0
    transform: list[str] = field(default_factory=list)   # parent -> this copy, fitted
    error: float | None = None   # MSE of that fit
    uncertain: bool = False      # the fits alone could not orient this edge

    def as_dict(self, names: list[str]) -> dict:
        return {"rank": self.rank, "score": self.score, "file": self.name,
                "parent": None if self.parent is None else names[self.parent],
                "depth": self.depth, "transform": self.transform,
                "fit_error": None if self.error is None else round(float(self.error), 4),
                "uncertain": self.uncertain}


@dataclass
class Family:
    """Copies of one picture, best first; ``members[0]`` is the root."""

    members: list[Member]

    @property
    def root(self) -> Member:
        return self.members[0]


def fit_cost(error: float) -> float:
    """An edge's fit term: log(ERROR_FLOOR + error), less EXACT_BONUS for a bit-exact
    reproduction (error 0), which stands apart from a nearly exact one."""
    return float(np.log(ERROR_FLOOR + error)) - (EXACT_BONUS if error == 0 else 0.0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def pair_fits(copies: list[Copy], progress: bool = False,
              workers: int | None = None) -> dict[tuple[int, int], Fit]:
    """``fit`` of every ordered pair (i, j) = i -> j, geometry found once per pair, on
    ``workers`` threads (default ``default_workers()``)."""
    n = len(copies)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]

    def prepare(c):                    # per-copy work once, before the pairs share it
        keypoints(c)
        c.digest()

    def one(ij):
        return ij, _pair(copies[ij[0]], copies[ij[1]])
    workers = default_workers() if workers is None else workers
    if workers > 1 and len(pairs) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(prepare, copies))
            res = list(_progress(pool.map(one, pairs), len(pairs), progress))
    else:
        for c in copies:
            prepare(c)
        res = [one(ij) for ij in _progress(pairs, len(pairs), progress)]
    out: dict[tuple[int, int], Fit] = {}
    for (i, j), (fwd, back) in res:
        out[i, j], out[j, i] = fwd, back
    return out


def default_workers() -> int:
    """Threads for group mode's per-copy and per-pair work: up to 2 (the fits and decoders
    spend their time in Pillow, OpenCV and numpy, which release the GIL)."""
    import os
    return min(2, os.cpu_count() or 1)


def _progress(it, total: int, enabled: bool):
    if not enabled or total <= 20:
        return it
    from tqdm import tqdm
    return tqdm(it, total=total, desc="copy pairs", mininterval=2)


def _pair(a: Copy, b: Copy) -> tuple[Fit, Fit]:
    """The fits a -> b and b -> a."""
    if a.same_pixels(b):
        same = Fit(0.0, None, ["same pixels"])
        return same, same
    g = align(a, b)
    gi = None if g is None else refine(b, a, inverse(g, a, b))
    fwd, back = fit(a, b, g), fit(b, a, gi)
    if max(fwd.error, back.error) < NEAR_EXACT:     # look at every pixel
        fwd, back = fit(a, b, g, whole=True), fit(b, a, gi, whole=True)
    return fwd, back


def reconstruct(copies: list[Copy], scores: np.ndarray,
                fits: dict[tuple[int, int], Fit] | None = None,
                net_weight: float = NET_WEIGHT) -> list[Family]:
    """Families of ``copies`` (their no-reference ``scores`` in (0, 1)), each a derivation
    tree ranked best first; families in input order of their first copy."""
    import networkx as nx
    n = len(copies)
    scores = np.asarray(scores, np.float64)
    if n == 0:
        return []
    z = _logit(scores)
    fits = pair_fits(copies) if fits is None and n > 1 else (fits or {})
    related = nx.Graph()
    related.add_nodes_from(range(n))
    cost = {}
    for (i, j), f in fits.items():
        if np.isfinite(f.error):
            related.add_edge(i, j)
            cost[i, j] = (fit_cost(f.error) + STEP_COST * f.geometric_steps +
                          net_weight * max(0.0, z[i] - z[j]))
    families = []
    for comp in sorted(nx.connected_components(related), key=min):
        comp = sorted(comp)
        parent = {comp[0]: None}
        if len(comp) > 1:
            g = nx.DiGraph()
            g.add_nodes_from(comp)
            for i in comp:
                for j in comp:
                    if i != j and (i, j) in cost:
                        g.add_edge(i, j, weight=cost[i, j])
            tree = nx.minimum_spanning_arborescence(g, attr="weight")
            parent = {v: None for v in comp}
            for u, v in tree.edges():
                parent[v] = u
        families.append(_family(comp, parent, fits, scores, z, copies))
    return families


def _family(comp, parent, fits, scores, z, copies) -> Family:
    """Rank a tree: the root first, then repeatedly, among the copies whose parent is
    already ranked, a copy with its parent's very pixels (fits exact both ways) or else the
    lowest-scoring one (an order in which every copy comes after the one it was made from,
    and lossless re-saves right after their source)."""
    children: dict[int, list[int]] = {v: [] for v in comp}
    root = next(v for v in comp if parent[v] is None)
    for v, p in parent.items():
        if p is not None:
            children[p].append(v)
    def key(c):
        p = parent[c]
        return (not (fits[p, c].error == 0 and fits[c, p].error == 0), z[c], c)
    members, heap, depth = [], [(False, z[root], root)], {root: 0}
    while heap:
        v = heapq.heappop(heap)[-1]
        m = Member(v, copies[v].name, float(scores[v]), rank=len(members) + 1,
                   parent=parent[v], depth=depth[v])
        if parent[v] is not None:
            f, back = fits[parent[v], v], fits[v, parent[v]]
            m.transform, m.error = f.steps, f.error
            m.uncertain = bool(abs(fit_cost(back.error) - fit_cost(f.error)) < UNCERTAIN)
        members.append(m)
        for c in children[v]:
            depth[c] = depth[v] + 1
            heapq.heappush(heap, key(c))
    return Family(members)


def group_and_reconstruct(copies: list[Copy], scores: np.ndarray, hashes: list[list[str]],
                          threshold: int = 10, progress: bool = False) -> list[Family]:
    """Group by perceptual-hash sets (``ops.image.phash.group_by_hamming``), then
    ``reconstruct`` inside each hash group (which may split it further when some copies'
    geometry matches none of the others).  Families come in input order."""
    from ops.image.phash import group_by_hamming
    first = group_by_hamming(hashes, threshold)
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(first):
        groups.setdefault(g, []).append(i)
    out = []
    for idx in groups.values():
        sub = [copies[i] for i in idx]
        fits = pair_fits(sub, progress) if len(sub) > 1 else {}
        for fam in reconstruct(sub, np.asarray(scores)[idx], fits):
            for m in fam.members:            # back to input indices
                m.index = idx[m.index]
                m.parent = None if m.parent is None else idx[m.parent]
            out.append(fam)
    return sorted(out, key=lambda f: min(m.index for m in f.members))


def load_copies(paths: list[str], k: int | None = None, workers: int | None = None) -> list:
    """``load_copy`` of every path on ``workers`` threads (default ``default_workers()``),
    in order; a file that cannot be read gives its ``ImageLoadError`` in its place."""
    from ops.image.io import ImageLoadError
    from .features import blas_one_thread

    def one(p):
        try:
            return load_copy(p, k)
        except ImageLoadError as exc:
            return exc
    workers = default_workers() if workers is None else workers
    with blas_one_thread():
        if workers < 2 or len(paths) < 2:
            return [one(p) for p in paths]
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, paths))


def load_copy(path: str, k: int | None = None, method: str = "phash"):
    """One file through the project's loader: its ``Copy`` (pixels as displayed), its
    no-reference features (when ``k``: blocks per image) and its crop-robust hash set.
    Raises ``ImageLoadError`` for a file that cannot be read."""
    import os
    from ops.image.io import decode_opened, open_image
    from ops.image.phash import image_hashes
    from .features import extract_image, file_info
    from .fit import copy_from_image
    raw = open_image(path)
    with open(path, "rb") as fh:
        head = fh.read(4096)
    size = os.path.getsize(path)
    info = file_info(raw, size, head[:64])
    rgb = decode_opened(raw, path, "RGB")
    info.width, info.height = rgb.size
    feats = extract_image(rgb, info, k) if k else None
    return copy_from_image(raw, path, rgb, head, size), feats, image_hashes(rgb, method)
