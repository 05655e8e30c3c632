"""Each op of a recipe is validated once: parse_recipe checks and types the parameters, and
build_ops builds from those."""
import json

import pytest
from PIL import Image

import pipelines.config as config


def test_each_op_is_validated_once_and_built_from_typed_params(tmp_path, monkeypatch):
    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    (tmp_path / "rows.jsonl").write_text(json.dumps({"images": ["a.png"]}) + "\n")
    calls = []
    real = config.validate_op
    monkeypatch.setattr(config, "validate_op", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    recipe = config.parse_recipe([
        "--dataset_path", str(tmp_path / "rows.jsonl"), "--work_dir", str(tmp_path / "w"),
        "--process", '[{"image_shape_filter": {"min_width": 5, "any_or_all": "all"}}, '
                     '{"image_size_filter": {"max_size": "1MB"}}]'])
    ops = config.build_ops(recipe)
    assert calls == ["image_shape_filter", "image_size_filter"]
    assert recipe.process[0] == ("image_shape_filter", {"min_width": 5, "any_or_all": "all"})
    assert ops[0].min_width == 5 and ops[0].any is False
    assert "validated" not in recipe.as_dict()


def test_a_recipe_built_by_hand_is_still_validated(tmp_path):
    recipe = config.Recipe(project_name="x", dataset_path=str(tmp_path), export_path="x.jsonl",
                           work_dir=str(tmp_path), np=1, executor_type="local",
                           process=[("image_shape_filter", {"min_widht": 5})])
    with pytest.raises(config.RecipeError, match="unknown parameter 'min_widht'"):
        config.build_ops(recipe)
