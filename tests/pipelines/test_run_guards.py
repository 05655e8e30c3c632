"""Setups that must be refused before any work (exit 2, a message naming the key and the
path, no traceback), and hostile recipes: plugins run last, image paths can be confined."""
import json
import os

import pytest
from PIL import Image

from ops.fields import Fields
from tests.conftest import read_jsonl, write_jsonl
from tests.pipelines.helpers import REPO, cli

SHAPE = '[{"image_shape_filter": {"min_width": 8}}]'


@pytest.fixture()
def data(tmp_path):
    """Two small images and a jsonl naming them (relative paths)."""
    (tmp_path / "img").mkdir()
    for i in range(2):
        Image.new("RGB", (32 + i, 24), (i * 90, 20, 40)).save(tmp_path / "img" / f"{i}.png")
    write_jsonl(tmp_path / "d.jsonl", [{"images": [f"img/{i}.png"], "text": str(i)}
                                       for i in range(2)])
    return tmp_path


def _recipe(d, body: dict, name="r.yaml"):
    base = {"project_name": "guards", "dataset_path": str(d / "d.jsonl"),
            "work_dir": str(d / "out"), "process": json.loads(SHAPE)}
    p = d / name
    p.write_text(json.dumps({**base, **body}))
    return str(p)


def _refused(r, *expected):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    for text in expected:
        assert text in r.stderr, r.stderr


def test_export_over_the_input_is_refused(data):
    before = (data / "d.jsonl").read_bytes()
    r = cli(["--config", _recipe(data, {"export_path": str(data / "d.jsonl")})])
    _refused(r, "export_path:", "is the input dataset itself")
    assert (data / "d.jsonl").read_bytes() == before


@pytest.mark.parametrize("body,expected", [
    ({"trace_num": -5}, "trace_num: must be >= 0"),
    ({"process": [{"image_shape_filter": {"num_proc": -3}}]}, "num_proc must be >= 1"),
    ({"process": [{"image_metadata_mapper": {"max_pixels": -1}}]},
     "max_pixels must be a positive number"),
    ({"process": [{"image_shape_filter": {"batch_size": 0}}]}, "batch_size must be >= 1"),
    ({"process": [{"../base": {}}]}, "unknown operator '../base'"),
    ({"image_columns": ["nope"]}, "image column 'nope' is not in the dataset"),
])
def test_values_that_used_to_pass_are_refused(data, body, expected):
    r = cli(["--config", _recipe(data, body)])
    _refused(r, expected)
    assert not (data / "out" / "trace").exists()            # no op ran


@pytest.mark.parametrize("text,expected", [
    ("", "is empty"),
    ("- image_shape_filter: {}\n", "must be a mapping of keys"),
])
def test_empty_or_list_recipe(data, text, expected):
    (data / "r.yaml").write_text(text)
    _refused(cli(["--config", str(data / "r.yaml")]), "config: recipe file", expected)


def test_unwritable_outputs_are_refused_before_work(data):
    blocker = data / "a_file"
    blocker.write_text("x")
    r = cli(["--config", _recipe(data, {"work_dir": str(blocker / "out")})])
    _refused(r, "work_dir: cannot create", "is a file")
    r = cli(["--config", _recipe(data, {"export_path": str(blocker / "r.jsonl")})])
    _refused(r, "export_path: cannot create")
    assert not (data / "out" / "trace").exists()


def test_outputs_inside_an_image_folder_are_refused(data):
    r = cli(["--config", _recipe(data, {"dataset_path": str(data / "img"),
                                        "work_dir": str(data / "img" / "out")})])
    _refused(r, "work_dir:", "is inside the dataset folder")
    assert sorted(os.listdir(data / "img")) == ["0.png", "1.png"]


def test_missing_demo_dataset_says_what_to_run(data):
    r = cli(["--config", str(REPO / "recipes" / "demo.yaml"), "--dataset_path",
             "data/demo/absent.jsonl"])
    _refused(r, "does not exist", "tools/make_demo_data.py")


