"""Real photos that packages ship (matplotlib's Grace Hopper, scikit-image's astronaut, coffee
and cat), small copies written once per session, plus a composite with two faces and a file
that is not an image."""
import pytest
from PIL import Image

SIDE = 256     # long side of the copies: faces stay detectable, tests stay fast


def _small(img: Image.Image) -> Image.Image:
    img = img.convert("RGB")
    img.thumbnail((SIDE, SIDE), Image.LANCZOS)
    return img


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """name -> path: grace_hopper.jpg (one face), astronaut.png (one face), coffee.jpg and
    chelsea.png (none), two_faces.png (Grace Hopper twice, side by side), broken.jpg."""
    import matplotlib.cbook
    import skimage.data
    root = tmp_path_factory.mktemp("photos")
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        grace = _small(im)
    pics = {"grace_hopper.jpg": grace,
            "astronaut.png": _small(Image.fromarray(skimage.data.astronaut())),
            "coffee.jpg": _small(Image.fromarray(skimage.data.coffee())),
            "chelsea.png": _small(Image.fromarray(skimage.data.chelsea()))}
    two = Image.new("RGB", (grace.width * 2, grace.height))
    two.paste(grace, (0, 0))
    two.paste(grace.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (grace.width, 0))
    pics["two_faces.png"] = two
    out = {}
    for name, img in pics.items():
        img.save(root / name, quality=95) if name.endswith(".jpg") else img.save(root / name)
        out[name] = str(root / name)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG at all")
    out["broken.jpg"] = str(root / "broken.jpg")
    return out


def batch_of_rows(rows):
    """Storage-form batch for ``op.run_batched`` (ids 0..n-1, empty stats / meta)."""
    from ops.fields import Fields
    cols = {c: [r.get(c) for r in rows] for c in {k for r in rows for k in r}}
    cols[Fields.id] = [str(i) for i in range(len(rows))]
    cols[Fields.stats] = ["{}"] * len(rows)
    cols[Fields.meta] = ["{}"] * len(rows)
    return cols


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    from tests.ops.tiny_models import build_clip
    return build_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def tiny_captioner(tmp_path_factory):
    from tests.ops.tiny_models import build_blip_captioner
    return build_blip_captioner(tmp_path_factory.mktemp("tiny_blip_caption"))


@pytest.fixture(scope="session")
def tiny_yolo(tmp_path_factory):
    from tests.ops.tiny_models import build_yolo
    return build_yolo(tmp_path_factory.mktemp("tiny_yolo"))
