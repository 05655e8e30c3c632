"""Session fixtures: tiny CLIP / open_clip / BLIP / FastSAM-architecture models built from configs
and saved into a temporary assets dir (IMGJUICER_ASSETS points there), and generated image pairs.
The real loaders read them back exactly as they would read fetched weights."""
import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

TINY_CLIP = "tiny/clip"
TINY_OPEN_CLIP = "open_clip:tiny-vit/test"
TINY_BLIP = "tiny/blip-itm"
TINY_FASTSAM = "FastSAM-tiny.pt"
TINY_DETECT = "yolo-detect-tiny.pt"   # a non-segmentation checkpoint, for the error path

BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "an", "the", "two", "red", "blue",
              "green", "car", "cars", "dog", "cat", "tree", "man", "woman", "on", "in", "of",
              "with", "street", "sign", "stop", "table", "cup", "ball", "##s", "is", "and"]


def _build_clip(root: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, bos_token_id=0,
                         eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=8)
    out = root / TINY_CLIP
    CLIPModel(cfg).save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32}).save_pretrained(out)


def _build_open_clip(root: Path) -> None:
    import torch
    from open_clip.model import CLIP
    from safetensors.torch import save_file
    torch.manual_seed(1)
    cfg = {"model_cfg": {"embed_dim": 8,
                         "vision_cfg": {"image_size": 32, "layers": 1, "width": 32,
                                        "patch_size": 8, "head_width": 16},
                         "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 16,
                                      "heads": 2, "layers": 1}},
           "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                              "std": [0.26862954, 0.26130258, 0.27577711]}}
    out = root / "open_clip" / "tiny-vit" / "test"
    out.mkdir(parents=True)
    (out / "open_clip_config.json").write_text(json.dumps(cfg))
    save_file(CLIP(**cfg["model_cfg"]).state_dict(), str(out / "open_clip_model.safetensors"))


def _build_blip(root: Path) -> None:
    import torch
    from transformers import (BertTokenizer, BlipConfig, BlipForImageTextRetrieval,
                              BlipImageProcessor, BlipProcessor)
    torch.manual_seed(2)
    out = root / TINY_BLIP
    out.mkdir(parents=True)
    (out / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n")
    tokenizer = BertTokenizer(str(out / "vocab.txt"))
    cfg = BlipConfig(
        text_config=dict(vocab_size=len(BERT_VOCAB), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                         encoder_hidden_size=16, bos_token_id=2, sep_token_id=3, pad_token_id=0,
                         initializer_range=0.4),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=2, image_size=32, patch_size=8,
                           initializer_range=0.4),
        projection_dim=8, image_text_hidden_size=8)
    BlipForImageTextRetrieval(cfg).save_pretrained(out)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(out)


def _save_ultralytics_ckpt(model, path: Path, task: str) -> None:
    """Save the way ultralytics' trainer does: the whole model object, half precision."""
    import torch
    import ultralytics
    ckpt = {"date": "2026-01-01T00:00:00", "version": ultralytics.__version__, "epoch": -1,
            "best_fitness": None, "model": copy.deepcopy(model).half(), "ema": None,
            "updates": None, "optimizer": None, "train_args": {"task": task, "imgsz": 64},
            "train_metrics": None, "train_results": None}
    torch.save(ckpt, path)


def _build_fastsam(root: Path) -> None:
    import torch
    from ultralytics.nn.tasks import DetectionModel, SegmentationModel, yaml_model_load
    torch.manual_seed(3)
    for yaml_name, cls, target, task in (("yolov8n-seg.yaml", SegmentationModel, TINY_FASTSAM,
                                          "segment"),
                                         ("yolov8n.yaml", DetectionModel, TINY_DETECT, "detect")):
        cfg = copy.deepcopy(yaml_model_load(yaml_name))
        cfg["scales"] = {"t": [0.33, 0.0625, 256]}   # depth, width, max channels: ~0.25M params
        cfg["scale"], cfg["nc"] = "t", 1
        model = cls(cfg, ch=3, nc=1, verbose=False)
        model.names = {0: "object"}
        with torch.no_grad():   # untrained heads predict ~1e-4 confidence: make it varied
            head = model.model[-1]
            for cls_conv, box_conv in zip(head.cv3, head.cv2):
                cls_conv[-1].bias.normal_(0.0, 1.0)
                box_conv[-1].bias.normal_(0.0, 2.0)
        _save_ultralytics_ckpt(model, root / target, task)
    from ops.models.fastsam import restore_pil_open
    restore_pil_open()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Build the tiny models once; IMGJUICER_ASSETS points at them for the whole session.
    Returns names to pass to the loaders / ops, and the assets dir."""
    from ops.models.assets import clear_loaded
    root = tmp_path_factory.mktemp("assets")
    _build_clip(root)
    _build_open_clip(root)
    _build_blip(root)
    _build_fastsam(root)
    old = os.environ.get("IMGJUICER_ASSETS")
    os.environ["IMGJUICER_ASSETS"] = str(root)
    clear_loaded()
    yield {"assets": root, "clip": TINY_CLIP, "open_clip": TINY_OPEN_CLIP, "blip": TINY_BLIP,
           "fastsam": TINY_FASTSAM, "detect": TINY_DETECT}
    clear_loaded()
    if old is None:
        os.environ.pop("IMGJUICER_ASSETS", None)
    else:
        os.environ["IMGJUICER_ASSETS"] = old


def make_pair(rng, size=(64, 48), box=(16, 12, 40, 36), color=(220, 30, 30)):
    """A textured background and a copy of it with a solid rectangle painted at ``box``."""
    w, h = size
    base = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)
    a = Image.fromarray(base)
    b = a.copy()
    ImageDraw.Draw(b).rectangle(box, fill=color)
    return a, b


@pytest.fixture(scope="session")
def image_pairs(tmp_path_factory):
    """Six generated pairs on disk (JPEG/PNG, varied sizes): rows with image_path1/2 and
    caption1/2; pair 0 is two identical files."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(7)
    sizes = [(64, 48), (64, 48), (80, 60), (48, 72), (96, 40), (50, 50)]
    rows = []
    for i, size in enumerate(sizes):
        a, b = make_pair(rng, size=size, box=(8, 8, size[0] // 2, size[1] // 2))
        if i == 0:
            b = a.copy()
        ext = "png" if i % 2 else "jpg"
        p1, p2 = root / f"{i}_a.{ext}", root / f"{i}_b.{ext}"
        a.save(p1)
        b.save(p2)
        rows.append({"image_path1": str(p1), "image_path2": str(p2),
                     "caption1": "a dog on the street", "caption2": "a red car on the street"})
    return rows
