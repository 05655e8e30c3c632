"""Optional extras: with the extras' modules really absent (hidden from the import system in a
subprocess), header ops run, and an op or executor whose extra is missing is refused at recipe
validation, naming the extra to install."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from ops.extras import EXTRAS

REPO = Path(__file__).resolve().parents[2]
HIDDEN = sorted({m for mods in EXTRAS.values() for m in mods} | {"open_clip"})

# Replaces the path finder so that the hidden top-level modules cannot be found at all: as if
# they were not installed (importlib.util.find_spec -> None, import -> ModuleNotFoundError).
SITECUSTOMIZE = textwrap.dedent("""
    import sys
    from importlib.machinery import PathFinder

    HIDDEN = set(%r)
    HIDDEN_DISTS = {"torch", "torchvision", "transformers", "ultralytics", "nltk", "numba",
                    "threadpoolctl", "ray", "scikit-image", "scikit-learn", "open-clip-torch"}

    class _Hiding:
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in HIDDEN:
                return None
            return PathFinder.find_spec(name, path, target)

        @classmethod
        def find_distributions(cls, *args, **kwargs):    # importlib.metadata: hide them too
            for dist in PathFinder.find_distributions(*args, **kwargs):
                name = (dist.metadata["Name"] or "").lower().replace("_", "-")
                if name not in HIDDEN_DISTS:
                    yield dist

        @classmethod
        def invalidate_caches(cls):
            PathFinder.invalidate_caches()

    sys.meta_path[:] = [_Hiding if f is PathFinder else f for f in sys.meta_path]
