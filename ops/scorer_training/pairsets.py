"""Pair sets for training and evaluation: random chains over photos, features per copy."""
from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .chains import chain_pairs, make_chain, reference_mse
from ops.scorer.features import (K_BLOCKS, Features, FileInfo, blas_one_thread, extract_pixels,
                       file_info)
from .transforms import Encoded

logger = logging.getLogger("imgjuicer")
PAIRSET_VERSION = 2        # bump when the stored arrays change: pair-set caches are keyed by it
ARRAYS = ("pixels", "block_meta", "image_meta", "mask", "file_size", "width", "height",
          "jpeg_quality", "format", "chain", "closer", "further", "family", "tie", "failed",
          "global_stats", "ref_mse")
PAIR_ARRAYS = ("closer", "further", "family", "tie")     # one row per pair
COPY_ARRAYS = tuple(a for a in ARRAYS if a not in PAIR_ARRAYS + ("failed",))  # per copy


@dataclass
class PairSet:
    """Per-copy features and file facts, plus (closer, further) index pairs into them."""

    pixels: np.ndarray        # (N, K, 8, 8, 3) uint8
    block_meta: np.ndarray    # (N, K, Mb) float16
    image_meta: np.ndarray    # (N, Mi) float32
    mask: np.ndarray          # (N, K) bool
    file_size: np.ndarray     # (N,) int64
    width: np.ndarray
    height: np.ndarray
    jpeg_quality: np.ndarray  # (N,) float32, 0 when not JPEG
    format: np.ndarray        # (N,) str
    chain: np.ndarray         # (N,) chain index of each copy
    closer: np.ndarray        # (P,) int64 copy index
    further: np.ndarray
    family: np.ndarray        # (P,) str
    tie: np.ndarray           # (P,) bool: identical pixels, no order
    failed: np.ndarray = field(default_factory=lambda: np.array(0))   # chains skipped (error)
    # (N, GLOBAL_DIM) float32 whole-image statistics; (N, 0) in sets built before them
    global_stats: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # (N,) float32 MSE of each copy against its chain's pristine pixels (chains.reference_mse),
    # NaN where the geometry changed (resize, crop) or in sets built before it
    ref_mse: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def save(self, path: str | Path) -> None:
        np.savez(path, **{a: getattr(self, a) for a in ARRAYS})

    @classmethod
    def load(cls, path: str | Path) -> "PairSet":
        with np.load(path, allow_pickle=False) as z:
            arrays = {a: z[a] for a in ARRAYS if a in z.files}
        n = arrays["mask"].shape[0]
        arrays.setdefault("global_stats", np.zeros((n, 0), np.float32))
        arrays.setdefault("ref_mse", np.full(n, np.nan, np.float32))
        return cls(**arrays)

    def __len__(self) -> int:
        return int(self.closer.size)

    def then(self, more: "PairSet") -> "PairSet":
        """This set followed by ``more``, a set of later chains of the same photos and seed
        (``build_pairs(..., start=...)``): together, what one build of all of them gives."""
        if self.chain.size and more.chain.size and more.chain[0] <= self.chain[-1]:
            raise ValueError("the second pair set must hold later chains")
        n = self.chain.size
        out = {}
        for a in ARRAYS:
            x, y = getattr(self, a), getattr(more, a)
            if a in ("closer", "further"):
                y = y + n
            out[a] = x + y if a == "failed" else np.concatenate([x, y])
        return PairSet(**out)

    def first_chains(self, n: int) -> "PairSet":
        """The set of chains 0..n-1 only: what ``build_pairs`` with ``n`` chains (same photos
        and seed) gives, since chain i is seeded by (seed, i) and copies and pairs are
        stored in chain order."""
        if not (np.all(np.diff(self.chain) >= 0) and np.all(np.diff(self.closer) >= 0)):
            raise ValueError("pair set is not in chain order")
        copies = int(np.searchsorted(self.chain, n))
        pairs = int(np.searchsorted(self.closer, copies))
        out = {a: getattr(self, a)[:pairs] for a in PAIR_ARRAYS}
        out.update({a: getattr(self, a)[:copies] for a in COPY_ARRAYS})
        out["failed"] = np.array(n - np.unique(self.chain[:copies]).size, np.int64)
        return PairSet(**out)


def list_photos(folder: str | Path) -> list[Path]:
    files = sorted(p for p in Path(folder).glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no .png photos in {folder}; run tools/prepare_scorer_photos.py")
    return files


def photo_set_id(folder: str | Path) -> str:
    """8 hex digits naming the photos of a folder (their names and bytes): pair-set caches
    carry it, so a cache built from other photos is never reused."""
    import hashlib
    h = hashlib.sha256()
    for p in list_photos(folder):
        h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:8]


def _photo(path: str) -> np.ndarray:
    st = Path(path).stat()
    return _decoded_photo(path, st.st_mtime_ns, st.st_size)


