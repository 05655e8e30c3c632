"""image_codec_sweep_mapper + quality_report_aggregator: grid, rows, crops, budget, resume."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ops.base import RunContext, batch_of, rows_of
from ops.fields import Fields, Status
from ops.image.codecs import CodecError
from ops.image.metrics import available_metrics
from ops.image.metrics import butteraugli as B
from ops.image.sweep_plan import crop_box, expand_grid, parse_duration
from ops.registry import OPERATORS

REPO = Path(__file__).resolve().parents[2]
METRICS = ["psnr", "ssim", "butteraugli"] if B.is_available() else ["psnr", "ssim"]
HAS_SSIMULACRA2 = available_metrics()["ssimulacra2"] is None
GRID = {"jpeg": {"quality": {"start": 60, "stop": 90, "step": 15}},
        "webp": {"quality": 80, "lossless": [False, True]},
        "avif": {"quality": 60, "speed": 9},
        "jxl": {"distance": [1.0], "effort": 3}}
N_SETTINGS = 3 + 2 + 1 + 1


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_images")
    src = Image.open(Path(__file__).parent / "data" / "ba_photo.png").convert("RGB")
    paths = []
    for i, size in enumerate([(96, 72), (64, 80), (120, 90)]):
        p = root / f"img{i}.png"
        src.resize(size, Image.LANCZOS).rotate(90 * i, expand=True).save(p)
        paths.append(str(p))
    return paths


def _op(work_dir, **kw):
    kw.setdefault("grid", GRID)
    kw.setdefault("metrics", METRICS)
    op = OPERATORS.get("image_codec_sweep_mapper")(study_id="t", **kw)
    return op.bind(RunContext(work_dir=str(work_dir)))


def _batch(paths, **extra):
    return batch_of([{Fields.id: str(i), "images": [p], Fields.meta: {}, Fields.stats: {},
                      **{k: v[i] for k, v in extra.items()}} for i, p in enumerate(paths)])


def test_grid_expansion_and_validation():
    s = expand_grid({"jpeg": {"quality": {"start": 50, "stop": 100, "step": 5}},
                     "avif": {"quality": [40, 60], "speed": [4, 8]}})
    assert [x.params["quality"] for x in s if x.format == "jpeg"] == list(range(50, 101, 5))
    assert [(x.params["quality"], x.params["speed"]) for x in s if x.format == "avif"] == \
        [(40, 4), (40, 8), (60, 4), (60, 8)]
    assert all(x.params["subsampling"] == "4:2:0" for x in s)   # defaults filled in
    for bad, msg in [({"gif": {}}, "unknown format"), ({"jpeg": {"q": 5}}, "unknown parameter"),
                     ({"jpeg": {"quality": {"start": 9, "stop": 5}}}, "start <= stop"),
                     ({"jpeg": {"quality": [80, 80]}}, "appears twice"),
                     ({"webp": {"method": 9}}, r"'method' must lie in \[0, 6\]")]:
        with pytest.raises(CodecError, match=msg):
            expand_grid(bad)
    with pytest.raises(ValueError, match="unknown"):
        _op("/tmp", metrics=["psnr", "vmaf"])


def test_durations():
    assert parse_duration("30m") == 1800 and parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90 and parse_duration(12) == 12.0
    for bad in ("soon", "10x", "-5", 0):
        with pytest.raises(ValueError, match="time_budget"):
            parse_duration(bad)


def test_crop_box_geometry():
    frag = {"x": 700, "y": 20, "width": 60, "height": 40}
    box = crop_box(800, 600, 400, frag)
    assert (box["width"], box["height"]) == (400, 400)
    assert box["x"] == 400 and box["y"] == 0                 # shifted inside the image
    assert box["x"] <= frag["x"] and frag["x"] + frag["width"] <= box["x"] + box["width"]
    assert crop_box(800, 600, 2048, None) == {"size": 2048, "x": 0, "y": 0, "width": 800,
                                              "height": 600}


def test_sweep_rows_schema(tmp_path, images):
    op = _op(tmp_path)
    out = rows_of(op.run_batched(_batch(images[:2])))
    assert len(out) == 2 * N_SETTINGS
    assert all(r[Fields.status] == Status.kept for r in out)
    assert [r[Fields.id] for r in out[:N_SETTINGS]] == [f"0/{k}" for k in range(N_SETTINGS)]
    for r in out:
        v, s = r[Fields.meta]["codec_variant"], r[Fields.stats]
        assert v["study_id"] == "t" and v["source"]["path"] == r["images"][0]
        assert len(v["source"]["sha256"]) == 64
        assert v["format"] in ("jpeg", "webp", "avif", "jxl")
        assert v["setting"]["value"] == v["params"][v["setting"]["name"]]
        h, w = np.asarray(Image.open(r["images"][0])).shape[:2]
        assert (v["width"], v["height"]) == (w, h)
        assert s["bpp"] == pytest.approx(8 * s["bytes"] / (w * h))
        assert s["encode_seconds"] > 0 and s["decode_seconds"] > 0
        assert set(s["metric_seconds"]) == set(METRICS)
        assert v["tools"]["libjxl"] and v["cached"] is False
        lossless = v["params"].get("lossless") is True
        assert (s["psnr"] == float("inf")) == lossless
        if "butteraugli" in METRICS:
            assert (s["butteraugli_max"] == 0) == lossless
    jpeg = [r[Fields.stats] for r in out[:3]]
    assert jpeg[0]["bytes"] < jpeg[1]["bytes"] < jpeg[2]["bytes"]   # q60 < q75 < q90


def test_crops_scales_and_fragments(tmp_path, images):
    op = _op(tmp_path, grid={"avif": {"quality": [50], "speed": 9}},
             crop_sizes=[2048, 1024, 64, 40], scales=[1.0, 0.5])
    frag = [[30, 20, 24, 20]]
    out = rows_of(op.run_batched(_batch(images[2:3], fragment=frag)))
    metas = [r[Fields.meta]["codec_variant"] for r in out]
    # 2048 and 1024 clip to the same full box: measured once; 40 px halves are < 16 px
    assert [(m["crop"]["size"], m["resolution"]["scale"]) for m in metas] == \
        [(2048, 1.0), (2048, 0.5), (64, 1.0), (64, 0.5), (40, 1.0), (40, 0.5)]
    full, half = metas[0], metas[1]
    assert (full["width"], full["height"]) == (120, 90)
    assert (half["width"], half["height"]) == (60, 45)
    assert full["fragment"] == {"x": 30, "y": 20, "width": 24, "height": 20}
    assert half["fragment"] is None                               # 12x10 after scaling
    c64 = metas[2]
    f = c64["fragment"]
    assert c64["crop"]["x"] + f["x"] == 30 and c64["crop"]["y"] + f["y"] == 20
    fm = out[2][Fields.stats]["fragment_metrics"]
    assert set(fm) >= {"psnr", "ssim"} and "bpp" not in fm
    assert "fragment_metrics" not in out[1][Fields.stats]


@pytest.mark.skipif("butteraugli" not in METRICS, reason="libjxl0.7 not installed")
def test_saved_distmaps(tmp_path, images):
    op = _op(tmp_path, grid={"jpeg": {"quality": [30, 90]}}, save_distmaps=True)
    out = rows_of(op.run_batched(_batch(images[:1])))
    maps = [np.load(r[Fields.meta]["codec_variant"]["distmap"]) for r in out]
    for r, dm in zip(out, maps):
        assert dm.shape == (72, 96) and dm.dtype == np.float32
        assert float(dm.max()) == pytest.approx(r[Fields.stats]["butteraugli_max"], rel=1e-6)
    assert maps[0].mean() > maps[1].mean()                      # q30 worse than q90
    os.remove(out[0][Fields.meta]["codec_variant"]["distmap"])  # a lost map is re-measured
    again = rows_of(op.run_batched(_batch(images[:1])))
    assert [r[Fields.meta]["codec_variant"]["cached"] for r in again] == [False, True]
    with pytest.raises(ValueError, match="needs 'butteraugli'"):
        _op(tmp_path, metrics=["psnr"], save_distmaps=True)


def test_bad_fragment_is_a_sample_error(tmp_path, images):
    op = _op(tmp_path, grid={"jpeg": {"quality": 80}}, crop_sizes=[64])
    out = rows_of(op.run_batched(_batch(images[:1], fragment=[[90, 0, 30, 30]])))
    assert out[0][Fields.status] == Status.error and "lie inside" in out[0][Fields.reason]


class _Ticks:
    """A clock that advances one second per reading: two images fit a 2.5 s budget."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def _budget_op(tmp_path, budget="2.5s"):
    op = _op(tmp_path, time_budget=budget, batch_size=6)
    op._clock = _Ticks()
    return op


