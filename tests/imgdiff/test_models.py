"""The model loaders on tiny models saved like fetched weights: offline loading, one copy per
process, the missing-model error, and outputs checked against the libraries' own forward."""
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from ops.models import assets
from ops.models.assets import ModelNotFoundError
from ops.models.blip import load_blip_itm
from ops.models.clip import load_clip
from ops.models.fastsam import load_fastsam


def _images(n=3, seed=0, size=(60, 40)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (size[1] + 7 * i, size[0], 3), dtype=np.uint8))
            for i in range(n)]


def _scene(w, h, seed):
    """A grey image with a few solid rectangles: something for a detector to find."""
    rng = np.random.default_rng(seed)
    arr = np.full((h, w, 3), 128, dtype=np.uint8)
    for _ in range(4):
        x, y = int(rng.integers(0, w - 30)), int(rng.integers(0, h - 30))
        arr[y:y + 30, x:x + 30] = rng.integers(0, 255, 3)
    return arr


def _rows_sorted(boxes):
    """Boxes in a canonical row order (equal confidences leave NMS order open)."""
    b = np.round(np.asarray(boxes, dtype=np.float64), 1)
    return b[np.lexsort(b.T[::-1])]


# ------------------------------------------------------------------------------------ CLIP
def test_hf_clip_embeddings_match_transformers(tiny_models):
    from transformers import CLIPImageProcessor, CLIPModel
    clip = load_clip(tiny_models["clip"])
    ims = _images()
    emb = clip.embed_images(ims)
    assert emb.shape == (3, 8) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    folder = tiny_models["assets"] / tiny_models["clip"]
    ref_model = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
    proc = CLIPImageProcessor.from_pretrained(folder)
    with torch.no_grad():
        out = ref_model.get_image_features(**proc(images=ims, return_tensors="pt"))
    ref = getattr(out, "pooler_output", out)
    assert torch.allclose(emb, ref / ref.norm(dim=1, keepdim=True), atol=1e-5)


def test_clip_batches_and_counts_forward_passes(tiny_models):
    clip = load_clip(tiny_models["clip"])
    ims = _images(5)
    before = clip.forward_passes
    whole = clip.embed_images(ims, batch_size=8)
    assert clip.forward_passes == before + 1
    chunked = clip.embed_images(ims, batch_size=2)
    assert clip.forward_passes == before + 1 + 3
    assert torch.allclose(whole, chunked, atol=1e-5)
    assert clip.embed_images([]).shape == (0, 8)


def test_clip_pair_similarity(tiny_models):
    clip = load_clip(tiny_models["clip"])
    a, b = _images(2, seed=1)
    sims = clip.pair_similarity([a, a, b], [a.copy(), b, b])
    emb = clip.embed_images([a, b])
    assert sims.shape == (3,)
    assert sims[0] == pytest.approx(1.0, abs=1e-5)
    assert sims[1] == pytest.approx(float(emb[0] @ emb[1]), abs=1e-5)
    with pytest.raises(ValueError, match="equal lists"):
        clip.pair_similarity([a], [a, b])


def test_open_clip_name_loads_and_matches_open_clip(tiny_models):
    import open_clip
    clip = load_clip(tiny_models["open_clip"])
    assert clip.family == "open_clip"
    ims = _images(2, seed=2)
    emb = clip.embed_images(ims)
    folder = tiny_models["assets"] / "open_clip" / "tiny-vit" / "test"
    model, _, pre = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    with torch.no_grad():
        ref = model.eval().encode_image(torch.stack([pre(im) for im in ims]), normalize=True)
    assert emb.shape == (2, 8)
    assert torch.allclose(emb, ref, atol=1e-5)
    # the folder itself is a valid name too, and resolves to the same loaded copy
    assert load_clip(str(folder)) is clip


def test_one_copy_per_process(tiny_models):
    clip = load_clip(tiny_models["clip"])
    assert load_clip(tiny_models["clip"], device="cpu") is clip
    assert load_clip(str(tiny_models["assets"] / tiny_models["clip"])) is clip
    blip = load_blip_itm(tiny_models["blip"])
    assert load_blip_itm(tiny_models["blip"]) is blip
    sam = load_fastsam(tiny_models["fastsam"])
    assert load_fastsam(str(tiny_models["assets"] / tiny_models["fastsam"])) is sam
    kinds = [k[0] for k in assets.loaded_models()]
    assert kinds.count("blip_itm") == 1 and kinds.count("fastsam") == 1


