"""Figure settings as comparison_figure_aggregator's parameters: one definition for the op and
dj-compare, recipe validation, the deprecated comparison: section, the in-memory quality
document; and the fixed defects of dj-compare and the plots."""
import json
import logging
import subprocess
import sys

import pytest

from ops.base import RunContext
from pipelines.cli.compare import main
from ops.compare.options import OPTION_NAMES, FigureOptions
from ops.registry import OPERATORS
from pipelines.config import RecipeError, op_parameters, parse_recipe
from tests.compare.test_generate import _targets


def test_op_signature_lists_every_setting_typed():
    params = op_parameters(OPERATORS.get("comparison_figure_aggregator"))
    assert set(OPTION_NAMES) <= set(params)
    assert "Literal" in str(params["interpolation"].annotation)
    assert params["crop_size"].default == 128 and params["targets"].default is None


def _recipe(tmp_path, ds, tail):
    p = tmp_path / "r.yaml"
    p.write_text(f"project_name: p\ndataset_path: {ds}\nwork_dir: {tmp_path / 'w'}\nprocess:\n"
                 "  - quality_report_aggregator: {}\n" + tail)
    return str(p)


def test_recipe_validation_and_the_deprecated_section(tmp_path, caplog):
    ds = tmp_path / "d.jsonl"
    ds.write_text('{"images": ["x.png"]}\n')
    bad = _recipe(tmp_path, ds, "  - comparison_figure_aggregator:\n"
                  "      targets: [{metric: vmaf, values: [90]}]\n")
    with pytest.raises(RecipeError, match="comparison_figure_aggregator.*unknown 'vmaf'"):
        from pipelines.config import build_ops
        build_ops(parse_recipe(["--config", bad]))
    old = _recipe(tmp_path, ds, "  - comparison_figure_aggregator: {zoom: 2}\ncomparison:\n"
                  "  targets: [{metric: psnr, values: [35]}]\n  tile_parameter: speed\n")
    with caplog.at_level(logging.WARNING, logger="imgjuicer"):
        recipe = parse_recipe(["--config", old])
    assert "'comparison:' section is deprecated" in caplog.text
    (_, params), = [p for p in recipe.process if p[0] == "comparison_figure_aggregator"]
    assert params == {"zoom": 2, "targets": [{"metric": "psnr", "values": [35]}],
                      "tile_parameter": "speed"}


def test_quality_document_handed_over_in_memory(format_study, tmp_path):
    from ops.aggregator.comparison_figure_aggregator import ComparisonFigureAggregator
    from ops.aggregator.quality_report_aggregator import QualityReportAggregator
    qpath, rows, _ = format_study
    inside, _ = _targets(qpath)
    ctx = RunContext(work_dir=str(tmp_path))
    report = QualityReportAggregator(study_id="handed", bootstrap=10).bind(ctx)
    figs = ComparisonFigureAggregator(crop_size=24, zoom=1, report=False,
                                      targets=[{"metric": "psnr", "values": [inside]}]).bind(ctx)
    for op in (report, figs):
        op.ensure_setup()
        op.aggregate_batched(rows)
    report.finalize()
    figs._m_rows = None             # the figure op must not need its own copy of the rows
    figs.aggregate_batched = None
    figs.finalize()
    man = json.load(open(tmp_path / "comparison" / "manifest.json"))
    assert man["study_id"] == "handed" and man["quality_json"] == str(tmp_path / "quality.json")


