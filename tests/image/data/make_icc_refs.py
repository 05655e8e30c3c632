"""Make the ICC-tagged SSIMULACRA2 reference pairs in icc/ and score them with the reference
C++ tool (cloudinary/ssimulacra2, built outside this repo; it converts tagged images to linear
sRGB with littleCMS before scoring):

    python tests/image/data/make_icc_refs.py /path/to/ssimulacra2

Sources: a crop of scikit-image's astronaut, its colours written as Display P3 and Adobe RGB
numbers with the matching profile (plus a red outside sRGB); copies: JPEG q70, WebP q70 and
AVIF q50 encodes that keep the profile.  Stored as lossless WebP with the profile; the tool
reads PNGs of the same pixels and profile.
"""
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ops.image.codecs import encode
from tests.image.test_colour import SPACES, from_srgb, icc

HERE = Path(__file__).resolve().parent
COPIES = [("jpeg", 70), ("webp", 70), ("avif", 50)]
CROP = (160, 40, 192, 160)       # x, y, w, h of skimage.data.astronaut()


def main(tool: str) -> None:
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
                out = subprocess.run([tool, str(Path(tmp) / "src.png"), str(Path(tmp) / "dis.png")],
                                     capture_output=True, text=True, check=True)
                pairs.append({"space": space, "source": src, "copy": name,
                              "cxx": float(out.stdout.split()[-1])})
    doc = {"tool": "cloudinary/ssimulacra2 commit 81feacf (C++ reference; libhwy 1.0.3, "
                   "lcms2 2.14), `ssimulacra2 src.png dis.png` on PNGs of the stored pixels "
                   "with the same embedded profile",
           "target": 0.02, "tolerance": 0.02, "pairs": pairs,
           "tolerance_doc": "the test asserts agreement within the target"}
    (HERE / "icc_reference.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(pairs, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
