"""Scorer test fixtures: a picture never used in training and degraded copies of it."""
import pytest
from PIL import Image

from ops.scorer_training import transforms as T
from tests.scorer.synth import photo_like


@pytest.fixture(scope="session")
def copies_dir(tmp_path_factory):
    """original.png, five degraded copies of it, and an unrelated picture."""
    d = tmp_path_factory.mktemp("copies")
    a = photo_like(384, 512, seed=31)
    h, w = a.shape[:2]
    Image.fromarray(a).save(d / "original.png")
    (d / "q20.jpg").write_bytes(T.to_jpeg(a, 20).data)
    small = T.resize(a, (w // 2, h // 2), "bicubic")
    Image.fromarray(T.resize(small, (w, h), "bicubic")).save(d / "downup.png")
    (d / "web.webp").write_bytes(T.to_webp(a, 30).data)
    (d / "anim.gif").write_bytes(T.to_gif(a, 64, dither=True).data)
    shot = T.resize(T.to_jpeg(a, 60).pixels, (int(w * 1.5), int(h * 1.5)), "bilinear")
    Image.fromarray(shot).save(d / "screenshot.png")
    Image.fromarray(photo_like(300, 400, seed=32)).save(d / "other.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return d


DEGRADED = ("q20.jpg", "downup.png", "web.webp", "anim.gif", "screenshot.png")
