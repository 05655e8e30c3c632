"""Same-size JPEG re-save chains: a training family for the re-upload case.

A platform copy (or a camera / web original) saved again as JPEG at the same size and at a
quality no higher than its own is the commonest copy of a copy, and the hardest one for a
single file: the new file's tables are often those of its parent, its pixels differ from
the parent's by rounding and one more pass of chroma subsampling, and its file is about as
big.  Realistic chains hold few such steps (a re-upload there also resizes), so these chains
make them a family of their own: a realistic parent (``realistic.make_real_original``, half
of the JPEG ones and every other one sent through a platform first; or a plain IJG JPEG of
the picture at quality 40-98) and one to three re-saves, each at a quality drawn at or
below the estimated quality of the copy it is made from (the same quality a third of the
time), 4:2:0, 4:4:4 or 4:2:2, optimised or not.  Used by ``train_scorer.py --resave SHARE``;
the evaluation sets never hold them.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from . import realistic as RL
from . import transforms as T
from .transforms import Encoded

RESAVE_VERSION = 1          # bump when these chains change: pair-set caches carry it
FAMILY = "resave_jpeg"
MAX_GAP = 30                # a re-save is at most this many quality points below its parent
SAME_QUALITY = 1 / 3        # share of re-saves at the parent's very (estimated) quality
SUBSAMPLINGS = ("4:2:0", "4:2:0", "4:4:4", "4:2:2")


def estimated_quality(c: Encoded) -> int:
    """The IJG quality nearest to a JPEG copy's luma table (``features.file_info``); 0 for
    other formats."""
    from ops.scorer.features import file_info
    with Image.open(io.BytesIO(c.data)) as im:
        return int(round(file_info(im, len(c.data)).jpeg_quality))


def resave_quality(parent_q: int, rng: np.random.Generator) -> int:
    """Quality of a re-save of a copy of estimated quality ``parent_q`` (0: not a JPEG,
    taken as 75): the same one with probability ``SAME_QUALITY``, else 1..``MAX_GAP`` lower,
    never below 5."""
    q = parent_q or 75
    if rng.random() < SAME_QUALITY:
        return q
    return max(5, q - int(rng.integers(1, MAX_GAP + 1)))


def make_resave_chain(photo: np.ndarray, rng: np.random.Generator,
                      max_resaves: int = 3) -> tuple[list[Encoded], list[str]]:
    """A parent file and 1..``max_resaves`` same-size JPEG re-saves of it, each made from
    the one before; the copies and the step families (all ``FAMILY``)."""
    if rng.random() < 0.2:                  # a plain IJG JPEG of a crop of the picture
        first, _ = RL.make_real_original(photo, rng)
        px = first.pristine
        first = T.to_jpeg(px, int(rng.integers(40, 99)), str(rng.choice(SUBSAMPLINGS)),
                          optimize=bool(rng.integers(2)))
        first.pristine = px
        copies = [first]
    else:
        first, nominal = RL.make_real_original(photo, rng)
        copies = [first]
        if first.format != "JPEG" or rng.random() < 0.5:
            copies.append(RL.real_step(first, "platform", nominal, rng)[0])
    fams = ["platform"] * (len(copies) - 1)
    for _ in range(int(rng.integers(1, max_resaves + 1))):
        src = copies[-1]
        q = resave_quality(estimated_quality(src), rng)
        copies.append(T.to_jpeg(src.pixels, q, str(rng.choice(SUBSAMPLINGS)),
                                optimize=bool(rng.integers(2)),
                                progressive=rng.random() < 0.2))
        fams.append(FAMILY)
    return copies, fams