""")


@pytest.fixture(scope="module")
def base_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("hide_extras")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE % (HIDDEN,))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]),
               HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    return env


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("extras_data")
    rows = []
    for i, (w, h) in enumerate([(40, 30), (8, 8)]):
        Image.new("RGB", (w, h), (10 * i, 80, 120)).save(d / f"{i}.png")
        rows.append({"images": [f"{i}.png"], "text": "a photo"})
    (d / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def _run(env, args, cwd):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _recipe(d: Path, name: str, process: list, **keys) -> str:
    import yaml
    r = {"project_name": name, "dataset_path": str(d / "rows.jsonl"),
         "work_dir": str(d / name), "process": process, **keys}
    path = d / f"{name}.yaml"
    path.write_text(yaml.safe_dump(r))
    return str(path)


def test_the_blocker_really_hides_the_extras(base_env):
    code = ("import importlib.util, sys\n"
            "print([m for m in %r if importlib.util.find_spec(m) is not None])\n"
            "try:\n    import torch\nexcept ModuleNotFoundError as e:\n    print('blocked', e.name)\n"
            % (HIDDEN,))
    out = subprocess.run([sys.executable, "-c", code], env=base_env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.splitlines() == ["[]", "blocked torch"], out.stderr


@pytest.mark.slow
def test_header_ops_run_on_the_base_install(base_env, data):
    recipe = _recipe(data, "header", [{"image_shape_filter": {"min_width": 16}},
                                      {"image_metadata_mapper": {}}])
    out = _run(base_env, ["--config", recipe], data)
    assert out.returncode == 0, out.stderr
    kept = [json.loads(x) for x in (data / "header" / "result.jsonl").read_text().splitlines()]
    assert len(kept) == 1 and kept[0]["images"][0].endswith("0.png")
    # with everything installed, a header recipe still imports none of the extras
    env = dict(base_env, PYTHONPATH=str(REPO))
    code = ("import sys; from pipelines.config import parse_recipe, build_ops; "
            "build_ops(parse_recipe(['--config', %r])); "
            "print(sorted(m for m in %r if m in sys.modules))" % (recipe, HIDDEN))
    loaded = subprocess.run([sys.executable, "-c", code], env=env, cwd=data,
                            capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_codec_study_runs_on_the_base_install(base_env, data):
    recipe = _recipe(data, "study", [
        {"image_shape_filter": {"min_width": 16}},
        {"image_codec_sweep_mapper": {"grid": {"jpeg": {"quality": [40, 80]}, "webp": {"quality": 60}},
                                      "metrics": ["psnr", "ssim", "ssimulacra2"]}},
        {"quality_report_aggregator": {}}])
    out = _run(base_env, ["--config", recipe], data)
    assert out.returncode == 0, out.stderr
    doc = json.loads((data / "study" / "quality.json").read_text())
    variants = doc["images"][0]["variants"]
    assert [v["format"] for v in variants] == ["jpeg", "jpeg", "webp"]
    s2 = [v["metrics"]["ssimulacra2"] for v in variants]
    assert s2[1] > s2[0]                       # q80 scores above q40 (numpy SSIMULACRA2 engine)


@pytest.mark.parametrize("op, extra", [
    ("generation_loss_scorer_mapper", "scorer"),
    ("keep_best_copy_deduplicator", "scorer"),
    ("image_text_matching_filter", "models"),
    ("imgdiff_difference_area_generator_mapper", "models"),
])
def test_an_op_whose_extra_is_missing_is_refused_at_validation(base_env, data, op, extra):
    recipe = _recipe(data, f"refuse_{op}", [{"image_shape_filter": {}}, {op: {}}])
    out = _run(base_env, ["--config", recipe], data)
    assert out.returncode == 2
    err = out.stderr.strip()
    assert f"process[1] op '{op}' needs the [{extra}] extra" in err
    assert f"pip install 'imgjuicer[{extra}]'" in err
    assert "Traceback" not in err
    assert not (data / f"refuse_{op}" / "result.jsonl").exists()   # refused before any work


def test_the_ray_executor_without_ray_is_refused(base_env, data):
    recipe = _recipe(data, "ray_missing", [{"image_shape_filter": {}}], executor_type="ray")
    out = _run(base_env, ["--config", recipe], data)
    assert out.returncode == 2
    assert "executor_type: ray needs the [ray] extra" in out.stderr
    assert "pip install 'imgjuicer[ray]'" in out.stderr


def test_dj_score_without_the_scorer_names_its_extra(base_env, data):
    out = subprocess.run([sys.executable, "-c", "import sys; from pipelines.cli import score_main; "
                          "sys.exit(score_main(['0.png']))"], env=base_env, cwd=data,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "pip install 'imgjuicer[scorer]'" in out.stderr


def test_with_every_extra_installed_the_ops_validate():
    from pipelines.config import validate_op
    for op in ("generation_loss_scorer_mapper", "image_text_matching_filter"):
        validate_op(op, {})


# ------------------------------------------------------------------ every op declares its extra
def _module_file(name: str):
    base = REPO.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.exists():
            return cand
    return None


def _imports(name: str):
    """(imported module, optional?) of one project module: every import statement, also inside
    functions; optional = under a ``try`` that handles ImportError (a fallback exists)."""
    import ast
    path = _module_file(name)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            optional |= {id(n) for b in node.body for n in ast.walk(b)}
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, id(node) in optional
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                yield (sub if _module_file(sub) else base), id(node) in optional


def _reached(op_module: str) -> dict:
    """External top-level module -> the chain of project modules that imports it (mandatory
    imports only), following project imports (and their parent packages) transitively.
    ops.base is the contract: its torch import serves CUDA device choice only."""
    found, seen, todo = {}, set(), [(op_module, [op_module])]
    while todo:
        name, chain = todo.pop()
        if name in seen or name == "ops.base":
            continue
        seen.add(name)
        for target, optional in _imports(name):
            top = target.split(".")[0]
            if optional:                  # a fallback exists: neither it nor what it reaches
                continue
            if top in ("ops", "pipelines"):
                parts = target.split(".")
                for k in range(2, len(parts) + 1):
                    mod = ".".join(parts[:k])
                    if _module_file(mod):
                        todo.append((mod, chain + [mod]))
            else:
                found.setdefault(top, chain)
    return found


def test_every_op_declares_the_extra_its_imports_need():
    from ops.registry import OPERATORS
    extra_modules = {m for mods in EXTRAS.values() for m in mods}
    problems = []
    for name in OPERATORS.builtin_names():
        cls = OPERATORS.get(name)
        needs = {m: chain for m, chain in _reached(cls.__module__).items() if m in extra_modules}
        allowed = set(EXTRAS.get(cls.extra or "", ()))
        for m, chain in sorted(needs.items()):
            if m not in allowed:
                problems.append(f"{name} (extra={cls.extra}) imports {m} via {' -> '.join(chain)}")
    assert not problems, "\n".join(problems)


def test_the_declaration_check_sees_lazy_imports():
    reached = _reached("ops.mapper.generation_loss_scorer_mapper")
    assert {"torch", "numba"} <= set(reached)          # both imported inside setup() paths
    assert "numba" not in _reached("ops.mapper.image_codec_sweep_mapper")   # optional there
