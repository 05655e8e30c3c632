"""The demo runner (make demo, tools/run_demo.py, pipelines.cli.demo) says what it is doing
while a recipe runs (it used to be silent for the minutes the demo takes)."""
from pipelines.cli import demo

BASIC = "tests/recipes/basic.yaml"


def test_each_recipe_shows_its_progress(small_images, tmp_path, capsys):
    label, msg = demo.run("basic", BASIC, [
        "--dataset_path", str(small_images / "data.jsonl"), "--work_dir", str(tmp_path),
        "--process", '[{"image_metadata_mapper": {}}, {"image_shape_filter": {}}]'],
        step="[1/1] ")
    printed = capsys.readouterr().out.splitlines()
    assert msg.startswith("done in") and "total: in 25" in msg
    assert printed[0] == f"[1/1] basic: running {BASIC} ..."
    progress = [ln for ln in printed[1:] if ln.startswith("    [")]
    assert any("dataset " in ln and "25 rows" in ln for ln in progress), printed
    assert any("op 0 image_metadata_mapper" in ln for ln in progress), printed
    assert any("op 1 image_shape_filter" in ln for ln in progress), printed
