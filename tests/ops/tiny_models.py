"""Tiny models built from configs (random weights) and saved the way fetched weights are, with
working tokenizers: a CLIP with a character-level BPE vocabulary, a BLIP captioner with a small
WordPiece vocabulary, and a YOLO11 detector from ultralytics' model yaml."""
import copy
import json
import math
import string
from pathlib import Path

CLIP_DIR, BLIP_CAPTION_DIR, YOLO_FILE = "tiny-clip-text", "tiny-blip-caption", "yolo11-tiny.pt"
CAPTION_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "an", "the", "photo", "of",
                 "woman", "man", "cup", "coffee", "cat", "on", "table", "with", "in", "and",
                 "red", "blue", "car", "dog", "street", "two", "is", "sitting", "##s", "."]


def build_clip(root: Path) -> str:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer
    torch.manual_seed(11)
    out = root / CLIP_DIR
    out.mkdir(parents=True)
    chars = list(string.ascii_lowercase + string.digits) + [".", ","]
    vocab = ["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars]
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (out / "merges.txt").write_text("#version: 0.2\n")
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=8)
    model = CLIPModel(cfg)
    with torch.no_grad():   # a trained CLIP's logit scale: logits_per_text / 100 = cosine
        model.logit_scale.fill_(math.log(100.0))
    model.save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32}).save_pretrained(out)
    CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"),
                  pad_token="<|endoftext|>").save_pretrained(out)
    return str(out)


def build_blip_captioner(root: Path) -> str:
    import torch
    from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration,
                              BlipImageProcessor, BlipProcessor)
    torch.manual_seed(12)
    out = root / BLIP_CAPTION_DIR
    out.mkdir(parents=True)
    (out / "vocab.txt").write_text("\n".join(CAPTION_VOCAB) + "\n")
    tokenizer = BertTokenizer(str(out / "vocab.txt"), bos_token="[CLS]", eos_token="[SEP]")
    cfg = BlipConfig(
        text_config=dict(vocab_size=len(CAPTION_VOCAB), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64,
                         encoder_hidden_size=16, bos_token_id=2, sep_token_id=3, eos_token_id=3,
                         pad_token_id=0, initializer_range=0.5),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=2, image_size=32, patch_size=8,
                           initializer_range=0.5),
        projection_dim=8, image_text_hidden_size=8)
    model = BlipForConditionalGeneration(cfg)
    with torch.no_grad():   # like a trained captioner: words, not [PAD] / [UNK] / [CLS] / [MASK]
        bias = model.text_decoder.cls.predictions.bias
        bias[[0, 1, 2, 4]] = -30.0
        bias[3] -= 4.0      # and not [SEP] (end) before a first word
    model.save_pretrained(out)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(out)
    return str(out)


def build_yolo(root: Path) -> str:
    """A YOLO11 detector scaled down to ~0.1M parameters, 3 classes, saved as ultralytics'
    trainer saves checkpoints."""
    import torch
    import ultralytics
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load
    torch.manual_seed(13)
    cfg = copy.deepcopy(yaml_model_load("yolo11n.yaml"))
    cfg["scales"] = {"t": [0.33, 0.0625, 256]}
    cfg["scale"], cfg["nc"] = "t", 3
    model = DetectionModel(cfg, ch=3, nc=3, verbose=False)
    model.names = {0: "person", 1: "cup", 2: "cat"}
    with torch.no_grad():
        # an untrained net's activations fade to ~1e-8 by the head, so every anchor gets the
        # same score: calibrate the batch norms on a batch of textured inputs (one pass in
        # training mode, batch statistics only), then make the class scores depend on those
        # features and favour short box sides (DFL: 4 sides x reg_max bins; the expected bin
        # is the side's length in strides)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 1.0
        gen = torch.Generator().manual_seed(0)
        model.train()
        model(torch.rand(8, 3, 96, 96, generator=gen))
        model.eval()
        head = model.model[-1]
        bins = torch.arange(head.reg_max, dtype=torch.float32)
        for cls_conv, box_conv in zip(head.cv3, head.cv2):
            cls_conv[-1].weight.normal_(0.0, 0.03)
            cls_conv[-1].bias.fill_(-3.0)
            box_conv[-1].bias.copy_((-0.6 * bins).repeat(4) + 0.3 * torch.randn(4 * head.reg_max))
    path = root / YOLO_FILE
    torch.save({"date": "2026-01-01T00:00:00", "version": ultralytics.__version__, "epoch": -1,
                "best_fitness": None, "model": copy.deepcopy(model).half(), "ema": None,
                "updates": None, "optimizer": None, "train_args": {"task": "detect", "imgsz": 64},
                "train_metrics": None, "train_results": None}, path)
    from ops.models.fastsam import restore_pil_open
    restore_pil_open()
    return str(path)
