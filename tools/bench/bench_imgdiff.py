"""Benchmark: the fused, batched ImgDiff op against a batch-1 per-crop-per-noun baseline.

Both run in the same process on the same pairs with the same full-size architectures built
from configs with random weights (timing needs no trained weights): CLIP ViT-B/32, BLIP ITM
base (ViT-B/16 at 384 px + BERT-base), FastSAM-s or -x (YOLOv8-seg from ultralytics' yaml).

The baseline follows Data-Juicer's call pattern: per pair, one CLIP call for the two images,
one FastSAM call per image, one BLIP call per (crop, noun) with batch 1 for every candidate box,
then one CLIP call per box that BLIP kept.  The fused op batches every call over all crops of
all pairs, encodes each crop once in BLIP whatever the number of nouns, and runs the cheap
CLIP crop test before BLIP.  Both must return the same boxes (checked, to within the 1-px
twins NMS may pick either of).

FastSAM runs for real on every image (its passes and time count) but random weights propose
arbitrary boxes, so its output is replaced by planted candidates: each object of the scene
plus a background patch, the same for both paths.  Random-weight CLIP squeezes every
similarity towards 1, so the crop test's upper bound is 0.9999 instead of the trained model's
0.85: identical regions (similarity 1) are dropped, the changed one is kept.  ``--open``
sends every candidate through every model instead (only batching differs then).

Each path runs twice in A-B-B-A order so that load changes on a shared machine weigh on both.

Run: .venv/bin/python tools/bench/bench_imgdiff.py [--pairs 2] [--sam s|x] [--open]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ops.imgdiff.boxes import align_pair, clamp_boxes, crop, nms, scale_boxes
from ops.imgdiff.caption_diff import get_differ
from ops.imgdiff.difference_areas import DiffParams, DifferenceAreaFinder, PairInput
from ops.imgdiff.synthetic import caption, draw_scene

NAMES = ["apple", "box", "lemon", "plum"]


def build_models(sam_scale: str):
    """Full-size random-weight models wrapped in the project's own scorer classes."""
    import torch
    from transformers import (BertTokenizer, BlipConfig, BlipForImageTextRetrieval,
                              BlipImageProcessor, BlipProcessor, CLIPImageProcessor,
                              CLIPVisionConfig, CLIPVisionModelWithProjection)
    from ultralytics.nn.tasks import SegmentationModel

    from ops.models.blip import BlipItmModel
    from ops.models.clip import ClipModel
    from ops.models.fastsam import FastSamModel

    torch.manual_seed(0)
    clip_net = CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=512)).eval()
    clip_proc = CLIPImageProcessor()  # 224 px, CLIP's mean/std

    def encode(pixels):
        return clip_net(pixel_values=pixels).image_embeds

    clip = ClipModel("random ViT-B/32", "cpu", "hf", encode,
                     lambda ims: clip_proc(images=ims, return_tensors="pt")["pixel_values"], 512)
    blip_net = BlipForImageTextRetrieval(BlipConfig()).eval()  # ViT-B/16 @ 384 + BERT-base
    vocab = Path(tempfile.mkdtemp(prefix="bench-imgdiff-")) / "vocab.txt"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(NAMES + ["pear", "a", "an"]))
    vocab.write_text("\n".join(words) + "\n")
    proc = BlipProcessor(image_processor=BlipImageProcessor(),  # 384 px
                         tokenizer=BertTokenizer(str(vocab)))
    blip = BlipItmModel("random BLIP ITM base", "cpu", blip_net, proc)
    seg_net = SegmentationModel(f"yolov8{sam_scale}-seg.yaml", ch=3, nc=1, verbose=False)
    sam = FastSamModel(f"random FastSAM-{sam_scale}", "cpu", seg_net.fuse(verbose=False).eval())
    return clip, blip, sam


class PlantedBoxes:
    """Runs the real FastSAM forward (timed, counted) but answers with planted boxes."""

    def __init__(self, sam, planted: dict):
        self.sam, self.planted = sam, planted

    @property
    def forward_passes(self):
        return self.sam.forward_passes

    def segment(self, images, imgsz=1024, conf=0.05, iou=0.5, max_det=300, batch_size=None):
        self.sam.segment(images, imgsz=imgsz, conf=conf, iou=iou, max_det=max_det,
                         batch_size=batch_size)
        return [np.asarray(self.planted[id(im)], dtype=np.float32) for im in images]


