"""Same photos through Data-Juicer's image ops and ours: the stats and written pixels must agree.

    python tools/bench/dj_image_ops_parity.py [--dj-venv ~/.cache/imgjuicer-djvenv]

Data-Juicer runs from its own venv (created on first use as the header-filter benchmark does:
``py-data-juicer`` plus this venv's packages through a ``.pth`` file).  Photos: matplotlib's
Grace Hopper, scikit-image's astronaut / coffee / cat, and a two-face composite.  Compared:
``face_counts`` and ``face_ratios`` (exact), and the pixels ``image_blur_mapper`` (p=1) and
``image_face_blur_mapper`` write (PNG, exact), and which samples ``image_deduplicator`` keeps
for each perceptual hash (re-encoded, lossless and byte-identical copies, a mirrored image;
Data-Juicer's side needs ``imagededup`` in its venv); with the tests' tiny models (random
weights, built from configs): ``image_text_similarity`` of texts in Data-Juicer's chunk format
and the boxes / class labels of ``image_detection_yolo_mapper``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ops import OPERATORS
from ops.base import RunContext, batch_of
from ops.fields import Fields

DJ_SIDE = r"""
import json, sys
from data_juicer.ops.filter.image_face_count_filter import ImageFaceCountFilter
from data_juicer.ops.filter.image_face_ratio_filter import ImageFaceRatioFilter
from data_juicer.ops.mapper.image_blur_mapper import ImageBlurMapper
from data_juicer.ops.mapper.image_face_blur_mapper import ImageFaceBlurMapper
paths, out_dir = json.loads(sys.argv[1]), sys.argv[2]
res = {}
for name, op, key in (("face_counts", ImageFaceCountFilter(), "face_counts"),
                      ("face_ratios", ImageFaceRatioFilter(), "face_ratios")):
    res[name] = [list(map(float, op.compute_stats_single(
        {"images": [p], "__dj__stats__": {}})["__dj__stats__"][key])) for p in paths]
for name, op in (("blur", ImageBlurMapper(p=1.0, save_dir=out_dir + "/blur")),
                 ("face_blur", ImageFaceBlurMapper(save_dir=out_dir + "/face_blur"))):
    res[name] = [op.process_single({"images": [p]})["images"][0] for p in paths]
from datasets import Dataset
from data_juicer.ops.deduplicator.image_deduplicator import ImageDeduplicator
dups = json.loads(sys.argv[3])
for method in ("phash", "dhash", "whash", "ahash"):
    op = ImageDeduplicator(method=method)
    ds = Dataset.from_list([{"images": [p], "text": str(i), "__dj__stats__": {"x": 0}}
                            for i, p in enumerate(dups)]).map(op.compute_hash)
    kept, _ = op.process(ds)
    res["dedup_" + method] = sorted(int(t) for t in kept["text"])
from data_juicer.ops.filter.image_text_similarity_filter import ImageTextSimilarityFilter
from data_juicer.ops.mapper.image_detection_yolo_mapper import ImageDetectionYoloMapper
clip_dir, yolo_file, squares, texts = sys.argv[4], sys.argv[5], json.loads(sys.argv[6]), json.loads(sys.argv[7])
op = ImageTextSimilarityFilter(hf_clip=clip_dir, min_score=-1.0, reduce_mode="avg")
res["clip"] = [op.compute_stats_single({"images": squares, "text": t, "__dj__stats__": {}})
               ["__dj__stats__"]["image_text_similarity"] for t in texts]
op = ImageDetectionYoloMapper(model_path=yolo_file, imgsz=128)
res["yolo"] = []
for p in squares:
    meta = op.process_single({"images": [p], "__dj__meta__": {}})["__dj__meta__"]
    res["yolo"].append([[list(map(float, b)) for b in meta["__dj__bbox__"][0]],
                        list(map(int, meta["__dj__class_label__"][0]))])
