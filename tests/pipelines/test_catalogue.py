"""docs/operators.md is generated from the registry and kept current; dj-process --list-ops
prints the same catalogue."""
import subprocess
import sys
from pathlib import Path

import pytest

from ops.registry import OPERATORS
from pipelines import catalogue
from pipelines.config import op_parameters

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "operators.md"


@pytest.fixture(scope="module")
def text():
    return catalogue.render()


def _section(text: str, name: str) -> str:
    start = text.index(f"### `{name}`\n")
    end = text.find("\n### ", start + 1)
    nxt = text.find("\n## ", start + 1)
    ends = [e for e in (end, nxt) if e != -1]
    return text[start:min(ends) if ends else len(text)]


def test_operators_page_is_up_to_date(text):
    assert DOC.exists(), f"docs/operators.md is missing: run {catalogue.GENERATED_BY}"
    assert DOC.read_text(encoding="utf-8") == text, \
        f"docs/operators.md is out of date: run {catalogue.GENERATED_BY} and commit it"


def test_every_builtin_op_is_documented_with_kind_and_every_parameter(text):
    names = OPERATORS.builtin_names()
    assert len(names) >= 14
    common = op_parameters(catalogue.OP)
    for name in names:
        cls = OPERATORS.get(name)
        sec = _section(text, name)
        assert f"kind: {catalogue.kind_of(cls)}" in sec
        for pname in op_parameters(cls):
            if pname not in common:
                assert f"| `{pname}` |" in sec, f"{name}: parameter {pname} missing"


def test_every_builtin_op_has_its_own_docstring():
    missing = [n for n in OPERATORS.builtin_names()
               if not catalogue.own_docstring(OPERATORS.get(n))]
    assert not missing, f"ops without a docstring of their own: {missing}"


def test_types_defaults_and_kinds_read_as_written(text):
    shape = _section(text, "image_shape_filter")
    assert "kind: filter" in shape
    assert "| `min_width` | `int` | `1` |" in shape
    assert "| `any_or_all` | `Literal['any', 'all']` | `'any'` |" in shape
    sweep = _section(text, "image_codec_sweep_mapper")
    assert "kind: mapper" in sweep and "| `grid` | `dict` | `required` |" in sweep
    assert "kind: deduplicator" in _section(text, "keep_best_copy_deduplicator")
    assert "kind: aggregator" in _section(text, "quality_report_aggregator")
    assert "model op" in _section(text, "image_text_matching_filter")
    assert "| `batch_size` | `int` | `1000` |" in text     # the common parameters, once
    # an op that redeclares a common parameter with its own default shows it
    assert "| `batch_size` | `int` | `8` |" in _section(text, "imgdiff_difference_area_generator_mapper")
    assert "| `batch_size` |" not in _section(text, "image_shape_filter")


def test_list_ops_prints_the_same_catalogue(text):
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "--list-ops"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == text
    one = subprocess.run([sys.executable, "-m", "pipelines.cli", "--list-ops", "image_size_filter",
                          "no_such_op"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert one.returncode == 2 and "unknown operator 'no_such_op'" in one.stderr


def test_list_ops_limited_to_named_ops():
    one = catalogue.render(["image_size_filter"])
    assert "### `image_size_filter`" in one and "### `image_shape_filter`" not in one
    assert "1 operators: 1 filters." in one