# ------------------------------------------------------------------------------------ BLIP
def test_blip_itm_scores_match_transformers(tiny_models):
    from transformers import BlipForImageTextRetrieval, BlipProcessor
    blip = load_blip_itm(tiny_models["blip"])
    ims = _images(3, seed=3)
    texts = ["a red car", "two dogs on the street", "a cup"]
    scores = blip.itm_scores(ims, texts)
    assert scores.shape == (3,)
    assert bool(((scores > 0) & (scores < 1)).all())
    folder = tiny_models["assets"] / tiny_models["blip"]
    ref_model = BlipForImageTextRetrieval.from_pretrained(folder, local_files_only=True).eval()
    proc = BlipProcessor.from_pretrained(folder)
    for im, t, s in zip(ims, texts, scores):
        with torch.no_grad():
            logits = ref_model(**proc(images=im, text=t, return_tensors="pt")).itm_score
        assert float(s) == pytest.approx(float(logits.softmax(-1)[0, 1]), abs=1e-5)


def test_blip_encodes_each_image_once(tiny_models):
    blip = load_blip_itm(tiny_models["blip"])
    ims = _images(2, seed=4)
    texts = ["a dog", "a red car on the table", "the man"]
    before = blip.forward_passes
    matrix = blip.itm_matrix(ims, texts, batch_size=32)
    assert matrix.shape == (2, 3)
    assert blip.forward_passes == before + 2  # one vision pass + one text pass for all 6 pairs
    single = torch.stack([blip.itm_scores([im], [t]) for im in ims for t in texts]).view(2, 3)
    assert torch.allclose(matrix, single, atol=1e-5)
    # small batches give the same numbers, in more passes
    before = blip.forward_passes
    assert torch.allclose(blip.itm_matrix(ims, texts, batch_size=1), matrix, atol=1e-5)
    assert blip.forward_passes == before + 2 + 6


def test_blip_rejects_bad_input(tiny_models):
    blip = load_blip_itm(tiny_models["blip"])
    im = _images(1)[0]
    with pytest.raises(ValueError, match="one text per image"):
        blip.itm_scores([im, im], ["a dog"])
    with pytest.raises(ValueError, match="empty"):
        blip.itm_scores([im], ["  "])
    assert blip.itm_scores([], []).shape == (0,)


# ------------------------------------------------------------------------------------ FastSAM
def test_fastsam_boxes_match_ultralytics_and_stay_in_bounds(tiny_models):
    from ultralytics import FastSAM
    sam = load_fastsam(tiny_models["fastsam"])
    scenes = [_scene(160, 120, 0), _scene(90, 200, 1)]
    ref = FastSAM(str(tiny_models["assets"] / tiny_models["fastsam"]))
    for arr in scenes:
        boxes, conf = sam.segment_with_scores([arr], imgsz=128, conf=0.3, iou=0.5)[0]
        h, w = arr.shape[:2]
        assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
        assert len(boxes) > 0
        assert (boxes != np.array([0, 0, w, h])).any(axis=1).any()  # not only whole-image boxes
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
        assert (np.diff(conf) <= 1e-6).all()  # highest confidence first
        # ultralytics' own FastSAM pipeline (it wants BGR arrays) gives the same boxes
        r = ref.predict(arr[:, :, ::-1].copy(), imgsz=128, conf=0.3, iou=0.5, verbose=False)[0]
        expect = r.boxes.xyxy.cpu().numpy()
        assert boxes.shape == expect.shape
        np.testing.assert_allclose(_rows_sorted(boxes), _rows_sorted(expect), atol=0.5)


def test_fastsam_batches_pil_and_arrays_alike(tiny_models):
    sam = load_fastsam(tiny_models["fastsam"])
    scenes = [_scene(160, 120, s) for s in range(3)]
    before = sam.forward_passes
    batched = sam.segment([Image.fromarray(a) for a in scenes], imgsz=128, conf=0.3)
    assert sam.forward_passes == before + 1
    one_by_one = [sam.segment([a], imgsz=128, conf=0.3)[0] for a in scenes]
    for b, o in zip(batched, one_by_one):
        np.testing.assert_allclose(b, o, atol=1e-3)
    assert sam.segment([], imgsz=128) == []


def test_fastsam_rejects_non_segmentation_checkpoint(tiny_models):
    with pytest.raises(ValueError, match="not a segmentation model"):
        load_fastsam(tiny_models["detect"])
    with pytest.raises(ValueError, match=r"\.pt file"):
        load_fastsam("FastSAM-x.onnx")


# ------------------------------------------------------------------------------------ missing
@pytest.mark.parametrize("loader, name", [(load_clip, "nobody/no-such-clip"),
                                          (load_clip, "open_clip:ViT-B-32/laion2b_s34b_b79k"),
                                          (load_blip_itm, "nobody/no-such-blip"),
                                          (load_fastsam, "FastSAM-s.pt")])
