"""dj-analyze: every stat computed, nothing dropped, overall table + figures + HTML page."""
import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, read_jsonl, write_jsonl

DJ = REPO / "tests" / "recipes" / "dj"
SIZES = [(96, 64), (40, 40), (300, 60), (128, 128), (64, 200), (80, 90)]  # small_images, i % 6
COLUMNS = ["stat", "count", "mean", "std", "min", "p05", "p25", "p50", "p75", "p95", "max"]


def _analyze(argv):
    from pipelines.cli.analyze import analyze
    from pipelines.config import parse_recipe
    return analyze(parse_recipe(argv))


def _table(path):
    with open(path) as fh:
        rows = list(csv.reader(fh))
    return rows[0], {r[0]: [float(x) for x in r[1:]] for r in rows[1:]}


def _expected(values, pcts=(0.05, 0.25, 0.5, 0.75, 0.95)):
    v = np.asarray(values, dtype=float)
    return [len(v), v.mean(), v.std(ddof=1), v.min(), *np.quantile(v, pcts), v.max()]


def test_analyzer_on_a_data_juicer_recipe(small_images, tmp_path):
    out = tmp_path / "w"
    result = _analyze(["--config", str(DJ / "image-demo.yaml"), "--dataset_path",
                       str(small_images / "data.jsonl"), "--work_dir", str(out),
                       "--save_stats_in_one_file", "true"])
    an = out / "analysis"
    header, table = _table(an / "overall.csv")
    assert header == COLUMNS
    # nothing filtered: every readable image (24 of 25; one file is missing) has its stats
    sizes = [SIZES[i % 6] for i in range(24)]
    assert table["image_width"] == pytest.approx(_expected([w for w, _ in sizes]))
    assert table["image_height"] == pytest.approx(_expected([h for _, h in sizes]))
    assert table["aspect_ratios"] == pytest.approx(_expected([w / h for w, h in sizes]))
    files = sorted((small_images / "img").glob("[0-9]*.*"))
    assert table["image_sizes"] == pytest.approx(_expected([p.stat().st_size for p in files]))
    rows = read_jsonl(an / "stats.jsonl")
    assert len(rows) == 24 and not (an / "dataset.jsonl").exists()
    # what the recipe would have dropped: [64, 128) widths; ratios inside [0.5, 2]
    ops = {r["op"]: r for r in csv.DictReader(open(an / "ops.csv"))}
    assert ops["image_shape_filter"]["would drop"] == "12"
    assert ops["image_aspect_ratio_filter"]["would drop"] == "16"
    assert ops["image_shape_filter"]["errored"] == "1"
    assert "4 pass every filter" in (an / "overall.md").read_text()
    page = (an / "report.html").read_text()
    for stat in table:
        for kind in ("hist", "box"):
            png = an / "plots" / f"{stat}-{kind}.png"
            assert Image.open(png).size[0] > 100 and f"plots/{png.name}" in page
    assert (an / "plots" / "all-stats.png").exists()
    assert "| image_width | 24 |" in (an / "overall.md").read_text()
    assert result["report"] == str(an / "report.html")


def test_percentiles_and_original_dataset_keys(small_images, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("percentiles: [0.1, 0.9]\nexport_original_dataset: true\n"
                      "process:\n  - image_shape_filter:\n")
    _analyze(["--config", str(recipe), "--dataset_path", str(small_images / "data.jsonl"),
              "--work_dir", str(tmp_path / "w")])
    header, table = _table(tmp_path / "w" / "analysis" / "overall.csv")
    assert header == ["stat", "count", "mean", "std", "min", "p05", "p10", "p25", "p50", "p75",
                      "p90", "p95", "max"]
    widths = [SIZES[i % 6][0] for i in range(24)]
    assert table["image_width"][header.index("p90") - 1] == pytest.approx(np.quantile(widths, 0.9))
    full = read_jsonl(tmp_path / "w" / "analysis" / "dataset.jsonl")
    assert len(full) == 24 and all("text" in r for r in full)


@pytest.mark.slow
def test_analyzer_cli_on_ray_matches_local(small_images, tmp_path):
    args = ["--config", str(DJ / "image-demo.yaml"), "--dataset_path",
            str(small_images / "data.jsonl")]
    local = subprocess.run([sys.executable, "-m", "pipelines.cli.analyze", *args, "--work_dir",
                            str(tmp_path / "local")], capture_output=True, text=True,
                           cwd=REPO, timeout=300)
    assert local.returncode == 0, local.stderr
    assert "| image_width | 24 |" in local.stdout and "report.html" in local.stdout
    ray = subprocess.run([sys.executable, "-m", "pipelines.cli.analyze", *args, "--work_dir",
                          str(tmp_path / "ray"), "--executor_type", "ray"],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    assert ray.returncode == 0, ray.stderr
    _, a = _table(tmp_path / "local" / "analysis" / "overall.csv")
    _, b = _table(tmp_path / "ray" / "analysis" / "overall.csv")
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k]) for k in a)
    ops_local = list(csv.DictReader(open(tmp_path / "local" / "analysis" / "ops.csv")))
    ops_ray = list(csv.DictReader(open(tmp_path / "ray" / "analysis" / "ops.csv")))
    assert [r["would drop"] for r in ops_local] == [r["would drop"] for r in ops_ray]


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """Three photos, each as three JPEG generations: the keep-best-copy dataset."""
    from skimage import data as skd
    root = tmp_path_factory.mktemp("copies")
    rows = []
    for name in ("astronaut", "coffee", "chelsea"):
        im = Image.fromarray(getattr(skd, name)()).convert("RGB")
        im.thumbnail((160, 160))
        for q in (95, 60, 25):
            path = root / f"{name}_q{q}.jpg"
            im.save(path, quality=q)
            im = Image.open(path).convert("RGB")
            rows.append({"images": [path.name], "photo": name, "q": q})
    write_jsonl(root / "copies.jsonl", rows)
    return root