print(json.dumps(res))
"""


def photos(root: Path) -> list[str]:
    import matplotlib.cbook
    import skimage.data
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        grace = im.convert("RGB")
    pics = {"grace_hopper": grace, "astronaut": Image.fromarray(skimage.data.astronaut()),
            "coffee": Image.fromarray(skimage.data.coffee()),
            "chelsea": Image.fromarray(skimage.data.chelsea())}
    two = Image.new("RGB", (grace.width * 2, grace.height))
    two.paste(grace, (0, 0))
    two.paste(grace.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (grace.width, 0))
    pics["two_faces"] = two
    out = []
    for name, img in pics.items():
        img.save(root / f"{name}.png")
        out.append(str(root / f"{name}.png"))
    return out


def duplicates(root: Path, paths: list[str]) -> list[str]:
    """Copies of the photos: JPEG q60, lossless WebP, byte copy, mirrored."""
    import shutil
    astro, coffee = Image.open(paths[1]), paths[2]
    astro.save(root / "astronaut_q60.jpg", quality=60)
    astro.save(root / "astronaut_lossless.webp", lossless=True)
    astro.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "astronaut_flipped.png")
    shutil.copy(coffee, root / "coffee_copy.png")
    return [paths[1], str(root / "astronaut_q60.jpg"), str(root / "astronaut_lossless.webp"),
            coffee, str(root / "coffee_copy.png"), paths[3], str(root / "astronaut_flipped.png")]


def our_dedup(dups: list[str], method: str) -> list[int]:
    op = OPERATORS.get("image_deduplicator")(method=method)
    rows = [{"images": [p], Fields.id: str(i), Fields.stats: {}, Fields.meta: {}}
            for i, p in enumerate(dups)]
    hashed = op.run_batched(batch_of(rows))
    keep, _ = op.run_group({Fields.id: hashed[Fields.id], Fields.meta: hashed[Fields.meta]})
    return [i for i, k in enumerate(keep) if k]


IMG, EOC = "<__dj__image>", "<|__dj__eoc|>"
TEXTS = [f"{IMG} an astronaut {EOC} {IMG}{IMG} a cup of coffee and a cat {EOC}",
         f"{IMG}{IMG}{IMG} three photos {EOC}", f"{IMG} a woman {EOC}"]


def squares(root: Path, paths: list[str]) -> list[str]:
    """128 px squares (the inference size: no letterbox padding on either side)."""
    out = []
    for p in paths[1:4]:
        q = root / f"square_{Path(p).stem}.png"
        Image.open(p).convert("RGB").resize((128, 128), Image.LANCZOS).save(q)
        out.append(str(q))
    return out


def our_models(clip_dir: str, yolo_file: str, sq: list[str]) -> dict:
    rows = [{"images": sq, "text": t, Fields.id: str(i), Fields.stats: {}, Fields.meta: {}}
            for i, t in enumerate(TEXTS)]
    op = OPERATORS.get("image_text_similarity_filter")(hf_clip=clip_dir, min_score=-1.0)
    out = op.run_batched(batch_of(rows))
    clip = [json.loads(s)["image_text_similarity"] for s in out[Fields.stats]]
    op = OPERATORS.get("image_detection_yolo_mapper")(model_path=yolo_file, imgsz=128)
    rows = [{"images": [p], Fields.id: str(i), Fields.stats: {}, Fields.meta: {}}
            for i, p in enumerate(sq)]
    metas = [json.loads(m) for m in op.run_batched(batch_of(rows))[Fields.meta]]
    yolo = [[m["__dj__bbox__"][0], m["__dj__class_label__"][0]] for m in metas]
    return {"clip": clip, "yolo": yolo}


def same_detections(a, b, tol=0.02) -> bool:
    """Same boxes and labels, in any order among equal scores."""
    (boxes_a, labels_a), (boxes_b, labels_b) = a, b
    rows_a = [tuple(x) + (c,) for x, c in zip(boxes_a, labels_a)]
    free = [tuple(x) + (c,) for x, c in zip(boxes_b, labels_b)]
    for r in rows_a:
        hit = next((f for f in free if f[4] == r[4] and
                    all(abs(u - v) <= tol for u, v in zip(f[:4], r[:4]))), None)
        if hit is None:
            return False
        free.remove(hit)
    return not free


def ours(paths: list[str], work: Path) -> dict:
    def run(name, **kw):
        op = OPERATORS.get(name)(**kw).bind(RunContext(work_dir=str(work)))
        rows = [{"images": [p], Fields.id: str(i), Fields.stats: {}, Fields.meta: {}}
                for i, p in enumerate(paths)]
        return op.run_batched(batch_of(rows))
    res = {}
    for name, key in (("image_face_count_filter", "face_counts"),
                      ("image_face_ratio_filter", "face_ratios")):
        out = run(name)
        res[key] = [list(map(float, json.loads(s)[key])) for s in out[Fields.stats]]
    res["blur"] = [v[0] for v in run("image_blur_mapper", p=1.0)["images"]]
    res["face_blur"] = [v[0] for v in run("image_face_blur_mapper")["images"]]
    return res


def same_pixels(a: str, b: str) -> bool:
    return np.array_equal(np.asarray(Image.open(a).convert("RGB")),
                          np.asarray(Image.open(b).convert("RGB")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dj-venv", type=Path, default=Path.home() / ".cache" / "imgjuicer-djvenv")
    args = ap.parse_args(argv)
    from bench_header_filters import ensure_dj_venv     # this folder: sys.path[0]
    venv = ensure_dj_venv(args.dj_venv)
    py = str(venv / "bin" / "python")
    if subprocess.run([py, "-c", "import imagededup"], capture_output=True).returncode:
        subprocess.run([py, "-m", "pip", "install", "-q", "imagededup"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = photos(root)
        dups = duplicates(root, paths)
        sq = squares(root, paths)
        from tests.ops.tiny_models import build_clip, build_yolo
        clip_dir, yolo_file = build_clip(root / "models"), build_yolo(root / "models")
        dj = subprocess.run([py, "-c", DJ_SIDE, json.dumps(paths), str(root / "dj"),
                             json.dumps(dups), clip_dir, yolo_file, json.dumps(sq),
                             json.dumps(TEXTS)], capture_output=True, text=True)
        if dj.returncode:
            raise SystemExit(f"Data-Juicer side failed:\n{dj.stderr[-3000:]}")
        theirs = json.loads(dj.stdout.strip().splitlines()[-1])
        mine = ours(paths, root / "ours")
        rows, ok = [], True
        for i, p in enumerate(paths):
            name = Path(p).stem
            checks = {
                "face_counts": mine["face_counts"][i] == theirs["face_counts"][i],
                "face_ratios": np.allclose(mine["face_ratios"][i], theirs["face_ratios"][i],
                                           rtol=0, atol=1e-12),
                "blur pixels": same_pixels(mine["blur"][i], theirs["blur"][i]),
                "face blur pixels": same_pixels(mine["face_blur"][i], theirs["face_blur"][i]),
            }
            ok &= all(checks.values())
            rows.append((name, mine["face_counts"][i], theirs["face_counts"][i],
                         ", ".join(k for k, v in checks.items() if not v) or "all equal"))
        names = [Path(p).name for p in dups]
        kept = {m: (our_dedup(dups, m), theirs["dedup_" + m])
                for m in ("phash", "dhash", "whash", "ahash")}
        models = our_models(clip_dir, yolo_file, sq)
    print("| photo | face_counts (ours) | face_counts (Data-Juicer) | differences |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    print("\n| image_deduplicator method | kept (ours) | kept (Data-Juicer) |")
    print("|---|---|---|")
    for method, (a, b) in kept.items():
        ok &= a == b
        print(f"| {method} | {', '.join(names[i] for i in a)} | "
              f"{', '.join(names[i] for i in b)} |")
    print("\n| image_text_similarity (tiny CLIP) | ours | Data-Juicer |")
    print("|---|---|---|")
    for text, a, b in zip(TEXTS, models["clip"], theirs["clip"]):
        ok &= len(a) == len(b) and np.allclose(a, b, atol=1e-5)
        shown = text.replace(IMG, "<img>").replace(EOC, "<eoc>")
        print(f"| `{shown}` | {[round(v, 5) for v in a]} | {[round(v, 5) for v in b]} |")
    print("\n| image_detection_yolo_mapper (tiny YOLO11) | boxes (ours) | boxes (Data-Juicer) | "
          "same boxes and labels |")
    print("|---|---|---|---|")
    for p, a, b in zip(sq, models["yolo"], theirs["yolo"]):
        same = same_detections(a, b)
        ok &= same
        print(f"| {Path(p).stem} | {len(a[0])} | {len(b[0])} | {'yes' if same else 'NO'} |")
    print("parity: " + ("all equal" if ok else "DIFFERENCES"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
