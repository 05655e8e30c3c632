"""Small real studies for the comparison tests: synthetic photos swept by the real
image_codec_sweep_mapper and collected by quality_report_aggregator."""
import json

import numpy as np
import pytest
from PIL import Image

from ops.base import RunContext
from ops.fields import Fields

METRICS = ["psnr", "butteraugli"]


def synthetic_photo(w: int, h: int, seed: int, busy: float) -> np.ndarray:
    """Gradients, a sine texture of strength ``busy``, shapes and fine noise: content on which
    codecs disagree (more with higher ``busy``)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 120 * x / w, 80 + 100 * y / h, 140 - 60 * (x + y) / (w + h)], -1)
    tex = busy * 60 * np.sin(x * 0.9 + rng.uniform(0, 6)) * np.sin(y * 0.7)
    img = base + tex[..., None] + rng.normal(0, 2 + 4 * busy, (h, w, 3))
    img[h // 4:h // 2, w // 5:w // 2] = (200, 40, 40)
    img[h // 2:3 * h // 4, w // 2:4 * w // 5] = (30, 30, 160) + busy * rng.normal(0, 30, (1, 1, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def run_sweep(tmp, paths, grid, study_id, **mapper_kw) -> str:
    """Sweep ``paths`` with the real mapper and write quality.json; returns its path."""
    from ops.aggregator.quality_report_aggregator import QualityReportAggregator
    from ops.mapper.image_codec_sweep_mapper import ImageCodecSweepMapper
    ctx = RunContext(work_dir=str(tmp))
    mapper = ImageCodecSweepMapper(grid=grid, study_id=study_id, metrics=METRICS,
                                   use_cache=False, **mapper_kw).bind(ctx)
    mapper.ensure_setup()
    agg = QualityReportAggregator(output_path="quality.json").bind(ctx)
    rows = []
    for i, p in enumerate(paths):
        rows += mapper.process_batched([{Fields.id: str(i), "images": [str(p)]}])
    agg.aggregate_batched(rows)
    return agg.finalize()["quality_json"], rows


def _photos(root, specs):
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, w, h, seed, busy in specs:
        p = root / name
        Image.fromarray(synthetic_photo(w, h, seed, busy)).save(p)
        paths.append(p)
    return paths


@pytest.fixture(scope="session")
def format_study(tmp_path_factory):
    """Two 96x80 photos, JPEG and WebP quality sweeps; the second photo also has AVIF (so the
    first lacks a tile of the study).  Returns (quality.json path, sweep rows, photo paths)."""
    root = tmp_path_factory.mktemp("format_study")
    paths = _photos(root / "photos", [("calm.png", 96, 80, 1, 0.2), ("busy.png", 96, 80, 2, 1.0)])
    grid = {"jpeg": {"quality": [20, 40, 60, 80, 95]}, "webp": {"quality": [20, 40, 60, 80, 95]}}
    q1, rows1 = run_sweep(root / "a", paths[:1], grid, "fmt")
    grid2 = dict(grid, avif={"quality": [20, 50, 80], "speed": 9})
    q2, rows2 = run_sweep(root / "b", paths[1:], grid2, "fmt")
    doc = json.load(open(q1))
    doc["images"] += json.load(open(q2))["images"]
    doc["formats"] = ["avif", "jpeg", "webp"]
    out = root / "quality.json"
    out.write_text(json.dumps(doc))
    return out, rows1 + rows2, paths


@pytest.fixture(scope="session")
def crop_study(tmp_path_factory):
    """A 160x120 photo, JPEG swept on square crops 112 and 64 around a stored fragment."""
    root = tmp_path_factory.mktemp("crop_study")
    paths = _photos(root / "photos", [("scene.png", 160, 120, 3, 0.8)])
    q, _ = run_sweep(root / "w", paths, {"jpeg": {"quality": [20, 50, 80, 95]}}, "crops",
                     crop_sizes=[112, 64], fragment=[90, 40, 32, 32])
    return q, paths


@pytest.fixture(scope="session")
def resolution_study(tmp_path_factory):
    """A 128x96 photo at 100 % and 50 %, WebP swept."""
    root = tmp_path_factory.mktemp("res_study")
    paths = _photos(root / "photos", [("scene.png", 128, 96, 4, 0.6)])
    q, _ = run_sweep(root / "w", paths, {"webp": {"quality": [20, 50, 80, 95]}}, "res",
                     scales=[1.0, 0.5])
    return q, paths
