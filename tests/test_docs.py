"""The documentation stays true: a short front page, links that resolve, and an import graph
in docs/architecture.md that matches the source and the layout's rules."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
         REPO / "assets_cache" / "generation_loss" / "MODEL_CARD.md"]


def _anchors(page: Path) -> set[str]:
    out, fence = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"^#+ (.*)", line)
        if m:      # GitHub's anchor: lower case, punctuation dropped, spaces to dashes
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_readme_is_a_front_page():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_user_docs_never_speak_of_issues_or_tickets():
    hits = [f"{p.name}: {line.strip()}" for p in PAGES
            for line in p.read_text(encoding="utf-8").splitlines()
            if re.search(r"\b(issues?|tickets?)\b", line, re.I)]
    assert not hits, hits


def test_architecture_import_graph_is_current_and_rules_hold():
    out = subprocess.run([sys.executable, "tools/import_graph.py", "--check",
                          "docs/architecture.md"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr


def test_import_graph_reports_a_broken_rule(tmp_path):
    (tmp_path / "tools").mkdir()
    shutil.copy(REPO / "tools" / "import_graph.py", tmp_path / "tools")
    files = {"ops/__init__.py": "", "ops/base.py": "",
             "ops/scorer/__init__.py": "", "ops/scorer/weights.py": "from ops.base import x\n",
             "ops/scorer_training/__init__.py": "",
             "ops/scorer_training/train.py": "from ops.scorer import weights\n",
             "ops/filter/__init__.py": "", "ops/filter/f.py": "import ops.base\n",
             "pipelines/__init__.py": "", "pipelines/config.py": "import ops.base\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    ok = subprocess.run([sys.executable, "tools/import_graph.py"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "All hold." in ok.stdout
    assert "ops_scorer_training --> ops_scorer" in ok.stdout
    # a runtime module that imports training, a lazy import of pipelines, an op imported
    (tmp_path / "ops/scorer/model.py").write_text(
        "from ops.scorer_training.train import x\n\ndef f():\n    import pipelines.config\n")
    (tmp_path / "ops/scorer/uses_op.py").write_text("from ops.filter import f\n")
    bad = subprocess.run([sys.executable, "tools/import_graph.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert "ops.scorer imports ops.scorer_training" in bad.stdout
    assert "ops.scorer imports pipelines" in bad.stdout
    assert "ops.scorer imports the ops of ops.filter" in bad.stdout
    assert "cycle: ops.scorer -> ops.scorer_training -> ops.scorer" in bad.stdout
    assert "ops_scorer -.-> pipelines" in bad.stdout          # lazy import: dotted arrow


def test_tools_are_thin_scripts_without_path_edits():
    """Tools import the installed package (no sys.path edits) and stay short: code a test
    needs lives in the package (tests import it; they never load a tool file). The stand-alone
    import_graph.py and the benchmarks are the exceptions to the length."""
    import ast
    for path in sorted((REPO / "tools").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edits = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                 and n.attr in ("insert", "append") and isinstance(n.value, ast.Attribute)
                 and n.value.attr == "path" and getattr(n.value.value, "id", "") == "sys"]
        assert not edits, f"{path.relative_to(REPO)} edits sys.path"
        if path.parent.name == "tools" and path.name != "import_graph.py":
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= 60, f"{path.relative_to(REPO)} ({lines} lines) holds code: move it " \
                                "into the package and keep the script a thin caller"
    for path in sorted((REPO / "tests").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"spec_from_file_location\([^)]*tools", text), \
            f"{path.relative_to(REPO)} loads a tool by file path"
