"""The shipped weights load (weights_only) and order an original above damaged copies."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ops.scorer_training import transforms as T
from ops.scorer.features import extract_bytes
from ops.scorer.weights import Scorer, default_weights_path, load_model
from tests.scorer.synth import photo_like

HELDOUT = Path(__file__).resolve().parents[2] / "data" / "scorer" / "photos" / "heldout"


@pytest.fixture(scope="module")
def scorer():
    return Scorer()


def test_weights_are_small_and_load_with_weights_only():
    p = default_weights_path()
    assert p.is_file() and p.stat().st_size < 5_000_000
    model = load_model(p)
    assert model.config["k"] > 0 and not model.training


def _check(scorer, px):
    h, w = px.shape[:2]
    orig = T.to_png(px)
    q20 = T.to_jpeg(px, 20)
    downup = T.to_png(T.resize(T.resize(px, (w // 2, h // 2), "bicubic"), (w, h), "bicubic"))
    s = scorer.score_features([extract_bytes(c.data, scorer.k) for c in (orig, q20, downup)])
    assert np.all((s > 0) & (s < 1))
    assert s[0] < s[1], f"original {s[0]:.4f} vs q20 JPEG {s[1]:.4f}"
    assert s[0] < s[2], f"original {s[0]:.4f} vs 50% down-up {s[2]:.4f}"


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_original_beats_q20_and_downup_on_synthetic_photos(scorer, seed):
    _check(scorer, photo_like(320, 448, seed))


@pytest.mark.skipif(not HELDOUT.is_dir(), reason="held-out photos not prepared "
                    "(tools/prepare_scorer_photos.py)")
def test_original_beats_q20_and_downup_on_heldout_photos(scorer):
    photos = sorted(HELDOUT.glob("*.png"))       # every held-out photo, not a chosen few
    assert len(photos) >= 10
    for p in photos:
        with Image.open(p) as im:
            px = np.asarray(im.convert("RGB"))[:384, :512]
        _check(scorer, px)
