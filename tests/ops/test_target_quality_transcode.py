"""image_target_quality_transcode_mapper: every written file reaches the target, at the fewest
bytes the search measured."""
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ops.base import RunContext, batch_of, rows_of
from ops.fields import Fields, Status
from ops.image.target_quality import TargetSearch, measure_metric
from ops.mapper.image_target_quality_transcode_mapper import ImageTargetQualityTranscodeMapper

REPO = Path(__file__).resolve().parents[2]
PAIR = REPO / "recipes" / "data" / "pairs" / "coffee_cat_1.jpg"


@pytest.fixture(scope="module")
def photo_png(tmp_path_factory):
    """A lossless 160x120 crop of a real photo (big as a PNG: plenty to save)."""
    d = tmp_path_factory.mktemp("tq")
    img = Image.open(PAIR).convert("RGB").crop((100, 20, 260, 140))
    p = d / "crop.png"
    img.save(p)
    return p


def _op(tmp_path, **kw):
    op = ImageTargetQualityTranscodeMapper(output_dir="out", **kw)
    op.bind(RunContext(work_dir=str(tmp_path)))
    return op


def _decoded(path: str) -> np.ndarray:
    if path.endswith(".jxl"):
        import imagecodecs
        return imagecodecs.jpegxl_decode(Path(path).read_bytes())[..., :3]
    return np.asarray(Image.open(path).convert("RGB"))


def test_written_file_reaches_target_at_fewest_measured_bytes(photo_png, tmp_path):
    op = _op(tmp_path, target=80, formats=["jpeg", "webp"], image_keys=["images", "copy"])
    out = rows_of(op.run_batched(batch_of([{"images": [str(photo_png)], "copy": str(photo_png),
                                            Fields.id: "0"}])))[0]
    assert out[Fields.status] == Status.kept
    (rec,) = out[Fields.meta]["transcode"]        # the same source under two keys: once
    written = Path(rec["output"])
    assert out["images"] == [str(written)] and out["copy"] == str(written)
    assert written.parent == tmp_path / "out" and written.suffix in (".jpg", ".webp")
    assert written.stat().st_size == rec["bytes"] < rec["source_bytes"]
    assert rec["saved_bytes"] == rec["source_bytes"] - rec["bytes"]
    assert out[Fields.stats]["transcode_bytes_saved"] == rec["saved_bytes"]
    ref = np.asarray(Image.open(photo_png).convert("RGB"))
    again = measure_metric(ref, _decoded(str(written)), "ssimulacra2")
    assert again >= 80 and abs(again - rec["value"]) < 1e-3     # measured, not interpolated
    # no measured encode of any format that passes is smaller
    choice = TargetSearch("ssimulacra2", 80, ["jpeg", "webp"]).run(ref)
    passing = [t for t in choice.trials if t["value"] >= 80]
    assert min(t["bytes"] for t in passing) == rec["bytes"]
    # the interpolated setting was tried: some trial lies strictly between two probes
    probes = set(TargetSearch("ssimulacra2", 80, ["jpeg"]).probes["jpeg"])
    assert any(t["format"] == "jpeg" and t["quality"] not in probes for t in choice.trials)


def test_butteraugli_target_and_lossless_formats(photo_png, tmp_path):
    op = _op(tmp_path, metric="butteraugli", target=2.0, formats=["jxl", "avif"])
    out = rows_of(op.run_batched(batch_of([{"images": [str(photo_png)], Fields.id: "0"}])))[0]
    (rec,) = out[Fields.meta]["transcode"]
    assert rec["format"] in ("jxl", "avif") and rec["value"] <= 2.0
    ref = np.asarray(Image.open(photo_png).convert("RGB"))
    assert measure_metric(ref, _decoded(rec["output"]), "butteraugli") <= 2.0


def test_display_p3_source_keeps_its_profile_and_is_measured_colour_managed(photo_png,
                                                                            tmp_path):
    """A Display P3 PNG: the written file carries the profile (its colours survive), the
    recorded value is SSIMULACRA2 of the colour-managed pair, and a JPEG XL winner (no
    profile through this encoder) is encoded from the sRGB conversion, not from P3 numbers
    read as sRGB."""
    from ops.image.colour import linear_srgb, to_srgb
    from ops.image.metrics.ssimulacra2 import score_linear
    from tests.image.test_colour import from_srgb, icc
    profile = icc("display-p3")
    srgb = np.asarray(Image.open(photo_png).convert("RGB"))
    p3 = tmp_path / "p3.png"
    Image.fromarray(from_srgb(srgb, "display-p3")).save(p3, icc_profile=profile)
    for formats in (["webp"], ["jxl"]):
        op = _op(tmp_path, target=80, formats=formats, never_larger=False)
        out = rows_of(op.run_batched(batch_of([{"images": [str(p3)], Fields.id: "0"}])))[0]
        (rec,) = out[Fields.meta]["transcode"]
        assert rec["icc"] and rec["format"] == formats[0]
        numbers = np.asarray(Image.open(p3).convert("RGB"))
        if formats == ["webp"]:
            assert rec["colour"] == "profile kept"
            with Image.open(rec["output"]) as im:
                assert im.info["icc_profile"] == profile
                copy = np.asarray(im.convert("RGB"))
            got = score_linear(np.stack([linear_srgb(numbers, profile).transpose(2, 0, 1),
                                         linear_srgb(copy, profile).transpose(2, 0, 1)]))
        else:
            assert rec["colour"] == "converted to sRGB"
            copy = _decoded(rec["output"])
            got = score_linear(np.stack([linear_srgb(numbers, profile).transpose(2, 0, 1),
                                         linear_srgb(copy, None).transpose(2, 0, 1)]))
            # the copy shows the photo's colours: close to the sRGB conversion, far from
            # the P3 numbers a profile-blind transcode would have written
            conv = np.asarray(to_srgb(Image.open(p3), profile)).astype(int)
            assert np.abs(copy.astype(int) - conv).mean() < np.abs(
                copy.astype(int) - numbers.astype(int)).mean() / 2
        assert got >= 80 and abs(got - rec["value"]) < 1e-3


def test_source_kept_when_nothing_is_smaller_and_bad_rows_are_errors(tmp_path):
    tiny = tmp_path / "tiny.jpg"
    buf = io.BytesIO()
    Image.open(PAIR).convert("RGB").resize((40, 30)).save(buf, "JPEG", quality=30)
    tiny.write_bytes(buf.getvalue())
    op = _op(tmp_path, target=95, formats=["jpeg"])
    rows = rows_of(op.run_batched(batch_of([
        {"images": [str(tiny)], Fields.id: "0"},
        {"images": [str(tmp_path / "missing.png")], Fields.id: "1"}])))
    (rec,) = rows[0][Fields.meta]["transcode"]
    assert rec["format"] == "source" and rec["saved_bytes"] == 0 and rec["reason"]
    assert Path(rec["output"]).read_bytes() == tiny.read_bytes()
    assert rows[1][Fields.status] == Status.error and "missing.png" in rows[1][Fields.reason]


@pytest.mark.parametrize("kw, match", [({"metric": "psnr"}, "metric"),
                                       ({"target": 150}, "SSIMULACRA2 target"),
                                       ({"formats": ["bmp"]}, "unknown format"),
                                       ({"params": {"jpeg": {"qualty": 3}}}, "qualty"),
                                       ({"probes": {"webp": [50]}}, "probes.webp")])
def test_bad_parameters_fail_at_construction(kw, match):
    with pytest.raises(ValueError, match=match):
        ImageTargetQualityTranscodeMapper(**kw)
