"""Realistic copy chains: camera / web originals, platform copies, re-uploads."""
import io
from collections import Counter

import numpy as np
from PIL import Image

from ops.scorer_training import realistic as RL
from ops.scorer_training.pairsets import is_realistic
from ops.scorer.features import file_info
from tests.scorer.synth import photo_like


def _info(enc):
    with Image.open(io.BytesIO(enc.data)) as im:
        return file_info(im, len(enc.data), enc.data[:64]), im.quantization if im.format == "JPEG" else None


def test_originals_are_mostly_moderate_jpegs_with_varied_tables():
    photo = photo_like(300, 400, seed=5)
    fmts, quals, ijg, subs = Counter(), [], 0, Counter()
    base = RL.ijg_base_tables()[0]
    for i in range(80):
        orig, nominal = RL.make_real_original(photo, np.random.default_rng([9, i]))
        assert orig.pristine is not None and 500 < nominal < 8000
        fmts[orig.format] += 1
        if orig.format == "JPEG":
            info, q = _info(orig)
            quals.append(info.jpeg_quality)
            subs[info.subsampling] += 1
            luma = np.array(q[0], float)
            ratio = luma / base
            ijg += bool(np.allclose(ratio, np.median(ratio), atol=0.6))
    assert fmts["JPEG"] >= 45 and fmts["PNG"] >= 4 and fmts["WEBP"] >= 2
    assert 60 <= min(quals) and max(quals) <= 99
    assert subs[2] > subs[0] > 0                      # 4:2:0 mostly, some 4:4:4
    assert 0 < ijg < len(quals)                        # IJG and other tables both occur


def test_platform_and_reupload_resize_by_nominal_size_and_reencode():
    photo = photo_like(300, 400, seed=6)
    rng = np.random.default_rng(1)
    orig, _ = RL.make_real_original(photo, rng)
    # a 12 MP nominal original (4243 px long side) sent to a platform of <= 2048 px shrinks
    plat, nom = RL.real_step(orig, "platform", 4243.0, rng)
    assert plat.format == "JPEG" and max(plat.size) < max(orig.size) and nom <= 2048
    info, _ = _info(plat)
    assert info.subsampling == 2 and 65 <= info.jpeg_quality <= 90
    re, nom2 = RL.real_step(plat, "reupload", nom, rng)
    assert re.format == "JPEG" and nom2 <= nom and _info(re)[0].jpeg_quality <= 85
    assert (re.size == plat.size) == (nom2 == nom)     # shrunk only for a smaller platform
    msg, _ = RL.real_step(plat, "messenger", nom, rng)
    assert msg.format == "WEBP"
    gif, _ = RL.real_step(plat, "gif", nom, rng)
    assert gif.format == "GIF" and len(np.unique(gif.pixels.reshape(-1, 3), axis=0)) <= 256


def test_realistic_share_picks_chains_from_their_own_stream():
    picks = [is_realistic(3, i, 0.5) for i in range(400)]
    assert 150 < sum(picks) < 250
    assert all(is_realistic(3, i, 1.0) for i in range(20))
    assert not any(is_realistic(3, i, 0.0) for i in range(20))


def test_chain_families_and_reupload_follows_platform():
    photo = photo_like(300, 400, seed=7)
    fams = Counter()
    after = Counter()
    for i in range(60):
        copies, f = RL.make_real_chain(photo, np.random.default_rng([2, i]))
        assert len(copies) == len(f) + 1 >= 2
        fams.update(f)
        after.update(b for a, b in zip(f, f[1:]) if a in ("platform", "reupload"))
    assert set(fams) <= set(RL.REAL_FAMILIES) and fams["platform"] > 5
    assert after["reupload"] >= max(v for k, v in after.items() if k != "reupload")