def test_dataset_problems_exit_2_naming_file_and_line(data):
    with open(data / "bad.jsonl", "wb") as fh:
        fh.write(b'{"images": ["img/0.png"]}\n{"images": ["img/1.png"], "text": "caf\xe9"}\n')
    r = cli(["--config", _recipe(data, {"dataset_path": str(data / "bad.jsonl")})])
    _refused(r, "bad.jsonl:2: not UTF-8", "column")
    write_jsonl(data / "dup.jsonl", [{"images": ["img/0.png"], Fields.id: "a"},
                                     {"images": ["img/1.png"], Fields.id: "b"},
                                     {"images": ["img/1.png"], Fields.id: "a"}])
    r = cli(["--config", _recipe(data, {"dataset_path": str(data / "dup.jsonl")})])
    _refused(r, "duplicate __dj__id__", "'a' (rows 0 and 2)")


# ---------------------------------------------------------------- plugins are code
PLUGIN = '''
import pathlib
pathlib.Path({marker!r}).write_text("imported")
from ops import OPERATORS, Mapper

@OPERATORS.register_module("marker_mapper")
class MarkerMapper(Mapper):
    def process_single(self, sample):
        return sample
'''


def _plugin(d):
    (d / "plugins").mkdir(exist_ok=True)
    (d / "plugins" / "marker.py").write_text(PLUGIN.format(marker=str(d / "imported")))


@pytest.mark.parametrize("bad", [
    {"trace_num": -5},
    {"process": [{"marker_mapper": {}}, {"image_shape_filter": {"min_widht": 3}}]},
    {"export_path": "{data}/d.jsonl"},
])
def test_plugins_load_only_after_the_rest_validated(data, bad):
    _plugin(data)
    bad = {k: v.format(data=data) if isinstance(v, str) else v for k, v in bad.items()}
    body = {"custom_operator_paths": [str(data / "plugins" / "marker.py")],
            "process": [{"marker_mapper": {}}], **bad}
    r = cli(["--config", _recipe(data, body)], cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert not (data / "imported").exists()     # the plugin's code never ran


def test_plugin_paths_are_relative_to_the_recipe_file(data, tmp_path_factory):
    _plugin(data)
    body = {"custom_operator_paths": ["plugins/marker.py"], "process": [{"marker_mapper": {}}]}
    elsewhere = tmp_path_factory.mktemp("cwd")
    r = cli(["--config", _recipe(data, body)], cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert (data / "imported").exists()
    body["custom_operator_paths"] = ["plugins/nothere.py"]
    r = cli(["--config", _recipe(data, body)], cwd=elsewhere)
    _refused(r, "custom_operator_paths: 'plugins/nothere.py' not found",
             str(data / "plugins" / "nothere.py"), "the recipe file's folder")


# ---------------------------------------------------------------- image_roots
def test_image_roots_confine_paths(data, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    Image.new("RGB", (16, 16)).save(outside / "x.png")
    os.symlink(outside / "x.png", data / "img" / "link.png")     # inside, pointing out
    rows = [{"images": ["img/0.png"]}, {"images": ["../../../../../../../../etc/passwd"]},
            {"images": ["img/link.png"]}]
    write_jsonl(data / "d.jsonl", rows)
    r = cli(["--config", _recipe(data, {"image_roots": [str(data / "img")]})])
    _refused(r, "2 image path(s) lie outside image_roots", "/etc/passwd",
             "row 2 column 'images'")
    assert not (data / "out" / "trace").exists()
    # off by default: the run reads every path (the passwd row is "not an image")
    r = cli(["--config", _recipe(data, {})])
    assert r.returncode == 0, r.stderr
    errors = read_jsonl(data / "out" / "errors.jsonl")
    assert [e["id"] for e in errors] == ["1"] and "not an image" in errors[0]["error"]
    # inside the roots: runs
    write_jsonl(data / "d.jsonl", [rows[0]])
    r = cli(["--config", _recipe(data, {"image_roots": [str(data / "img")],
                                        "work_dir": str(data / "out2")})])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("module", ["pipelines.cli", "pipelines.cli.process"])
def test_module_entry_points_run_without_runpy_warnings(module):
    """``python -m`` on the CLI package or its module runs one copy of the module: with
    warnings as errors, runpy's "found in sys.modules" warning would fail the run."""
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-W", "error", "-m", module, "--help"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: dj-process" in out.stdout
    assert "RuntimeWarning" not in out.stderr