def cached_pairs(photo_dir: str | Path, chains: int, seed: int, k: int, workers: int,
                 cache: str | Path | None, tag: str, progress: bool = True,
                 augment: bool = False, realistic: float = 0.0, resave: float = 0.0) -> PairSet:
    """``build_pairs`` over ``photo_dir``, loaded from (or saved into) the ``cache`` folder
    (no cache when it is empty / None) as ``pairs_<tag>_<chains>_<seed>_k<k>_v..f..d.._p<photo
    set>.npz``: the name carries every version the arrays depend on and the photos' digest,
    so a cache built by other code or from other photos is never reused.  A cached set that
    differs only in its number of chains serves too: one of more chains gives its first
    ``chains``, one of fewer is extended by the chains it lacks.  ``augment``
    (``chains.make_original``) adds ``_aug<AUGMENT_VERSION>`` to the tag, a ``realistic``
    share (``chain_copies``) ``_real<REALISTIC_VERSION>s<percent>``, a ``resave`` share
    ``_resave<RESAVE_VERSION>s<percent>``."""
    from .chains import AUGMENT_VERSION, GENERATOR_VERSION
    from ops.scorer.features import FEATURES_VERSION
    from .realistic import REALISTIC_VERSION
    if augment:
        tag = f"{tag}_aug{AUGMENT_VERSION}"
    if realistic > 0:
        tag = f"{tag}_real{REALISTIC_VERSION}s{round(100 * realistic)}"
    if resave > 0:
        from .resaves import RESAVE_VERSION
        tag = f"{tag}_resave{RESAVE_VERSION}s{round(100 * resave)}"
    name = (f"pairs_{tag}_{chains}_{seed}_k{k}_v{GENERATOR_VERSION}f{FEATURES_VERSION}"
            f"d{PAIRSET_VERSION}_p{photo_set_id(photo_dir)}.npz")
    path = Path(cache) / name if cache else None
    if path is not None and path.exists():
        return PairSet.load(path)
    fewer = None
    if path is not None:            # cached sets of the same chains, only more or fewer
        head, tail = f"pairs_{tag}_", name[len(f"pairs_{tag}_{chains}"):]
        sizes = sorted(int(o.name[len(head):-len(tail)])
                       for o in Path(cache).glob(f"{head}*{tail}")
                       if o.name[len(head):-len(tail)].isdigit())
        bigger = [m for m in sizes if m > chains]
        if bigger:                  # ... one of more chains holds this one as a prefix
            other = f"{head}{bigger[0]}{tail}"
            logger.info("%s: the first %d chains of %s", name, chains, other)
            return PairSet.load(Path(cache) / other).first_chains(chains)
        fewer = max([m for m in sizes if m < chains], default=None)
    t = time.time()
    if fewer is None:
        ps = build_pairs(photo_dir, chains, seed, k=k, workers=workers, progress=progress,
                         augment=augment, realistic=realistic, resave=resave)
    else:                           # ... one of fewer: only the chains it lacks are built
        logger.info("%s: chains %d.. added to %s", name, fewer, f"{head}{fewer}{tail}")
        ps = PairSet.load(Path(cache) / f"{head}{fewer}{tail}").then(
            build_pairs(photo_dir, chains, seed, k=k, workers=workers, progress=progress,
                        start=fewer, augment=augment, realistic=realistic, resave=resave))
    if path is not None:
        ps.save(path)
    logger.info("built %s: %d copies, %d pairs in %.0fs", name, ps.pixels.shape[0], len(ps),
                time.time() - t)
    return ps