def test_missing_model_offline_is_one_fast_clear_error(tiny_models, loader, name):
    t0 = time.monotonic()
    with pytest.raises(ModelNotFoundError) as info:
        loader(name)
    assert time.monotonic() - t0 < 5
    msg = str(info.value)
    assert f"'{name}'" in msg
    assert str(tiny_models["assets"]) in msg          # the assets dir was searched
    assert f"python tools/fetch_models.py {name}" in msg
    assert "HF_HUB_OFFLINE" in msg or "YOLO_OFFLINE" in msg
    assert len(info.value.searched) >= 2              # assets dir + the library's cache


def test_imgjuicer_offline_alone_stops_downloads(tiny_models, monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IMGJUICER_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="IMGJUICER_OFFLINE"):
        load_blip_itm("nobody/no-such-blip")
    with pytest.raises(ModelNotFoundError, match="IMGJUICER_OFFLINE"):
        load_fastsam("FastSAM-s.pt")
    assert time.monotonic() - t0 < 5


def test_explicit_missing_path_names_the_path(tiny_models, tmp_path):
    missing = tmp_path / "nowhere" / "clip"
    with pytest.raises(ModelNotFoundError, match="does not exist") as info:
        load_clip(str(missing))
    assert str(missing) in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="save_pretrained"):
        load_blip_itm(str(tmp_path / "empty"))


def test_loading_fastsam_leaves_pillow_unpatched(tiny_models, tmp_path):
    from ultralytics.utils import patches

    from ops.image.io import ImageLoadError, load_image
    Image.open = patches.image_open   # what importing ultralytics does to every process
    load_fastsam(tiny_models["fastsam"])
    assert Image.open is patches._image_open
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"definitely not an image")
    with pytest.raises(ImageLoadError, match="garbage.jpg"):
        load_image(str(garbage))


# ------------------------------------------------------------------------------------ fetch tool
def _fetch_tool():
    from ops.models import fetch
    return fetch


def fetch_cli(argv):
    """tools/fetch_models.py's main."""
    from pipelines.cli.fetch_models import main
    return main(argv)


def test_fetch_tool_puts_models_where_the_loaders_look(tiny_models, capsys):
    tool = _fetch_tool()
    root = tiny_models["assets"]
    assert tool.plan_for(tiny_models["clip"], root).target == root / tiny_models["clip"]
    assert tool.plan_for("open_clip:tiny-vit/test", root).target == \
        root / "open_clip" / "tiny-vit" / "test"
    assert tool.plan_for(tiny_models["fastsam"], root).target == root / tiny_models["fastsam"]
    assert tool.plan_for("ViT-B-32/openai", root).kind == "open_clip"
    assert tool.plan_for("fastsam-s", root).name == "FastSAM-s.pt"
    for name in (tiny_models["clip"], tiny_models["blip"], tiny_models["fastsam"],
                 "open_clip:tiny-vit/test"):
        assert tool.plan_for(name, root).present()
    assert fetch_cli(["--dry-run", "--assets", str(root), tiny_models["blip"], "clip"]) == 0
    out = capsys.readouterr().out
    assert f"{root / tiny_models['blip']} (present)" in out
    assert "openai/clip-vit-base-patch32 [hf]" in out
    assert fetch_cli(["--list", "--assets", str(root)]) == 0
    listing = capsys.readouterr().out
    assert "FastSAM-x.pt" in listing and "missing" in listing


def test_fetch_tool_rejects_bad_names_and_offline(tiny_models, tmp_path, capsys):
    tool = _fetch_tool()
    assert fetch_cli(["--assets", str(tmp_path), "not-a-model"]) == 2
    assert "not a Hugging Face id" in capsys.readouterr().err
    assert fetch_cli(["--assets", str(tmp_path), "open_clip:ViT-B-32"]) == 2
    assert "pretrained tag" in capsys.readouterr().err
    t0 = time.monotonic()
    assert fetch_cli(["--assets", str(tmp_path), "fastsam-s"]) == 1   # tests run offline
    assert "downloads are off" in capsys.readouterr().err
    assert time.monotonic() - t0 < 5
    assert not list(tmp_path.iterdir())