@pytest.mark.slow
def test_analyzer_on_generation_loss_dedup_and_codec_metrics(copies, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "process:\n"
        "  - generation_loss_scorer_mapper: {}\n"
        "  - keep_best_copy_deduplicator: {threshold: 10}\n"
        "  - image_codec_sweep_mapper:\n"
        "      grid: {jpeg: {quality: [40, 90]}}\n"
        "      metrics: [psnr, ssim]\n"
        "  - comparison_figure_aggregator: {}\n")
    result = _analyze(["--config", str(recipe), "--dataset_path",
                       str(copies / "copies.jsonl"), "--work_dir", str(tmp_path / "w")])
    _, table = _table(tmp_path / "w" / "analysis" / "overall.csv")
    # every copy was scored and swept (the deduplicator dropped nothing): 9 x 2 variants
    assert table["generation_loss"][0] == 18 and 0 < table["generation_loss"][3]
    assert table["psnr"][0] == 18 and table["bytes"][0] == 18
    ops = {r["op"]: r for r in csv.DictReader(
        open(tmp_path / "w" / "analysis" / "ops.csv"))}
    assert ops["keep_best_copy_deduplicator"]["would drop"] == "6"   # 2 worse copies x 3
    assert "comparison_figure_aggregator" not in ops                   # draws, no stats
    assert {"generation_loss", "psnr", "ssim", "bpp"} <= set(result["figures"])


def test_auto_analyzes_every_model_free_filter_on_the_first_rows(small_images, tmp_path):
    recipe = tmp_path / "auto.yaml"
    recipe.write_text("auto: true\nauto_num: 10\n")
    result = _analyze(["--config", str(recipe), "--dataset_path",
                       str(small_images / "data.jsonl"), "--work_dir", str(tmp_path / "w")])
    ops = {r["op"] for r in result["ops"]}
    assert {"image_shape_filter", "image_size_filter", "image_aspect_ratio_filter"} <= ops
    assert "image_pair_similarity_filter" not in ops                  # needs a model
    _, table = _table(tmp_path / "w" / "analysis" / "overall.csv")
    widths = [SIZES[i % 6][0] for i in range(10)]
    assert table["image_width"] == pytest.approx(_expected(widths))


@pytest.fixture
def restore_logger():
    """main() sets up the imgjuicer logger (file handler, no propagation): undo it after."""
    import logging
    log = logging.getLogger("imgjuicer")
    saved = (list(log.handlers), log.propagate, log.level)
    yield
    for h in log.handlers:
        if h not in saved[0]:
            h.close()
    log.handlers[:], log.propagate, log.level = saved


def test_bare_auto_flag_on_the_command_line(small_images, tmp_path, restore_logger):
    """Data-Juicer's form: dj-analyze --auto --dataset_path ... (no recipe file)."""
    from pipelines.cli import analyze_main as main
    out = tmp_path / "w"
    assert main(["--auto", "--dataset_path", str(small_images / "data.jsonl"), "--auto_num",
                 "6", "--work_dir", str(out)]) == 0
    _, table = _table(out / "analysis" / "overall.csv")
    assert table["image_height"][0] == 6


def test_dj_process_refuses_auto(small_images, tmp_path):
    from pipelines.cli import process_main
    recipe = tmp_path / "auto.yaml"
    recipe.write_text("auto: true\n")
    assert process_main(["--config", str(recipe), "--dataset_path",
                         str(small_images / "data.jsonl"), "--work_dir", str(tmp_path)]) == 2
