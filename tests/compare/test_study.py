"""The comparison section, study lookup and level / tile naming."""
import json

import pytest

from ops.compare.options import FigureOptions, parse_targets
from ops.compare.study import (StudyError, level_of, load_study,
                               resolution_name, study_tiles)


def test_defaults_when_no_targets():
    cfg = FigureOptions()
    assert [(g.metric, g.values) for g in cfg.target_groups] == [
        ("ssimulacra2", [60, 70, 80]), ("bits_per_pixel", [0.5, 1.0, 1.5])]
    assert cfg.tile_parameter == "format" and cfg.exclude_images == []


@pytest.mark.parametrize("targets,words", [
    ([{"metric": "vmaf", "values": [90]}], "unknown 'vmaf'"),
    ([{"metric": "psnr", "values": ["high"]}], "list of numbers"),
    ([{"metric": "psnr"}], "{metric, values}"),
    ([{"metric": "psnr", "values": [30]}, {"metric": "psnr", "values": [40]}], "listed twice"),
])
def test_bad_targets_say_what_is_wrong(targets, words):
    with pytest.raises(StudyError) as exc:
        parse_targets(targets)
    assert words in str(exc.value)


def test_level_and_tile_names():
    v = {"format": "avif", "crop": {"size": 800, "x": 0, "y": 0, "width": 800, "height": 600},
         "resolution": {"scale": 0.75, "width": 600, "height": 450}, "params": {"speed": 6}}
    assert level_of(v, "format") == "c800/r75pct"
    assert level_of(v, "crop") == "r75pct"
    assert level_of(v, "resolution") == "c800"
    assert resolution_name({"long_side": 720, "width": 720, "height": 480}) == "r720"
    imgs = [{"variants": [dict(v, format=f) for f in ("jxl", "avif", "jpeg", "webp")]}]
    assert study_tiles(imgs, "format") == [("jpeg",), ("webp",), ("avif",), ("jxl",)]
    assert study_tiles(imgs, "speed")[0] == ("jpeg", 6)


def test_load_study_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StudyError, match="dj-compare --list"):
        load_study("missing-study")
    (tmp_path / "r.yaml").write_text("project_name: p\nwork_dir: w\nprocess:\n"
                                     "  - quality_report_aggregator: {}\n")
    with pytest.raises(StudyError, match="run `dj-process --config r.yaml` first"):
        load_study("r.yaml")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "quality.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(StudyError, match="not a quality.json"):
        load_study("r.yaml")