def test_fetch_tool_download_is_atomic(tiny_models, tmp_path, monkeypatch):
    tool = _fetch_tool()
    src = tmp_path / "release" / "v0" / tiny_models["fastsam"]
    src.parent.mkdir(parents=True)
    src.write_bytes((tiny_models["assets"] / tiny_models["fastsam"]).read_bytes())
    monkeypatch.setattr(tool, "ULTRALYTICS_URL",
                        (tmp_path / "release").as_uri() + "/{release}/{name}")
    dest = tmp_path / "assets"
    plan = tool.plan_for(tiny_models["fastsam"], dest)
    tool.fetch_ultralytics(plan, "v0")
    assert plan.target.read_bytes() == src.read_bytes()
    small = tool.plan_for("tiny.pt", dest)
    (tmp_path / "release" / "v0" / "tiny.pt").write_bytes(b"x" * 10)
    with pytest.raises(tool.FetchError, match="only 10 bytes"):
        tool.fetch_ultralytics(small, "v0")
    with pytest.raises(tool.FetchError, match="failed"):
        tool.fetch_ultralytics(tool.plan_for("absent.pt", dest), "v0")
    assert sorted(p.name for p in dest.iterdir()) == [tiny_models["fastsam"]]  # no .part left


NO_NETWORK_SCRIPT = r"""
import socket, sys
calls = []
def refuse(*a, **k):
    calls.append(a[:1])
    raise OSError("network disabled by the test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = refuse
from ops.models.blip import load_blip_itm
from ops.models.clip import load_clip
from ops.models.fastsam import load_fastsam
names = sys.argv[1:]
load_clip(names[0]); load_clip(names[1]); load_blip_itm(names[2]); load_fastsam(names[3])
print("network calls:", len(calls))
"""


@pytest.mark.slow
def test_weights_on_disk_mean_no_network_even_online(tiny_models):
    """A fresh process with no offline flag: every socket call fails loudly and is counted."""
    import os
    import subprocess

    from tests.conftest import REPO
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE",
                        "IMGJUICER_OFFLINE")}
    env["IMGJUICER_ASSETS"] = str(tiny_models["assets"])
    r = subprocess.run([sys.executable, "-c", NO_NETWORK_SCRIPT, tiny_models["clip"],
                        tiny_models["open_clip"], tiny_models["blip"], tiny_models["fastsam"]],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "network calls: 0" in r.stdout


def test_open_clip_weights_file_for_a_registered_architecture(tiny_models, tmp_path, monkeypatch):
    """assets_cache/open_clip/<arch>/ holding only a weights file: the architecture's own config
    is used (here a config registered with open_clip, as built-in ones are)."""
    import json
    import shutil

    import open_clip
    src = tiny_models["assets"] / "open_clip" / "tiny-vit" / "test"
    cfg = json.loads((src / "open_clip_config.json").read_text())["model_cfg"]
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "tiny-arch-x.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "cfg" / "tiny-arch-x.json")
    assets = tmp_path / "assets"
    (assets / "open_clip" / "tiny-arch-x").mkdir(parents=True)
    shutil.copy(src / "open_clip_model.safetensors", assets / "open_clip" / "tiny-arch-x")
    monkeypatch.setenv("IMGJUICER_ASSETS", str(assets))
    clip = load_clip("open_clip:tiny-arch-x")
    ims = _images(2, seed=5)
    monkeypatch.setenv("IMGJUICER_ASSETS", str(tiny_models["assets"]))
    ref = load_clip(tiny_models["open_clip"])
    assert clip is not ref
    assert torch.allclose(clip.embed_images(ims), ref.embed_images(ims), atol=1e-5)


def test_tiny_crops_go_through_every_model(tiny_models):
    """Crops of a few pixels (FastSAM boxes can be that small) are valid input everywhere."""
    rng = np.random.default_rng(9)
    crops = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
             for w, h in [(1, 1), (3, 3), (1, 5), (5, 1), (2, 300)]]
    for name in (tiny_models["clip"], tiny_models["open_clip"]):
        emb = load_clip(name).embed_images(crops)
        assert emb.shape == (5, 8) and torch.isfinite(emb).all()
        assert torch.allclose(emb.norm(dim=1), torch.ones(5), atol=1e-5)
    scores = load_blip_itm(tiny_models["blip"]).itm_scores(crops, ["a dog"] * 5)
    assert bool(((scores > 0) & (scores < 1)).all())
    for crop, boxes in zip(crops, load_fastsam(tiny_models["fastsam"]).segment(crops, imgsz=64,
                                                                                conf=0.3)):
        w, h = crop.size
        assert ((boxes >= 0).all() and (boxes[:, [0, 2]] <= w).all()
                and (boxes[:, [1, 3]] <= h).all())


def test_fetch_tool_lists_what_a_recipe_needs(tmp_path, capsys):
    from tests.conftest import REPO
    assert fetch_cli(["--dry-run", "--assets", str(tmp_path),
                      "--recipe", str(REPO / "recipes" / "imgdiff.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[0] for line in out] == [
        "openai/clip-vit-base-patch32", "Salesforce/blip-itm-base-coco", "FastSAM-x.pt"]
    assert fetch_cli(["--dry-run", "--recipe", str(tmp_path / "none.yaml")]) == 2
