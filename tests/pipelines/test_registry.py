"""Registry: lazy built-ins, duplicate names, plugins from paths and entry points."""
import subprocess
import sys
import textwrap

import pytest

from ops import OPERATORS, Mapper
from ops.registry import RegistryError, load_custom_operators
from tests.conftest import PLUGINS, REPO


def test_builtin_ops_load_lazily_without_torch():
    code = ("import sys, ops, pipelines.config\n"
            "cls = ops.OPERATORS.get('image_shape_filter')\n"
            "assert cls.name == 'image_shape_filter'\n"
            "assert 'torch' not in sys.modules, 'importing a header filter pulled in torch'\n"
            "assert 'ops.filter.image_size_filter' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_every_builtin_file_registers_its_stem():
    for name in OPERATORS.builtin_names():
        assert OPERATORS.get(name).name == name


def test_unknown_op_suggests_close_name():
    with pytest.raises(RegistryError, match="did you mean image_shape_filter"):
        OPERATORS.get("image_shap_filter")


def test_duplicate_registration_is_refused():
    @OPERATORS.register_module("dup_test_op")
    class A(Mapper):
        pass

    with pytest.raises(RegistryError, match="already registered"):
        @OPERATORS.register_module("dup_test_op")
        class B(Mapper):
            pass


def test_custom_operator_path_file_and_folder(tmp_path):
    load_custom_operators([str(PLUGINS / "my_user_op.py")])
    assert OPERATORS.get("my_user_op").__name__ == "MyUserOp"
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from ops import OPERATORS, Filter
        @OPERATORS.register_module("pkg_even_filter")
        class EvenFilter(Filter):
            def process_single(self, sample):
                return sample["n"] % 2 == 0
    """))
    load_custom_operators([str(pkg)])
    op = OPERATORS.get("pkg_even_filter")()
    assert op.process_single({"n": 4}) and not op.process_single({"n": 3})
    with pytest.raises(RegistryError, match="does not exist"):
        load_custom_operators([str(tmp_path / "nope.py")])


def test_entry_point_plugin(tmp_path):
    """A package declaring ``[imgjuicer.ops]`` in its entry points is found by name."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "ep_plugin.py").write_text(textwrap.dedent("""
        from ops import OPERATORS, Mapper
        @OPERATORS.register_module("ep_upper_mapper")
        class Upper(Mapper):
            def process_single(self, sample):
                sample["text"] = sample["text"].upper()
                return sample
    """))
    dist = site / "ep_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[imgjuicer.ops]\nupper = ep_plugin\n")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ops import OPERATORS\n"
            "op = OPERATORS.get('ep_upper_mapper')()\n"
            "print(op.process_single({'text': 'abc'})['text'])\n") % str(site)
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                         capture_output=True, text=True).stdout
    assert out.strip() == "ABC"


def test_same_file_under_two_module_names_is_not_a_conflict():
    import importlib
    importlib.import_module("tests.plugins.my_user_op")       # e.g. collected by a test runner
    load_custom_operators([str(PLUGINS / "my_user_op.py")])    # and named in a recipe
    assert OPERATORS.get("my_user_op").__qualname__ == "MyUserOp"