def test_dj_compare_takes_the_recipe_op_settings_and_flags_override(format_study, tmp_path,
                                                                    monkeypatch, capsys):
    qpath, _, _ = format_study
    inside, _ = _targets(qpath)
    work = tmp_path / "outputs" / "fmt"
    work.mkdir(parents=True)
    (work / "quality.json").write_text(qpath.read_text())
    (tmp_path / "recipes").mkdir()
    # the file stem differs from the project name --list shows
    (tmp_path / "recipes" / "some-file.yaml").write_text(
        "project_name: fmt\ndataset_path: x.jsonl\nwork_dir: outputs/fmt\nprocess:\n"
        "  - quality_report_aggregator: {}\n"
        "  - comparison_figure_aggregator:\n"
        f"      targets: [{{metric: psnr, values: [{inside}]}}]\n"
        "      exclude_images: [busy.png]\n      crop_size: 24\n      zoom: 1\n")
    monkeypatch.chdir(tmp_path)
    assert main(["--list"]) == 0
    assert "fmt " in capsys.readouterr().out
    assert main(["fmt", "--no-report", "-q", "--interpolation", "linear"]) == 0
    man = json.load(open(work / "comparison" / "manifest.json"))
    (g,) = man["groups"]
    assert g["image"].endswith("calm.png") and man["crop_size"] == 24
    # --interpolation linear: the first estimate is the straight line between the bracketing
    # measurements of the chosen image, as the reference tool computes it
    doc = json.load(open(qpath))
    img = next(i for i in doc["images"] if i["source"].endswith("calm.png"))
    for rec in g["measured"]:
        if "interpolated" not in rec:
            continue
        pts = sorted((v["setting"]["value"], v["metrics"]["psnr"]) for v in img["variants"]
                     if v["format"] == rec["tile"][0])
        (q0, y0), (q1, y1) = next((a, b) for a, b in zip(pts, pts[1:])
                                  if min(a[1], b[1]) <= inside <= max(a[1], b[1]))
        assert rec["interpolated"] == pytest.approx(q0 + (q1 - q0) * (inside - y0) / (y1 - y0),
                                                    abs=1e-4)
    assert main(["fmt", "--no-report", "-q", "--exclude-images", "[calm.png]"]) == 0
    man = json.load(open(work / "comparison" / "manifest.json"))
    assert man["groups"][0]["image"].endswith("busy.png")
    assert main(["fmt", "--zoom", "0", "-q"]) == 2
    assert "zoom must be in [1, 16]" in capsys.readouterr().err


def test_module_help_prints_the_options():
    out = subprocess.run([sys.executable, "-m", "pipelines.cli.compare", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for flag in ("--targets", "--tile-parameter", "--max-columns",
                 "--interpolation {pchip,linear}", "--no-report", "--list"):
        assert flag in out.stdout
    # defaults are shown as values, never as Python internals
    assert "object at 0x" not in out.stdout and "MISSING" not in out.stdout
    assert "(default 128)" in out.stdout and "(default pchip)" in out.stdout


def test_five_tiles_share_one_row():
    assert FigureOptions().columns(5) == 5          # four formats + the original
    assert FigureOptions().columns(6) == 6
    assert FigureOptions().columns(8) == 4          # two rows of four, not 6 + 2
    assert FigureOptions(max_columns=2).columns(5) == 2


def test_log_bpp_axis_labels_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from ops.compare.html_report import log_bpp_axis
    for lo, hi in ((0.28, 0.95), (0.1, 12.0), (0.6, 1.6)):
        f = Figure(figsize=(5.6, 3.9), dpi=100)
        FigureCanvasAgg(f)
        ax = f.add_subplot(1, 1, 1)
        ax.plot([lo, hi], [1, 2])
        log_bpp_axis(ax)
        f.canvas.draw()
        r = f.canvas.get_renderer()
        assert not [t.get_text() for t in ax.xaxis.get_ticklabels(minor=True) if t.get_text()]
        x0, x1 = ax.get_xlim()
        shown = [t for t in ax.xaxis.get_ticklabels() if t.get_text() and
                 x0 <= t.get_position()[0] <= x1]
        assert len(shown) >= 2
        boxes = sorted((t.get_window_extent(r) for t in shown), key=lambda b: b.x0)
        assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:])), [t.get_text() for t in shown]
        assert not any("10^" in t.get_text() or "times" in t.get_text() for t in shown)
