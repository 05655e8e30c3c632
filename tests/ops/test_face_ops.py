"""Face count / ratio filters and the face blur mapper on real photos with real faces, using the
Haar cascades that ship inside the opencv wheel."""
import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from ops import OPERATORS
from ops.base import RunContext
from ops.fields import Fields, StatsKeys, Status
from ops.models.assets import ModelNotFoundError
from tests.ops.conftest import batch_of_rows

FACES = {"grace_hopper.jpg": 1, "astronaut.png": 1, "coffee.jpg": 0, "chelsea.png": 0,
         "two_faces.png": 2}


def _run(name, rows, **kw):
    op = OPERATORS.get(name)(**kw)
    out = op.run_batched(batch_of_rows(rows))
    return out, [json.loads(s) for s in out[Fields.stats]]


def test_face_count_filter_counts_real_faces(photos):
    names = list(FACES)
    out, stats = _run("image_face_count_filter", [{"images": [photos[n]]} for n in names])
    assert [s[StatsKeys.face_counts] for s in stats] == [[FACES[n]] for n in names]
    # Data-Juicer's defaults keep exactly one face
    assert [out[Fields.status][i] == Status.kept for i in range(len(names))] == \
        [FACES[n] == 1 for n in names]
    assert "face_counts=[2] outside [1, 1]" in out[Fields.reason][names.index("two_faces.png")]


def test_face_count_filter_any_or_all_and_range(photos):
    rows = [{"images": [photos["grace_hopper.jpg"], photos["coffee.jpg"]]},
            {"images": [photos["two_faces.png"]]}, {"images": []}]
    out, stats = _run("image_face_count_filter", rows, any_or_all="all")
    assert stats[0][StatsKeys.face_counts] == [1, 0]
    assert out[Fields.status] == [Status.filtered, Status.filtered, Status.kept]
    out, _ = _run("image_face_count_filter", rows, min_face_count=1, max_face_count=2)
    assert out[Fields.status] == [Status.kept, Status.kept, Status.kept]


def test_face_ratio_filter_measures_the_largest_face(photos):
    names = list(FACES)
    out, stats = _run("image_face_ratio_filter", [{"images": [photos[n]]} for n in names],
                      min_ratio=0.1, max_ratio=0.4)
    ratios = {n: s[StatsKeys.face_ratios][0] for n, s in zip(names, stats)}
    assert ratios["coffee.jpg"] == ratios["chelsea.png"] == 0.0
    # Grace Hopper's portrait: her face is ~100 px square in a 218x256 picture
    assert 0.12 < ratios["grace_hopper.jpg"] < 0.25
    # side by side, each face is half as large a share of the twice-as-wide picture (the
    # cascade sizes boxes in steps of scaleFactor=1.1, so areas agree to ~20%)
    assert ratios["two_faces.png"] == pytest.approx(ratios["grace_hopper.jpg"] / 2, rel=0.25)
    assert ratios["astronaut.png"] < ratios["grace_hopper.jpg"]
    kept = {n for n, s in zip(names, out[Fields.status]) if s == Status.kept}
    assert kept == {n for n in names if 0.1 <= ratios[n] <= 0.4}


def test_detector_parameters_change_what_is_found(photos):
    rows = [{"images": [photos["astronaut.png"]]}]
    _, default = _run("image_face_count_filter", rows)
    _, big_only = _run("image_face_count_filter", rows, minSize=[120, 120])
    assert default[0][StatsKeys.face_counts] == [1] and big_only[0][StatsKeys.face_counts] == [0]


def test_face_ops_bad_image_is_a_per_sample_error(photos):
    rows = [{"images": [photos["grace_hopper.jpg"]]}, {"images": [photos["broken.jpg"]]}]
    for name in ("image_face_count_filter", "image_face_ratio_filter"):
        out, _ = _run(name, rows)
        assert out[Fields.status] == [Status.kept, Status.error]
        assert "broken.jpg" in out[Fields.reason][1] and out[Fields.reason][1].startswith(name)


def test_unknown_cascade_names_what_ships():
    with pytest.raises(ModelNotFoundError, match="haarcascade_frontalface_default.xml"):
        OPERATORS.get("image_face_count_filter")(cv_classifier="haarcascade_nose.xml")
    op = OPERATORS.get("image_face_ratio_filter")(cv_classifier="haarcascade_frontalface_alt2.xml")
    assert op.cv_classifier.endswith("haarcascade_frontalface_alt2.xml")


def _laplacian_energy(arr):
    g = arr.astype(np.float64).mean(axis=2)
    return float(np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2]
                        - g[1:-1, 2:]).mean())


def test_face_blur_mapper_blurs_only_the_faces(photos, tmp_path):
    op = OPERATORS.get("image_face_blur_mapper")(radius=8).bind(RunContext(work_dir=str(tmp_path)))
    rows = [{"images": [photos["two_faces.png"], photos["coffee.jpg"]]}, {"images": []},
            {"images": [photos["broken.jpg"]]}]
    out = op.run_batched(batch_of_rows(rows))
    assert out[Fields.status] == [Status.kept, Status.kept, Status.error]
    assert "broken.jpg" in out[Fields.reason][2]
    new_two, same_coffee = out["images"][0]
    assert same_coffee == photos["coffee.jpg"]                  # no face: untouched
    assert new_two.startswith(str(tmp_path / "__dj__produced_data__" / "image_face_blur_mapper"))
    assert "two_faces__dj_hash_#" in new_two and new_two.endswith(".png")
    assert out[Fields.source_file][0] == [photos["two_faces.png"], photos["coffee.jpg"]]
    boxes = json.loads(out[Fields.meta][0])["face_boxes"]
    assert len(boxes[0]) == 2 and boxes[1] == []
    before = np.asarray(Image.open(photos["two_faces.png"]).convert("RGB"))
    after = np.asarray(Image.open(new_two).convert("RGB"))
    inside = np.zeros(before.shape[:2], bool)
    for x, y, w, h in boxes[0]:
        inside[y:y + h, x:x + w] = True
        assert _laplacian_energy(after[y:y + h, x:x + w]) < \
            0.5 * _laplacian_energy(before[y:y + h, x:x + w])
    assert np.array_equal(after[~inside], before[~inside])     # PNG: the rest is bit-exact
    # blurred this hard (gaussian sigma 8 on ~100 px faces) the detector finds them no more
    recount = OPERATORS.get("image_face_count_filter")(min_face_count=0)
    stats = json.loads(recount.run_batched(batch_of_rows([{"images": [new_two]}]))
                       [Fields.stats][0])
    assert stats[StatsKeys.face_counts] == [0]


def test_face_blur_box_kernel_is_pillows_and_paths_keep_their_form(photos, tmp_path):
    op = OPERATORS.get("image_face_blur_mapper")(blur_type="box", radius=3, save_dir=str(tmp_path))
    out = op.run_batched(batch_of_rows([{"images": photos["astronaut.png"]}]))
    path = out["images"][0]
    assert isinstance(path, str) and path.startswith(str(tmp_path))   # a string stays a string
    (x, y, w, h), = json.loads(out[Fields.meta][0])["face_boxes"][0]
    src = Image.open(photos["astronaut.png"]).convert("RGB")
    expect = np.asarray(src.crop((x, y, x + w, y + h)).filter(ImageFilter.BoxBlur(3)))
    got = np.asarray(Image.open(path).convert("RGB"))[y:y + h, x:x + w]
    assert np.array_equal(got, expect)
