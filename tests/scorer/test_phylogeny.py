"""Group mode: fitted transforms between copies, derivation trees, dj-score groups, sheets."""
import json

import numpy as np
import pytest
from PIL import Image

from ops.scorer_training import transforms as T
from ops.scorer.fit import align, copy_from_bytes, fit, inverse, refine
from ops.scorer.phylogeny import pair_fits, reconstruct
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


def _parents(copies, scores):
    fams = reconstruct(copies, np.asarray(scores, np.float64))
    assert len(fams) == 1
    return fams[0], {m.name: (None if m.parent is None else copies[m.parent].name)
                     for m in fams[0].members}


def test_crop_by_an_odd_offset_is_placed_exactly_and_is_the_child(photo):
    parent = T.to_jpeg(photo, 90, "4:2:0")
    child = T.to_jpeg(T.crop(parent.pixels, (37, 23, 338, 234)), 85, "4:2:0")
    a, b = _copies([parent, child])
    g = align(a, b)
    assert g.turn == 0 and g.box == (37.0, 23.0, 338.0, 234.0)
    fwd, back = _both_ways(a, b)
    assert fwd.error == 0.0                   # the crop re-encoded with its own tables
    assert back.error > 100                   # the crop lacks the rest of the picture
    fam, parents = _parents([b, a], [0.1, 0.9])   # scores alone would pick the crop
    assert fam.root.name == "c0" and parents["c1"] == "c0"


@pytest.mark.parametrize("method", ["bicubic", "bilinear_noaa", "area"])
def test_screenshot_at_a_device_pixel_ratio_is_the_child_of_its_source(photo, method):
    src = T.to_jpeg(photo, 80, "4:2:0")
    scale = 0.4 if method == "area" else 1.5        # area resamplers only shrink
    size = (round(384 * scale), round(288 * scale))
    shot = T.to_png(T.resize(src.pixels, size, method))
    a, b = _copies([src, shot])
    fwd, back = _both_ways(a, b)
    # near exact (Pillow resamples a window a little differently from the whole picture)
    assert fwd.error < 0.3 and back.error > 2 * fwd.error, (fwd, back)
    fam, parents = _parents([b, a], [0.05, 0.95])
    assert fam.root.name == "c0" and parents["c1"] == "c0"


def test_a_lossless_copy_is_ranked_right_after_its_source(photo):
    c0 = T.to_jpeg(photo, 90, "4:2:0")
    c1 = T.to_jpeg(c0.pixels, 75, "4:2:0")
    png = T.to_png(c1.pixels)                            # the very pixels of c1
    c3 = T.to_jpeg(c1.pixels, 60, "4:2:0")
    copies = _copies([c0, c1, png, c3])
    fits = pair_fits(copies, workers=1)
    assert fits[1, 2].error == fits[2, 1].error == 0 and fits[1, 2].steps == ["same pixels"]
    fam, _ = _parents(copies, [0.2, 0.5, 0.9, 0.4])     # the PNG scores worst of all
    assert [m.name for m in fam.members][:3] in (["c0", "c1", "c2"], ["c0", "c2", "c1"])
    assert fam.members[3].name == "c3"


def test_group_of_eight_copies_gets_its_true_tree(photo):
    h, w = photo.shape[:2]
    cam = T.to_jpeg(photo, 92, "4:2:0")
    plat = T.to_jpeg(T.resize(cam.pixels, (288, 216), "bicubic"), 80, "4:2:0")
    made = {"camera": (cam, None), "platform": (plat, "camera"),
            "reupload": (T.to_jpeg(plat.pixels, 70, "4:2:0"), "platform"),
            "messenger": (T.to_webp(plat.pixels, 70), "platform"),
            "gif": (T.to_gif(cam.pixels, 256, dither=True), "camera"),
            "screenshot": (T.to_png(T.resize(plat.pixels, (432, 324), "bilinear")),
                           "platform"),
            "crop": (T.to_jpeg(T.crop(cam.pixels, (19, 13, w - 21, h - 15)), 85, "4:4:4"),
                     "camera"),
            "small": (T.to_jpeg(T.resize(cam.pixels, (160, 120), "area"), 80, "4:2:0"),
                      "camera")}
    names = list(made)
    copies = [copy_from_bytes(made[n][0].data, n) for n in names]
    for worst in ("camera", "platform"):      # the net taking an original for the worst copy
        scores = [0.95 if n == worst else 0.5 for n in names]
        fam, parents = _parents(copies, scores)
        assert fam.root.name == "camera"
        assert parents == {n: made[n][1] for n in names}


def test_evaluation_fits_carry_errors_and_steps_and_rank_the_chain(photo):
    from ops.scorer_training.groups_eval import _fits_of, _ranks
    c0 = T.to_jpeg(photo, 90, "4:2:0")
    c1 = T.to_jpeg(T.resize(c0.pixels, (256, 192), "lanczos"), 75, "4:2:0")
    c2 = T.to_jpeg(c1.pixels, 65, "4:2:0")
    e = _fits_of([c0, c1, c2])
    assert e.shape == (2, 3, 3)
    assert e[1, 0, 1] == 1 and e[1, 1, 2] == 0        # a resize; a plain re-save
    ranks, fams = _ranks(e, np.array([0.9, 0.5, 0.1]))   # scores reversed
    assert len(fams) == 1 and [ranks[i][1] for i in range(3)] == [1, 2, 3]