def test_time_budget_stops_between_images_and_rerun_resumes(tmp_path, images):
    paths = images + images[:1]                      # 4 samples, 3 distinct files
    out = rows_of(_budget_op(tmp_path).run_batched(_batch(paths)))
    done = [r for r in out if r[Fields.status] == Status.kept]
    errs = [r for r in out if r[Fields.status] == Status.error]
    # started at t=1; images checked at t=2 and t=3 fit, the third check (t=4) is past 2.5 s
    assert [r[Fields.id] for r in done] == [f"{i}/{k}" for i in (0, 1)
                                            for k in range(N_SETTINGS)]
    assert [r[Fields.id] for r in errs] == ["2", "3"]
    assert all("time budget 2.5s exhausted before" in r[Fields.reason] for r in errs)
    first = {r[Fields.id]: r[Fields.stats] for r in done}
    # rerun (a new op, as a new process would build) with room for 4 images: 0 and 1 come
    # from the cache, 2 is measured, 3 repeats image 0 and is cached as well
    out = rows_of(_budget_op(tmp_path, "4.5s").run_batched(_batch(paths)))
    assert all(r[Fields.status] == Status.kept for r in out) and len(out) == 4 * N_SETTINGS
    cached = {r[Fields.id].split("/")[0] for r in out
              if r[Fields.meta]["codec_variant"]["cached"]}
    assert cached == {"0", "1", "3"}
    for r in out:
        if r[Fields.id] in first:
            assert r[Fields.stats] == first[r[Fields.id]]


