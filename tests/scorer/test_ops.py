"""generation_loss_scorer_mapper, keep_best_copy_deduplicator and dj-score on real files."""
import json

from ops.base import batch_of, rows_of
from ops.fields import Fields, StatsKeys, Status
from ops.registry import OPERATORS
from pipelines.cli.score import main as dj_score
from tests.conftest import REPO
from tests.scorer.conftest import DEGRADED


def _rows(paths):
    return [{"images": [str(p)] if isinstance(p, str) or not isinstance(p, list)
             else [str(x) for x in p], Fields.id: str(i), Fields.stats: {}, Fields.meta: {}}
            for i, p in enumerate(paths)]


def test_mapper_scores_every_image_and_reports_bad_files(copies_dir):
    d = copies_dir
    op = OPERATORS.get("generation_loss_scorer_mapper")(batch_size=8)
    rows = _rows([[d / "original.png", d / "q20.jpg"], d / "downup.png", d / "broken.jpg",
                  d / "missing.png"])
    out = rows_of(op.run_batched(batch_of(rows)))
    s0 = out[0][Fields.stats][StatsKeys.generation_loss]
    assert len(s0) == 2 and s0[0] < s0[1]
    assert len(out[1][Fields.stats][StatsKeys.generation_loss]) == 1
    assert out[0][Fields.status] == out[1][Fields.status] == Status.kept
    assert out[2][Fields.status] == Status.error and "broken.jpg" in out[2][Fields.reason]
    assert out[3][Fields.status] == Status.error and "not found" in out[3][Fields.reason]


def test_dedup_keeps_the_original_among_five_degraded_copies(copies_dir, tmp_path):
    from ops.base import RunContext
    d = copies_dir
    names = ["q20.jpg", "downup.png", "original.png", "web.webp", "anim.gif",
             "screenshot.png", "other.png", "broken.jpg"]
    op = OPERATORS.get("keep_best_copy_deduplicator")(threshold=10)
    op.bind(RunContext(work_dir=str(tmp_path)))
    hashed = op.run_batched(batch_of(_rows([str(d / n) for n in names])))
    rows = rows_of(hashed)
    assert rows[-1][Fields.status] == Status.error
    ok = {k: [v for v, r in zip(col, rows) if r[Fields.status] != Status.error]
          for k, col in hashed.items()}
    keep, infos = op.run_group(ok)
    by = dict(zip(names, zip(keep, infos)))
    assert by["original.png"][0] is True and by["other.png"][0] is True
    orig_id = str(names.index("original.png"))
    for n in DEGRADED:
        k, info = by[n]
        assert k is False, (n, info)
        assert info["kept"] == orig_id and info["kept_image"].endswith("original.png")
        assert info["group_size"] == 6 and 2 <= info["rank"] <= 6
        assert info["group"] == by["original.png"][1]["group"] == orig_id
        assert info["depth"] >= 1 and info["transform"] and info["parent"] is not None
    assert sorted(by[n][1]["rank"] for n in DEGRADED) == [2, 3, 4, 5, 6]
    root = by["original.png"][1]
    assert root["rank"] == 1 and root["depth"] == 0 and root["parent"] is None
    # every copy but the screenshot (made from a JPEG of the original) comes from the original
    for n in ("q20.jpg", "downup.png", "web.webp", "anim.gif"):
        assert by[n][1]["parent"] == orig_id and by[n][1]["depth"] == 1, (n, by[n][1])
    other = by["other.png"][1]
    assert other["group_size"] == 1 and other["rank"] == 1 and other["parent"] is None
    sheets = list((tmp_path / "keep_best_copy_sheets").glob("*.png"))
    assert [p.name for p in sheets] == [f"group_{orig_id}.png"]


def test_dj_score_ranks_best_first(copies_dir, capsys):
    d = copies_dir
    files = [str(d / n) for n in ("q20.jpg", "original.png", "downup.png")]
    assert dj_score(files + ["--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["rank"] for x in lines] == [1, 2, 3]
    assert lines[0]["file"].endswith("original.png")
    assert lines[0]["score"] <= lines[1]["score"] <= lines[2]["score"]


def test_dj_score_reports_unreadable_files(copies_dir, capsys):
    d = copies_dir
    assert dj_score([str(d / "original.png"), str(d / "broken.jpg")]) == 1
    cap = capsys.readouterr()
    assert "original.png" in cap.out and "broken.jpg" in cap.err
    assert dj_score(["--weights", str(d / "nope.pt"), str(d / "original.png")]) == 2


def test_recipe_dedups_a_folder_of_copies(copies_dir, tmp_path):
    import shutil
    from tests.pipelines.helpers import run_inprocess
    from tests.conftest import read_jsonl
    folder = tmp_path / "copies"
    folder.mkdir()
    for n in ("original.png", "other.png") + DEGRADED:
        shutil.copy(copies_dir / n, folder / n)
    run_inprocess(["--config", str(REPO / "recipes" / "generation-loss.yaml"),
                   "--dataset_path", str(folder), "--work_dir", str(tmp_path / "w"),
                   "--export_path", str(tmp_path / "w" / "out.jsonl")])
    out = read_jsonl(tmp_path / "w" / "out.jsonl")
    kept = sorted(str(r["images"][0] if isinstance(r["images"], list) else r["images"])
                  .rsplit("/", 1)[-1] for r in out)
    assert kept == ["original.png", "other.png"]
