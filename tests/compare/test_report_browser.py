"""The interactive report in a real browser: Debian's headless chromium loads index.html
from disk (no network) and the dumped DOM must contain every plot rendered by plotly, and the
lightbox opened by a #fig-N link."""
import re
import shutil
import subprocess

import pytest

from ops.compare.generate import Options, generate_figures
from ops.compare.study import load_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                 "(tools/apt-packages.txt lists it)")]


def dump_dom(url: str, profile) -> str:
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def report(format_study, tmp_path_factory):
    qpath, _, _ = format_study
    out = tmp_path_factory.mktemp("report")
    targets = [{"metric": "bits_per_pixel", "values": [1.5]}]
    generate_figures(load_study(str(qpath)), str(out), Options(targets=targets, crop_size=24,
                                                                zoom=1))
    return out / "comparison" / "index.html"


def test_every_plot_renders_offline(report, tmp_path):
    html = report.read_text()
    plot_ids = re.findall(r'<div class="plot" id="([^"]+)"', html)
    # the study measured PSNR and Butteraugli (no SSIMULACRA2, so no matched-quality plot)
    assert {"rd-psnr", "rd-butteraugli_p3", "quality-setting", "bytes-per-quality"} <= \
        set(plot_ids)
    assert not re.findall(r'src="(?:https?:)?//', html)           # nothing from the network
    dom = dump_dom(report.as_uri(), tmp_path / "profile")
    starts = sorted((dom.index(f'id="{pid}"'), pid) for pid in plot_ids)
    for (start, pid), (end, _) in zip(starts, starts[1:] + [(len(dom), None)]):
        part = dom[start:end]
        # plotly drew the plot: its svg, and one scatter trace group per curve with a line path
        assert 'class="main-svg"' in part, f"plot {pid} was not rendered"
        assert len(re.findall(r'class="trace scatter', part)) >= 2, f"plot {pid} has no curves"
        assert re.search(r'class="js-line" d="M', part), f"plot {pid} drew no line"


def test_lightbox_opens_from_the_address(report, tmp_path):
    dom = dump_dom(report.as_uri() + "#fig-1", tmp_path / "profile")
    assert re.search(r'<div id="lb" class="on"', dom)
    src = re.search(r'<div id="lb"[^>]*>.*?<img[^>]*src="([^"]+)"', dom, re.S).group(1)
    assert src.endswith(".webp") or src.endswith(".svg")


def test_index_links_every_study_report(report, tmp_path):
    from ops.compare.interactive import write_index
    root = tmp_path / "outputs"
    (root / "other" / "comparison").mkdir(parents=True)
    (root / "other" / "comparison" / "index.html").write_text("<html></html>")
    (root / "fmt").symlink_to(report.parents[1], target_is_directory=True)
    html = open(write_index(str(root))).read()
    links = re.findall(r'href="([^"]+)"', html)
    assert links == ["fmt/comparison/index.html", "other/comparison/index.html"]
    assert all((root / u).is_file() for u in links)
