"""Regenerate the Butteraugli reference pairs and scores in this folder (not run by tests).

The pairs are stored as PNG so the scores stay tied to exact pixels whatever encoder
versions are installed.  Scores come from libjxl itself, outside this repository:

  butteraugli_main  libjxl v0.7.0 tools/butteraugli_main built from source (it hard-codes
                    hf_asymmetry 0.8; intensity target 80)
  ba_ref            a 60-line C program calling libjxl's C API (JxlButteraugliCompute) of the
                    Debian libjxl0.7 package: hf_asymmetry 1.0, intensity target 80, raw distmap
  ba011 (optional)  a C++ program calling ButteraugliInterface of libjxl v0.11.2 sources on
                    linear sRGB (hf_asymmetry 1.0, intensity target 80), writing the distmap:
                    the current libjxl, whose Butteraugli drifted slightly from 0.7's

usage: python make_butteraugli_refs.py /path/to/butteraugli_main /path/to/ba_ref [/path/to/ba011]
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SIZE = (96, 72)


def sources() -> dict:
    astro = Image.open(REPO / "data/demo/photos/astronaut.png").convert("RGB")
    box = (200, 90, 200 + 2 * SIZE[0], 90 + 2 * SIZE[1])
    photo = astro.crop(box).resize(SIZE, Image.LANCZOS)
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:SIZE[1], 0:SIZE[0]]
    synth = np.stack([x * 255 / SIZE[0], y * 255 / SIZE[1], 128 + 100 * np.sin(x / 5.0)], -1)
    synth[(x - 40) ** 2 + (y - 30) ** 2 < 300] = (250, 30, 40)
    synth[:, 70:74] = 10
    synth = np.clip(synth + rng.normal(0, 3, synth.shape), 0, 255).astype(np.uint8)
    return {"photo": photo, "synth": Image.fromarray(synth)}


def pil_codec(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def distortions(img: Image.Image) -> dict:
    arr = np.asarray(img)
    rng = np.random.default_rng(3)
    jxl = imagecodecs.jpegxl_decode(imagecodecs.jpegxl_encode(arr, distance=3.0, effort=7))
    return {
        "jpeg_q20": pil_codec(img, "JPEG", quality=20),
        "jpeg_q90": pil_codec(img, "JPEG", quality=90),
        "webp_q50": pil_codec(img, "WEBP", quality=50),
        "avif_q40": pil_codec(img, "AVIF", quality=40, speed=6),
        "jxl_d3": Image.fromarray(jxl[:, :, :3]),
        "blur": img.filter(ImageFilter.GaussianBlur(1.0)),
        "downup": img.resize((SIZE[0] // 2, SIZE[1] // 2), Image.BILINEAR).resize(
            SIZE, Image.BICUBIC),
        "quantize32": img.quantize(32).convert("RGB"),
        "noise": Image.fromarray(
            np.clip(arr + rng.normal(0, 4, arr.shape), 0, 255).astype(np.uint8)),
    }


def pnorm3(dm: np.ndarray) -> float:
    """libjxl's ComputeDistanceP for p = 3: the mean of the 3-, 6- and 12-norms."""
    d = dm.astype(np.float64)
    return float(sum(np.mean(d ** q) ** (1 / q) for q in (3, 6, 12)) / 3)


def main(butteraugli_main: str, ba_ref: str, ba011: str = None) -> None:
    pairs = []
    for name, src in sources().items():
        src.save(HERE / f"ba_{name}.png")
        dists = distortions(src)
        if name == "synth":
            dists = {k: dists[k] for k in ("jpeg_q20", "avif_q40", "jxl_d3", "downup")}
        for dname, dimg in dists.items():
            dimg.save(HERE / f"ba_{name}_{dname}.png")
            pairs.append((f"ba_{name}.png", f"ba_{name}_{dname}.png"))
    refs = []
    with tempfile.TemporaryDirectory() as tmp:
        for ref, dis in pairs:
            out = subprocess.run([butteraugli_main, str(HERE / ref), str(HERE / dis)],
                                 capture_output=True, text=True, check=True).stdout.split("\n")
            tool_max, tool_p3 = float(out[0]), float(out[1].split(":")[1])
            ppm = []
            for i, f in enumerate((ref, dis)):
                p = Path(tmp) / f"{i}.ppm"
                Image.open(HERE / f).convert("RGB").save(p)
                ppm.append(str(p))
            dm_path = Path(tmp) / "dm.f32"
            out = subprocess.run([ba_ref, *ppm, "1.0", "80", str(dm_path)], capture_output=True,
                                 text=True, check=True).stdout.split()
            dm = np.fromfile(dm_path, dtype=np.float32).reshape(SIZE[1], SIZE[0])
            probe = [[int(v) for v in rc] for rc in np.random.default_rng(0).integers(
                0, [SIZE[1], SIZE[0]], (12, 2))]
            extra = {}
            if ba011:
                out11 = subprocess.run([ba011, *ppm, "1.0", "80", str(dm_path)],
                                       capture_output=True, text=True, check=True).stdout.split()
                dm11 = np.fromfile(dm_path, dtype=np.float32).reshape(SIZE[1], SIZE[0])
                extra["core_0.11"] = {"max": float(out11[1]), "p3": pnorm3(dm11),
                                      "hf_asymmetry": 1.0, "intensity_target": 80}
            refs.append({
                "reference": ref, "distorted": dis,
                "butteraugli_main_0.7": {"max": tool_max, "p3": tool_p3,
                                         "hf_asymmetry": 0.8, "intensity_target": 80},
                "c_api_0.7": {"max": float(out[1]), "p3": float(out[3]), "hf_asymmetry": 1.0,
                              "intensity_target": 80, "distmap_mean": float(dm.mean()),
                              "distmap_probe": [[r, c, float(dm[r, c])] for r, c in probe]},
                **extra,
            })
    (HERE / "butteraugli_refs.json").write_text(json.dumps(refs, indent=1) + "\n")
    print(f"{len(refs)} pairs written")


if __name__ == "__main__":
    main(*sys.argv[1:4])
