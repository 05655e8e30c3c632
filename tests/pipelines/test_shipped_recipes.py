"""Every shipped recipe runs on a fresh clone, or says in one line what to run first."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import RecipeError, parse_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """What a fresh clone holds: the tracked files only (linked into this checkout).  Data
    that `make demo` or a user generated here must not hide a recipe that fails on a fresh
    clone, nor make a recipe that names its set-up command fail this test."""
    root = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():        # not deleted in the working tree
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).symlink_to(src)
    return root


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_data_is_committed_or_named(recipe, fresh_clone, monkeypatch):
    monkeypatch.chdir(fresh_clone)
    text = recipe.read_text()
    try:
        parsed = parse_recipe(["--config", str(recipe.relative_to(REPO))])
    except RecipeError as exc:
        needs = [ln for ln in text.splitlines() if ln.lower().startswith("# needs")]
        assert len(needs) == 1, f"{recipe.name} cannot run and says nothing about it: {exc}"
        assert needs[0].strip("# ").split(":", 1)[1].strip() in str(exc)
        return
    data = Path(parsed.dataset_path)
    assert data.is_relative_to(fresh_clone), f"{recipe.name} reads {data}, outside the clone"
    if data.suffix == ".jsonl":   # every image a row names is committed too
        for line in data.read_text().splitlines():
            for key, value in json.loads(line).items():
                if key not in ("images", "image_path1", "image_path2"):
                    continue
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str) and v.endswith((".jpg", ".png", ".gif")):
                        assert (data.parent / v).is_file(), f"{v} is not committed"


def test_committed_pairs_are_small_real_photos():
    root = REPO / "recipes" / "data"
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert total < 600_000, f"committed recipe data grew to {total} bytes"
    from PIL import Image
    rows = [json.loads(ln) for ln in (root / "imgdiff.jsonl").read_text().splitlines()]
    assert len(rows) >= 8
    for r in rows:
        assert r["caption1"] and r["caption2"]
        for k in ("image_path1", "image_path2"):
            with Image.open(root / r[k]) as im:
                assert max(im.size) <= 512 and im.format == "JPEG"
    differing = [r for r in rows if r["caption1"] != r["caption2"]]
    assert len(differing) >= 7   # pairs whose captions name the object that differs


@pytest.mark.slow
def test_demo_recipe_runs_on_a_clean_checkout_layout(tmp_path):
    """The framework demo recipe, as a user runs it from the repository root."""
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "--config", "recipes/demo.yaml",
                        "--work_dir", str(out), "--export_path", str(out / "r.jsonl")],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in (out / "r.jsonl").read_text().splitlines()]
    names = {Path(p).name for row in rows for p in row["images"]}
    assert "coffee_cat_1.jpg" in names and "tiny.png" not in names
    errors = (out / "errors.jsonl").read_text()
    assert "truncated.jpg" in errors
