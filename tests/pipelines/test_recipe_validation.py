"""A bad recipe fails before any work starts, naming the op and the key, without a traceback."""
import pytest

from tests.conftest import write_jsonl
from tests.pipelines.helpers import cli


@pytest.fixture()
def base(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"images": ["x.jpg"]}])
    return tmp_path


def _recipe(d, body):
    p = d / "r.yaml"
    p.write_text(f"project_name: v\ndataset_path: {d / 'd.jsonl'}\nwork_dir: {d / 'out'}\n"
                 + body)
    return str(p)


@pytest.mark.parametrize("body,expected", [
    ("process:\n  - image_shap_filter: {}\n",
     "unknown operator 'image_shap_filter'; did you mean image_shape_filter"),
    ("process:\n  - image_shape_filter: {min_widht: 3}\n",
     "op 'image_shape_filter': unknown parameter 'min_widht'; did you mean min_width"),
    ("process:\n  - image_shape_filter: {min_width: wide}\n",
     "op 'image_shape_filter'"),
    ("process:\n  - image_size_filter: {max_size: 12 parsecs}\n",
     "op 'image_size_filter': cannot read size"),
    ("process:\n  - image_shape_filter: {any_or_all: some}\n", "any_or_all"),
    ("process: []\n", "process: the recipe lists no operators"),
    ("np: 0\nprocess:\n  - image_shape_filter: {}\n", "np: must be >= 1"),
    ("bogus_key: 1\nprocess:\n  - image_shape_filter: {}\n", "bogus_key"),
])
def test_bad_recipe_is_refused_before_work(base, body, expected):
    r = cli(["--config", _recipe(base, body)])
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr
    assert "Traceback" not in r.stderr
    assert not (base / "out" / "result.jsonl").exists()


def test_wrong_type_names_the_key(base):
    r = cli(["--config", _recipe(base, "process:\n  - image_shape_filter: {min_width: wide}\n")])
    assert "min_width" in r.stderr


def test_missing_dataset_and_missing_recipe(base, tmp_path):
    r = cli(["--config", _recipe(base, "process:\n  - image_shape_filter: {}\n"),
             "--dataset_path", str(tmp_path / "nope.jsonl")])
    assert r.returncode == 2 and "dataset_path: " in r.stderr and "does not exist" in r.stderr
    r = cli(["--config", str(tmp_path / "absent.yaml")])
    assert r.returncode == 2 and "absent.yaml' does not exist" in r.stderr
    assert "Traceback" not in r.stderr


def test_command_line_overrides_recipe_keys(base):
    from pipelines.config import parse_recipe
    rec = parse_recipe(["--config", _recipe(base, "np: 2\nprocess:\n  - image_shape_filter: {}\n"),
                        "--np", "1", "--export_path", str(base / "x.parquet")])
    assert rec.np == 1 and rec.export_path.endswith("x.parquet")