def test_real_clock_budget(tmp_path, images):
    op = _op(tmp_path, time_budget="0.001s", batch_size=3)
    out = rows_of(op.run_batched(_batch(images)))
    assert {r[Fields.status] for r in out} == {Status.kept, Status.error}
    assert len([r for r in out if r[Fields.status] == Status.kept]) == N_SETTINGS


def test_quality_json(tmp_path, images):
    metrics = METRICS + ["ssimulacra2"] * HAS_SSIMULACRA2
    op = _op(tmp_path, crop_sizes=[64], fragment=[8, 8, 32, 24], metrics=metrics)
    rows = rows_of(op.run_batched(_batch(images[:2])))
    agg = OPERATORS.get("quality_report_aggregator")().bind(RunContext(work_dir=str(tmp_path)))
    summary = agg.run_aggregate([batch_of(rows)])
    doc = json.loads(Path(summary["quality_json"]).read_text())    # strict JSON: no Infinity
    assert doc["schema"] == "imgjuicer.quality/2" and doc["study_id"] == "t"
    assert doc["summary"] == {"images": 2, "variants": 2 * N_SETTINGS}
    assert doc["formats"] == ["avif", "jpeg", "jxl", "webp"]
    assert {"pillow", "libjxl", "libavif", "metrics", "python"} <= set(doc["tools"])
    assert doc["metrics"]["psnr"]["higher_is_better"] is True
    for img in doc["images"]:
        assert img["source"] in images and img["fragment"]["width"] == 32
        assert len(img["variants"]) == N_SETTINGS
        for v in img["variants"]:
            assert set(v) >= {"id", "format", "setting", "params", "crop", "bytes", "bpp",
                              "metrics", "fragment_metrics", "timings", "width", "height",
                              "distmap", "cached"}
            assert v["crop"]["size"] == 64
            assert set(v["metrics"]) >= {"psnr", "ssim"}
            assert set(v["fragment_metrics"]) == set(v["metrics"])
            if v["params"].get("lossless"):
                assert v["metrics"]["psnr"] is None                # +inf written as null
                if HAS_SSIMULACRA2:
                    assert v["metrics"]["ssimulacra2"] == pytest.approx(100.0, abs=1e-6)


@pytest.mark.slow
def test_recipe_through_the_executor(tmp_path, images):
    data = tmp_path / "images.jsonl"
    data.write_text("".join(json.dumps({"images": [p]}) + "\n" for p in images))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""project_name: sweep-test
dataset_path: {data}
export_path: {tmp_path}/out/variants.jsonl
work_dir: {tmp_path}/out
np: 1
use_checkpoint: false
process:
  - image_codec_sweep_mapper:
      study_id: sweep-test
      metrics: {json.dumps(METRICS)}
      grid: {json.dumps(GRID)}
  - quality_report_aggregator: {{}}
""")
    cmd = [sys.executable, "-c", "import sys; from pipelines.cli import process_main; "
           "sys.exit(process_main(sys.argv[1:]))", "--config", str(recipe)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert doc["summary"] == {"images": 3, "variants": 3 * N_SETTINGS}
    assert len((tmp_path / "out" / "variants.jsonl").read_text().splitlines()) == 3 * N_SETTINGS


def test_shipped_recipes_validate():
    from pipelines.config import build_ops, parse_recipe
    expected = {"format-comparison": 44, "avif-crop-impact": 6, "resolution-impact": 16}
    for name, n in expected.items():
        recipe = parse_recipe(["--config", str(REPO / "recipes" / f"{name}.yaml"),
                               "--dataset_path", str(REPO / "tests" / "recipes" / "basic.yaml")])
        ops = build_ops(recipe)
        assert ops[0].name == "image_codec_sweep_mapper" and len(ops[0].settings) == n
        assert "quality_report_aggregator" in [op.name for op in ops]
