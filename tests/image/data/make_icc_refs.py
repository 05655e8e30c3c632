"""Make the ICC-tagged SSIMULACRA2 reference pairs in icc/ and score them with the reference
C++ tool (cloudinary/ssimulacra2, built outside this repo; it converts tagged images to linear
sRGB with littleCMS before scoring):

    python tests/image/data/make_icc_refs.py /path/to/ssimulacra2 [/usr/bin/butteraugli_main]

With the second argument (Debian's libjxl-devtools 0.7 ships butteraugli_main) every pair is
also scored by libjxl's Butteraugli tool (max-norm and 3-norm; it converts tagged images to
linear sRGB with the same libjxl code as the SSIMULACRA2 tool).

Sources: a crop of scikit-image's astronaut, its colours written as Display P3 and Adobe RGB
numbers with the matching profile (plus a red outside sRGB); copies: JPEG q70, WebP q70 and
AVIF q50 encodes that keep the profile.  Stored as lossless WebP with the profile; the tool
reads PNGs of the same pixels and profile.  Then the plain sRGB crop and its JPEG q70 copy
(stored untagged), scored with each of the sRGB-like profiles of ``SRGB_LIKE`` (built in
tests/image/test_colour.py) embedded in both, and untagged: the tool reads some of those
profiles as sRGB and some not.
"""
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from ops.image.codecs import encode
from tests.image.test_colour import SPACES, SRGB_LIKE, from_srgb, icc

HERE = Path(__file__).resolve().parent
COPIES = [("jpeg", 70), ("webp", 70), ("avif", 50)]
CROP = (160, 40, 192, 160)       # x, y, w, h of skimage.data.astronaut()
DOC = ("measured 2026-12-07: converting into the tool's own linear-sRGB profile (libjxl's "
       "colorants) and reading a profile as sRGB by the tool's rule, our linear planes are "
       "bit-identical to the tool's and every score agrees within 1e-8 (converting into "
       "littleCMS's linear-sRGB profile instead was 0.019-0.069 off); reading the numbers as "
       "sRGB is 1.2-2.2 off")


def scores(tmp: str, tool: str, butteraugli: Optional[str]) -> dict:
    """The reference tools' scores of tmp/src.png against tmp/dis.png."""
    pngs = [str(Path(tmp) / "src.png"), str(Path(tmp) / "dis.png")]
    out = {"cxx": float(subprocess.run([tool, *pngs], capture_output=True, text=True,
                                       check=True).stdout.split()[-1])}
    if butteraugli:
        lines = subprocess.run([butteraugli, *pngs], capture_output=True, text=True,
                               check=True).stdout.splitlines()
        out["butteraugli_main"] = {"max": float(lines[0]),
                                   "p3": float(lines[1].split(":")[1])}
    return out


def main(tool: str, butteraugli: Optional[str] = None) -> None:
    import skimage.data
    x, y, w, h = CROP
    photo = skimage.data.astronaut()[y:y + h, x:x + w]
    (HERE / "icc").mkdir(exist_ok=True)
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        for space in SPACES:
            profile = icc(space)
            numbers = from_srgb(photo, space)
            numbers[4:24, 4:44] = (250, 30, 25)
            src = f"icc/astronaut_{space}.webp"
            Image.fromarray(numbers).save(HERE / src, lossless=True, icc_profile=profile)
            Image.fromarray(numbers).save(Path(tmp) / "src.png", icc_profile=profile)
            for fmt, q in COPIES:
                enc = encode(numbers, fmt, icc_profile=profile, quality=q)
                with Image.open(io.BytesIO(enc.data)) as im:
                    copy = np.asarray(im.convert("RGB"))
                name = f"icc/astronaut_{space}_{fmt}{q}.webp"
                Image.fromarray(copy).save(HERE / name, lossless=True, icc_profile=profile)
                Image.fromarray(copy).save(Path(tmp) / "dis.png", icc_profile=profile)
                pairs.append({"space": space, "source": src, "copy": name,
                              **scores(tmp, tool, butteraugli)})
        jpeg = encode(photo, "jpeg", quality=70)
        with Image.open(io.BytesIO(jpeg.data)) as im:
            copy = np.asarray(im.convert("RGB"))
        src, name = "icc/astronaut_srgb.webp", "icc/astronaut_srgb_jpeg70.webp"
        Image.fromarray(photo).save(HERE / src, lossless=True)
        Image.fromarray(copy).save(HERE / name, lossless=True)
        for kind in [None, *SRGB_LIKE]:
            profile = SRGB_LIKE[kind]() if kind else None
            kw = {"icc_profile": profile} if profile else {}
            Image.fromarray(photo).save(Path(tmp) / "src.png", **kw)
            Image.fromarray(copy).save(Path(tmp) / "dis.png", **kw)
            pairs.append({"space": "srgb", "profile": kind, "source": src, "copy": name,
                          **scores(tmp, tool, butteraugli)})
    doc = {"tool": "cloudinary/ssimulacra2 commit 81feacf (C++ reference; libhwy 1.0.3, "
                   "lcms2 2.14), `ssimulacra2 src.png dis.png` on PNGs of the stored pixels "
                   "with the same embedded profile; butteraugli_main: Debian libjxl-devtools "
                   "0.7.0 (hf_asymmetry 0.8, intensity target 80)",
           "target": 0.02, "tolerance": 0.02, "pairs": pairs,
           "tolerance_doc": DOC}
    (HERE / "icc_reference.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(pairs, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
