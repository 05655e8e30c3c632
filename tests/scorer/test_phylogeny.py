"""Group mode: fitted transforms between copies, derivation trees, dj-score groups, sheets."""
import json

import numpy as np
import pytest
from PIL import Image

from ops.scorer_training import transforms as T
from ops.scorer.fit import align, copy_from_bytes, fit, inverse, refine
from ops.scorer.phylogeny import reconstruct
from tests.scorer.synth import photo_like


@pytest.fixture(scope="module")
def photo():
    return photo_like(288, 384, seed=41)


def _copies(encs):
    return [copy_from_bytes(e.data, f"c{i}") for i, e in enumerate(encs)]


def _both_ways(a, b):
    g = align(a, b)
    assert g is not None
    return fit(a, b, g), fit(b, a, refine(b, a, inverse(g, a, b)))


def test_resized_reencode_is_reproduced_from_its_parent_not_the_reverse(photo):
    parent = T.to_jpeg(photo, 85, "4:2:0")
    child = T.to_jpeg(T.resize(parent.pixels, (230, 173), "lanczos"), 70, "4:2:0")
    a, b = _copies([parent, child])
    fwd, back = _both_ways(a, b)
    assert fwd.error < 0.5 * back.error
    assert any("resize" in s for s in fwd.steps) and any("own tables" in s for s in fwd.steps)


def test_a_reupload_at_lower_quality_and_same_size_is_the_child(photo):
    parent = T.to_jpeg(photo, 80, "4:2:0")
    child = T.to_jpeg(parent.pixels, 72, "4:2:0")
    a, b = _copies([parent, child])
    fwd, back = _both_ways(a, b)
    assert fwd.error < back.error


def test_crop_and_quarter_turn_are_found(photo):
    parent = T.to_png(photo)
    crop = T.crop(photo, (40, 30, 340, 250))
    child = T.to_jpeg(np.ascontiguousarray(np.rot90(crop)), 90, "4:4:4")
    a, b = _copies([parent, child])
    g = align(a, b)
    assert g is not None and g.turn in (1, 3)
    assert g.covered > 0.99
    fwd, back = _both_ways(a, b)
    assert fwd.error < 5 and back.error > 100        # the crop cannot restore the rest
    assert any("turned" in s for s in fwd.steps)


def test_palette_and_webp_children(photo):
    parent = T.to_jpeg(photo, 88, "4:2:0")
    for child in (T.to_gif(parent.pixels, 256, dither=False), T.to_gif(parent.pixels, 64, True),
                  T.to_webp(parent.pixels, 60)):
        a, b = _copies([parent, child])
        fwd, back = _both_ways(a, b)
        assert fwd.error < back.error, (child.format, fwd, back)


def test_chain_tree_root_and_ranking(photo):
    c0 = T.to_jpeg(photo, 90, "4:2:0")
    c1 = T.to_jpeg(T.resize(c0.pixels, (288, 216), "bicubic"), 80, "4:2:0")
    c2 = T.to_jpeg(c1.pixels, 70, "4:2:0")
    c3 = T.to_gif(c2.pixels, 256, dither=True)
    order = [2, 0, 3, 1]                          # shuffled input
    copies = _copies([[c0, c1, c2, c3][k] for k in order])
    # scores that alone would rank the re-upload first: the tree must override them
    scores = np.array([0.1, 0.3, 0.6, 0.4])
    fams = reconstruct(copies, scores)
    assert len(fams) == 1
    by_name = {m.name: m for m in fams[0].members}
    names = {k: f"c{order.index(k)}" for k in range(4)}
    assert fams[0].root.name == names[0]
    assert [m.name for m in fams[0].members] == [names[k] for k in range(4)]
    assert by_name[names[3]].parent == order.index(2) and by_name[names[3]].depth == 3


def test_unrelated_pictures_form_separate_families(photo):
    other = photo_like(288, 384, seed=99)
    copies = _copies([T.to_png(photo), T.to_png(other), T.to_jpeg(photo, 60)])
    fams = reconstruct(copies, np.array([0.2, 0.1, 0.5]))
    assert sorted(sorted(m.index for m in f.members) for f in fams) == [[0, 2], [1]]


def test_dj_score_groups_folders_json_and_sheet(photo, tmp_path, capsys):
    from pipelines.cli.score import main as dj_score
    d = tmp_path / "in" / "sub"
    d.mkdir(parents=True)
    c0 = T.to_jpeg(photo, 90, "4:2:0")
    c1 = T.to_jpeg(T.resize(c0.pixels, (256, 192), "lanczos"), 75, "4:2:0")
    (d / "orig.jpg").write_bytes(c0.data)
    (d / "small.jpg").write_bytes(c1.data)
    Image.fromarray(photo_like(200, 260, seed=77)).save(tmp_path / "in" / "other.png")
    sheet = tmp_path / "sheet.png"
    assert dj_score([str(tmp_path / "in"), "--json", "--sheet", str(sheet)]) == 0
    cap = capsys.readouterr()
    rows = [json.loads(x) for x in cap.out.splitlines()]
    assert len(rows) == 3 and {r["group"] for r in rows} == {1, 2}
    small = next(r for r in rows if r["file"].endswith("small.jpg"))
    orig = next(r for r in rows if r["file"].endswith("orig.jpg"))
    assert orig["rank"] == 1 and orig["parent"] is None and orig["depth"] == 0
    assert small["rank"] == 2 and small["parent"].endswith("orig.jpg") and small["depth"] == 1
    assert any("resize" in s for s in small["transform"])
    assert "not all copies of one picture" in cap.err
    with Image.open(sheet) as im:
        assert im.width >= 2 * 200 and im.height > 200
    assert dj_score([str(d / "orig.jpg"), str(d / "small.jpg")]) == 0
    text = capsys.readouterr()
    assert "group 1: 2 copies" in text.out and "<- " in text.out and text.err == ""