@lru_cache(maxsize=48)
def _decoded_photo(path: str, mtime_ns: int, size: int) -> np.ndarray:
    """A photo's pixels, cached per file version (a rewritten file is decoded again)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def copy_features(c: Encoded, k: int = K_BLOCKS) -> tuple[Features, FileInfo]:
    """Features of a chain copy from the pixels the chain already decoded (the same as
    ``extract_bytes(c.data)``, one decode fewer), and its file info (header only)."""
    with Image.open(io.BytesIO(c.data)) as im:
        info = file_info(im, len(c.data), c.data[:64])
    return extract_pixels(c.pixels, info, k), info


def _chain_rows(args) -> tuple[list[dict], list[tuple], str | None]:
    """Features of every copy of chain ``index`` and its pairs (runs in a worker); a chain
    that fails yields no rows and its error (counted in ``PairSet.failed``), never a crash
    of the whole build."""
    try:
        return (*_chain_rows_or_raise(args), None)
    except Exception as exc:
        return [], [], f"chain {args[1]}: {type(exc).__name__}: {exc}"


def is_realistic(seed: int, index: int, realistic: float) -> bool:
    """Whether chain ``index`` is a realistic one (``realistic.make_real_chain``) in a set
    with that share of them: drawn from its own stream, so the other chains stay the very
    chains a set without realistic ones holds."""
    return realistic > 0 and (realistic >= 1 or
                              np.random.default_rng([seed, index, 21]).random() < realistic)


def is_resave(seed: int, index: int, resave: float) -> bool:
    """Whether chain ``index`` is a same-size JPEG re-save chain (``resaves``) in a set with
    that share of them: its own stream again, so a set without them is unchanged."""
    return resave > 0 and (resave >= 1 or
                           np.random.default_rng([seed, index, 22]).random() < resave)


def chain_copies(photos: list[Path], index: int, seed: int, augment: bool = False,
                 realistic: float = 0.0, resave: float = 0.0):
    """The copies and step families of chain ``index``: photo index mod n, seeded by
    (seed, index), so every tool that regenerates a chain gets the same copies; a share
    ``resave`` of the chains are same-size JPEG re-save chains (``is_resave``), and a share
    ``realistic`` of the others realistic ones (``is_realistic``)."""
    rng = np.random.default_rng([seed, index])
    photo = _photo(str(photos[index % len(photos)]))
    if is_resave(seed, index, resave):
        from .resaves import make_resave_chain
        return make_resave_chain(photo, rng)
    if is_realistic(seed, index, realistic):
        from .realistic import make_real_chain
        return make_real_chain(photo, rng)
    return make_chain(photo, rng, augment=augment)


def map_chains(fn, jobs: list, workers: int = 1, progress: bool = True) -> list:
    """``fn`` over the per-chain ``jobs`` in order, on ``workers`` forked processes."""
    if workers > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(workers) as pool:
            return list(_progress(pool.imap(fn, jobs, chunksize=4), len(jobs), progress))
    return list(_progress(map(fn, jobs), len(jobs), progress))


def _chain_rows_or_raise(args) -> tuple[list[dict], list[tuple]]:
    photos, index, seed, k, augment, realistic, resave = args
    copies, fams = chain_copies(photos, index, seed, augment, realistic, resave)
    rows = []
    pristine = copies[0].pristine
    with blas_one_thread():
        for c in copies:
            f, info = copy_features(c, k)
            rows.append({"f": f, "size": len(c.data), "w": info.width, "h": info.height,
                         "q": info.jpeg_quality, "fmt": info.format,
                         "mse": np.nan if pristine is None else reference_mse(pristine,
                                                                              c.pixels)})
    pairs = [(p.closer, p.further, p.family, p.tie) for p in chain_pairs(copies, fams)]
    return rows, pairs


def build_pairs(photo_dir: str | Path, n_chains: int, seed: int, k: int = K_BLOCKS,
                workers: int = 1, progress: bool = True, start: int = 0,
                augment: bool = False, realistic: float = 0.0, resave: float = 0.0) -> PairSet:
    """Generate chains ``start`` .. ``n_chains`` - 1 (chain i uses photo i mod n, seeded by
    (seed, i); ``augment``: recoloured and reduced originals, ``chains.make_original``;
    ``realistic``: that share of realistic chains, ``resave``: that share of re-save chains,
    ``chain_copies``)."""
    photos = list_photos(photo_dir)
    results = map_chains(_chain_rows, [(photos, i, seed, k, augment, realistic, resave)
                                       for i in range(start, n_chains)], workers, progress)
    feats, facts, chain_of, pairs = [], [], [], []
    failed = [err for _, _, err in results if err]
    for err in failed[:20]:
        logger.warning("skipped %s", err)
    if len(failed) > max(1, (n_chains - start) // 100):
        raise RuntimeError(f"{len(failed)} of {n_chains - start} chains failed; "
                           f"first: {failed[0]}")
    for ci, (rows, prs, _) in enumerate(results, start):
        base = len(feats)
        for r in rows:
            feats.append(r["f"])
            facts.append(r)
            chain_of.append(ci)
        pairs += [(base + a, base + b, fam, tie) for a, b, fam, tie in prs]
    return PairSet(
        pixels=np.stack([f.pixels for f in feats]),
        block_meta=np.stack([f.block_meta for f in feats]).astype(np.float16),
        image_meta=np.stack([f.image_meta for f in feats]),
        mask=np.stack([f.mask for f in feats]),
        file_size=np.array([r["size"] for r in facts], np.int64),
        width=np.array([r["w"] for r in facts], np.int64),
        height=np.array([r["h"] for r in facts], np.int64),
        jpeg_quality=np.array([r["q"] for r in facts], np.float32),
        format=np.array([r["fmt"] for r in facts]),
        chain=np.array(chain_of, np.int64),
        closer=np.array([p[0] for p in pairs], np.int64),
        further=np.array([p[1] for p in pairs], np.int64),
        family=np.array([p[2] for p in pairs]),
        tie=np.array([p[3] for p in pairs], bool),
        failed=np.array(len(failed), np.int64),
        global_stats=np.stack([f.global_stats for f in feats]),
        ref_mse=np.array([r["mse"] for r in facts], np.float32))


def _progress(it, total: int, enabled: bool):
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, total=total, desc="chains", mininterval=5)
