"""ops.scorer_training.photos (tools/prepare_scorer_photos.py): only photographs, every dropped picture recorded."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.scorer.synth import photo_like

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "data" / "scorer" / "photos"


@pytest.fixture(scope="module")
def prep():
    from ops.scorer_training import photos
    return photos


def _png(px: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "PNG")
    return buf.getvalue()


def _items():
    photo = photo_like(600, 800, seed=3)
    render = photo_like(600, 800, seed=4)
    flat = np.full((600, 800, 3), 90, np.uint8)
    small = photo_like(600, 800, seed=5)[::2, ::2]          # the same picture, smaller file
    return [("pkg", "a/photo.jpg", _png(photo)), ("pkg", "a/render.png", _png(render)),
            ("pkg", "a/flat.png", _png(flat)), ("pkg", "b/photo.jpg", _png(small)),
            ("pkg", "a/broken.png", b"not an image"),
            ("pkg", "a/icon.png", _png(photo_like(64, 64, seed=6)))]


def test_write_photos_keeps_photos_and_records_every_drop(prep, tmp_path):
    out = tmp_path / "photos"
    sheet = tmp_path / "sheet.png"
    res = prep.write_photos(_items(), out, heldout_percent=0, contact_sheet=sheet,
                            not_photos={"pkg:render": "render"})
    assert res["photos"] == 1 and res["train"] == 1 and res["excluded"] == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["key"] for m in manifest] == ["pkg:photo"]
    assert manifest[0]["path"] == "a/photo.jpg"                  # the largest file wins
    assert manifest[0]["size"] == [400, 300]                     # reduced by 2
    excluded = {e["key"]: e["reason"] for e in json.loads((out / "excluded.json").read_text())}
    assert excluded["pkg:render"] == "not a photo: render"
    assert excluded["pkg:flat"].startswith("flat: 0%")
    assert excluded["pkg:broken"].startswith("unreadable: ")
    assert excluded["pkg:icon"] == "too small: short side < 256 px"
    assert sorted(p.name for p in (out / "train").glob("*.png")) == ["pkg_photo.png"]
    assert not list((out / "heldout").glob("*.png"))
    with Image.open(sheet) as im:           # every candidate large enough to be reduced
        assert im.size[0] == 8 * 200 and im.size[1] == 150 + 14
    assert prep.is_current(out)
    (out / "version.txt").write_text("1\n")                      # an older selection
    assert not prep.is_current(out)


def test_not_photos_must_name_pictures_the_sources_hold(prep, tmp_path):
    with pytest.raises(RuntimeError, match="pkg:gone"):
        prep.write_photos(_items(), tmp_path / "p", not_photos={"pkg:gone": "render"})


def test_rerun_replaces_the_previous_selection(prep, tmp_path):
    out = tmp_path / "photos"
    prep.write_photos(_items(), out, heldout_percent=0, not_photos={})
    assert len(list((out / "train").glob("*.png"))) == 2
    prep.write_photos(_items(), out, heldout_percent=0, not_photos={"pkg:render": "render"})
    assert sorted(p.name for p in (out / "train").glob("*.png")) == ["pkg_photo.png"]


@pytest.mark.skipif(not (PHOTOS / "manifest.json").is_file(),
                    reason="scorer photos not prepared (tools/prepare_scorer_photos.py)")
def test_prepared_photos_hold_no_listed_non_photo(prep):
    assert prep.is_current(PHOTOS), "photos from an older selection: run make install"
    manifest = json.loads((PHOTOS / "manifest.json").read_text())
    keys = {m["key"] for m in manifest}
    assert keys and not keys & set(prep.NOT_PHOTOS)
    excluded = {e["key"] for e in json.loads((PHOTOS / "excluded.json").read_text())}
    assert set(prep.NOT_PHOTOS) <= excluded
    on_disk = {p.relative_to(PHOTOS).as_posix() for p in PHOTOS.glob("*/*.png")}
    assert on_disk == {m["file"] for m in manifest}
