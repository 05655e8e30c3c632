"""Suite-wide settings: offline, no telemetry, small generated data."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "plugins"


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path) -> list:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def small_images(tmp_path_factory):
    """A folder of 24 small JPEG/PNG images of varied sizes, and a jsonl listing them with
    relative paths (plus one missing file): the shared little dataset of executor tests."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("small_images")
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    sizes = [(96, 64), (40, 40), (300, 60), (128, 128), (64, 200), (80, 90)]
    for i in range(24):
        w, h = sizes[i % len(sizes)]
        arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        ext = "png" if i % 3 == 0 else "jpg"
        Image.fromarray(arr).save(root / "img" / f"{i:02d}.{ext}")
        rows.append({"images": [f"img/{i:02d}.{ext}"], "text": f"sample {i}", "n": i})
    rows.append({"images": ["img/does_not_exist.jpg"], "text": "missing", "n": 24})
    write_jsonl(root / "data.jsonl", rows)
    return root