def make_pairs(n: int, size=(320, 240), seed=0):
    """Three objects per scene; in image 2 the last one changes into a pear.  Planted boxes per
    image: the objects (image 2's grown by a pixel, as two FastSAM runs never agree exactly)
    plus one background patch."""
    rng = np.random.default_rng(seed)
    w, h = size
    pairs, planted = [], {}
    for _ in range(n):
        objs = []
        for k, (x, y) in enumerate([(10, 10), (w // 2 + 10, 10), (10, h // 2 + 10)]):
            s = int(rng.integers(50, 80))
            objs.append((NAMES[k], (x, y, x + s, y + s)))
        changed = objs[:2] + [("pear", objs[2][1])]
        img1, img2 = draw_scene(size, objs), draw_scene(size, changed)
        pairs.append(PairInput(img1, img2, caption(objs), caption(changed)))
        boxes = [[float(v) for v in b] for _, b in objs]
        planted[id(img1)] = boxes + [[w - 40.0, h - 30.0, float(w), float(h)]]
        planted[id(img2)] = [b[:2] + [b[2] + 1, b[3] + 1] for b in boxes] + [
            [w / 2 + 20, h / 2 + 20, w / 2 + 60, h / 2 + 60]]
    return pairs, planted


def baseline(pairs, clip, blip, segmenter, differ, p: DiffParams):
    """Data-Juicer's call pattern with batch 1 per crop and noun; returns boxes per pair."""
    out = []
    for pair in pairs:
        emb = clip.embed_images([pair.image1, pair.image2], batch_size=2).numpy()
        sim = float(emb[0] @ emb[1])
        if not p.min_score_1 <= sim <= p.max_score_1:
            out.append([])
            continue
        d = differ.diff(pair.caption1, pair.caption2)
        q1, q2 = d.queries(1, p.attribute_changes), d.queries(2, p.attribute_changes)
        b1 = segmenter.segment([pair.image1], imgsz=p.imgsz, conf=p.conf, iou=p.iou, batch_size=1)[0]
        b2 = segmenter.segment([pair.image2], imgsz=p.imgsz, conf=p.conf, iou=p.iou, batch_size=1)[0]
        b2 = scale_boxes(b2, pair.image2.size, pair.image1.size)
        boxes, keep = clamp_boxes(np.concatenate([b1, b2]), pair.image1.size)
        aligned = align_pair(pair.image1, pair.image2)
        kept, scores = [], []
        for box in boxes[keep]:
            c1, c2 = crop(pair.image1, box), crop(aligned, box)
            ok = True
            for c, qs in ((c1, q1), (c2, q2)):
                if qs and not any(p.itm_min_score <= float(blip.itm_scores([c], [q], batch_size=1)[0])
                                  <= p.itm_max_score for q in qs):
                    ok = False
                    break
            if not ok:
                continue
            e = clip.embed_images([c1, c2], batch_size=2).numpy()
            s = float(e[0] @ e[1])
            if p.min_score_2 <= s <= p.max_score_2:
                kept.append(box)
                scores.append(1.0 - s)
        order = nms(np.array(kept).reshape(-1, 4), scores, p.nms_iou_threshold) if kept else []
        out.append(sorted(tuple(round(v, 3) for v in kept[o]) for o in order))
    return out


def passes(models):
    return [m.forward_passes for m in models]


def same_boxes(a: list, b: list, tol: float = 1.5) -> bool:
    """Same number of boxes per pair, each within ``tol`` px of one in the other path: a
    candidate and its 1-px-grown twin tie in score up to float noise, which differs between
    batch sizes, so NMS may keep either."""
    for ra, rb in zip(a, b):
        if len(ra) != len(rb):
            return False
        for box in ra:
            if not any(max(abs(x - y) for x, y in zip(box, other)) <= tol for other in rb):
                return False
    return len(a) == len(b)


def timed(fn, models):
    before = passes(models)
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t, [x - y for x, y in zip(passes(models), before)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--sam", choices=["s", "x"], default="s")
    ap.add_argument("--imgsz", type=int, default=1024)
    ap.add_argument("--open", action="store_true", help="every candidate through every model")
    args = ap.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch

    t0 = time.perf_counter()
    clip, blip, sam = build_models(args.sam)
    differ = get_differ()
    pairs, planted = make_pairs(args.pairs)
    seg = PlantedBoxes(sam, planted)
    lo2, hi2 = (-2.0, 2.0) if args.open else (-1.0, 0.9999)
    p = DiffParams(min_score_1=-1.0, max_score_1=1.0, min_score_2=lo2, max_score_2=hi2,
                   imgsz=args.imgsz, itm_min_score=0.0, model_batch_size=32,
                   segment_batch_size=4)
    print(f"threads {torch.get_num_threads()}, models built in {time.perf_counter() - t0:.1f}s; "
          f"{args.pairs} pairs, FastSAM-{args.sam} imgsz {args.imgsz}, "
          f"{'open thresholds' if args.open else 'crop similarity <= 0.9999'}")
    # warm-up: first calls pay one-off allocation costs that neither path should carry
    warm = pairs[0]
    clip.embed_images([warm.image1])
    blip.itm_scores([warm.image1], ["an apple"])
    sam.segment([warm.image1], imgsz=args.imgsz)
    models = (clip, blip, seg)
    run_fused = lambda: DifferenceAreaFinder(clip, blip, seg, differ, p).run(pairs)  # noqa: E731
    run_base = lambda: baseline(pairs, clip, blip, seg, differ, p)  # noqa: E731

    # A B B A: each path runs twice, once early and once late, so a change in the machine's
    # load during the run weighs on both alike
    fused, tf1, n_fused = timed(run_fused, models)
    base, tb1, n_base = timed(run_base, models)
    _, tb2, _ = timed(run_base, models)
    _, tf2, _ = timed(run_fused, models)
    t_fused, t_base = tf1 + tf2, tb1 + tb2

    fused_boxes = [sorted(tuple(round(v, 3) for v in b) for b in r.bbox) for r in fused]
    same = same_boxes(fused_boxes, base)
    k = 2 * len(pairs)  # samples processed per path (two runs)
    print(f"{'':28s}{'CLIP':>7s}{'BLIP':>7s}{'FastSAM':>9s}{'total':>8s}{'samples/s':>11s}")
    for label, n, secs in (("fused, batched", n_fused, t_fused),
                           ("batch-1 per crop per noun", n_base, t_base)):
        per = [x / len(pairs) for x in n]
        print(f"{label:28s}{per[0]:7.1f}{per[1]:7.1f}{per[2]:9.1f}{sum(per):8.1f}{k / secs:11.4f}")
    print(f"forward passes per sample: {sum(n_base) / max(sum(n_fused), 1):.1f}x fewer; "
          f"speed-up {t_base / t_fused:.2f}x (baseline {tb1:.1f}+{tb2:.1f}s, "
          f"fused {tf1:.1f}+{tf2:.1f}s)")
    print(f"boxes per pair: {[len(b) for b in fused_boxes]}; same boxes in both paths: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
