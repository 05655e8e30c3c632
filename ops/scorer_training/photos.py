"""Fetch and prepare the generation-loss scorer's source photos (Debian wallpapers + wheel samples).

Sources, and only these (so evaluation elsewhere stays honest):
  * Debian wallpaper packages, fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``;
  * the sample photos inside the scikit-image, scikit-learn and matplotlib wheels
    (``pip download --no-deps``; the wheels are zip files, read without installing).
Every photo is reduced by an integer factor >= 2 with an area (box) filter so that its own
compression artifacts are averaged away, and written as PNG.  The split is by photo and
deterministic: a photo is held out when sha256(its group key) falls in the lowest
``--heldout-percent`` percent.  Photos are first clustered: a group key names the picture,
not the file (the several resolutions a package ships of one wallpaper share it), and pictures
whose perceptual hashes come within 10 bits (colour variants of one design) join one cluster,
split together.  Flat graphics (fewer than 5% of 8x8 blocks with luma entropy > 200) are
dropped: they carry nothing to learn artifacts from.

Only photographs are kept: the scorer is trained on the high-resolution photos in Debian's
wallpaper packages plus the sample photos inside the wheels, nothing else.  The packages
also ship renders, vector art, illustrations, logos and synthetic test images; ``NOT_PHOTOS``
names each of them with what it is.  The list was made by looking at every image the
sources hold (``--contact-sheet`` draws them all, labelled, for such a review).  Camera
captures count as photos whatever their subject: microscopy (cell, ihc), a fundus image
(retina), the moon, a photographed painting (Elephants), a motion-blurred shot
(clock_motion).  Every picture left out (not a photo, flat, too small, unreadable) is
listed with its reason in excluded.json next to the manifest.

    .venv/bin/python tools/prepare_scorer_photos.py --out data/scorer/photos
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ops.image.phash import group_by_hamming, image_hashes
from ops.scorer.features import block_entropy, luma

from . import REPO

PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds", "lomiri-wallpapers-16.04",
            "lxqt-themes")
WHEELS = ("scikit-image", "scikit-learn", "matplotlib")
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")
MIN_SOURCE_SIDE = 256          # short side of the original, before reduction
MAX_LONG_SIDE = 1024           # long side after reduction
MIN_TEXTURED = 0.05            # share of blocks that must have some texture
PHOTOS_VERSION = 2             # bump when the selection changes (2: photographs only)
# Images of the sources that are not photographs (group key -> what they are); see the
# module docstring.  A key not found in the sources is an error (the list must stay true).
NOT_PHOTOS = {
    "lxqt-themes:kde-plasma": "render", "lxqt-themes:plasma-logo-bright": "render with logo",
    "lxqt-themes:plasma_arch": "render with logo", "lxqt-themes:triangles": "low-poly render",
    "lxqt-themes:waves-purple-logo": "render with logo",
    "mate-backgrounds:Flow": "vector art", "mate-backgrounds:Float-into-MATE": "render",
    "mate-backgrounds:GreenTraditional": "logo", "mate-backgrounds:Gulp": "noise gradient",
    "mate-backgrounds:Stripes": "render",
    "mate-backgrounds:Ubuntu-Mate-Cold-no-logo": "blurred render",
    "mate-backgrounds:Ubuntu-Mate-Dark-no-logo": "blurred render",
    "mate-backgrounds:Ubuntu-Mate-Radioactive-no-logo": "blurred render",
    "mate-backgrounds:Ubuntu-Mate-Warm-no-logo": "blurred render",
    "plasma-workspace-wallpapers:Altai": "low-poly illustration",
    "plasma-workspace-wallpapers:Autumn": "illustration",
    "plasma-workspace-wallpapers:Canopee": "render",
    "plasma-workspace-wallpapers:Cascade": "render",
    "plasma-workspace-wallpapers:Cluster": "render",
    "plasma-workspace-wallpapers:Flow": "vector art",
    "plasma-workspace-wallpapers:FlyingKonqui": "illustration",
    "plasma-workspace-wallpapers:Honeywave": "vector art",
    "plasma-workspace-wallpapers:IceCold": "render",
    "plasma-workspace-wallpapers:Kay": "vector art",
    "plasma-workspace-wallpapers:Kokkini": "render",
    "plasma-workspace-wallpapers:MilkyWay": "render",
    "plasma-workspace-wallpapers:Opal": "render",
    "plasma-workspace-wallpapers:PastelHills": "render",
    "plasma-workspace-wallpapers:Patak": "render",
    "plasma-workspace-wallpapers:SafeLanding": "illustration",
    "plasma-workspace-wallpapers:Shell": "render",
    "plasma-workspace-wallpapers:Volna": "render",
    "scikit_image:color": "synthetic colour wheel", "scikit_image:horse": "binary silhouette",
    "scikit_image:logo": "logo", "scikit_image:phantom": "synthetic test image",
}


def run(args: list[str], cwd: Path) -> None:
    """Run a command (argument list), raising with its stderr when it fails."""
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")


def fetch_debs(cache: Path, packages) -> list[Path]:
    """apt-get download each package into the cache (skipped when already there)."""
    debs = []
    for pkg in packages:
        found = sorted(cache.glob(f"{pkg}_*.deb"))
        if not found:
            run(["apt-get", "download", pkg], cwd=cache)
            found = sorted(cache.glob(f"{pkg}_*.deb"))
        if not found:
            raise RuntimeError(f"apt-get download {pkg} produced no .deb in {cache}")
        debs.append(found[-1])
    return debs


def locked_version(name: str) -> str | None:
    """The version requirements.lock pins for ``name`` (so every machine gets the same
    sample photos), or None when the lock does not list it."""
    lock = REPO / "requirements.lock"
    if lock.is_file():
        for line in lock.read_text().splitlines():
            pkg, sep, ver = line.strip().partition("==")
            if sep and pkg.lower().replace("_", "-") == name:
                return ver
    return None


def fetch_wheels(cache: Path, wheels) -> list[Path]:
    """pip download each wheel (no dependencies; the locked version) into the cache."""
    out = []
    for name in wheels:
        stem = name.replace("-", "_")
        ver = locked_version(name)
        pattern = f"{stem}-{ver}-*.whl" if ver else f"{stem}-*.whl"
        found = sorted(cache.glob(pattern))
        if not found:
            spec = f"{name}=={ver}" if ver else name
            run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "-d", str(cache), spec], cwd=cache)
            found = sorted(cache.glob(pattern))
        if not found:
            raise RuntimeError(f"pip download {name} produced no wheel in {cache}")
        out.append(found[-1])
    return out


def group_key(source: str, path: str) -> str:
    """Name of the picture a file shows (all resolutions of one wallpaper share it)."""
    p = Path(path)
    parts = p.parts
    if "wallpapers" in parts and "contents" in parts:          # KDE layout: <Name>/contents/...
        return f"{source}:{parts[parts.index('contents') - 1]}"
    stem = re.sub(r"[_-]?\d{3,5}x\d{3,5}$", "", p.stem)      # Elephants_3840x2160 -> Elephants
    return f"{source}:{stem}"


def deb_images(deb: Path, cache: Path):
    """Yield (source, path, bytes) for every image file a .deb unpacks."""
    root = cache / "x" / deb.stem
    if not root.exists():
        root.mkdir(parents=True)
        run(["dpkg-deb", "-x", str(deb), str(root)], cwd=cache)
    source = deb.name.split("_")[0]
    for f in sorted(root.rglob("*")):
        if f.suffix.lower() in IMAGE_EXT and f.is_file() and "screenshot" not in f.name:
            yield source, str(f.relative_to(root)), f.read_bytes()


def wheel_images(whl: Path):
    """Yield (source, path, bytes) for the sample images inside a wheel."""
    source = whl.name.split("-")[0]
    with zipfile.ZipFile(whl) as z:
        for name in sorted(z.namelist()):
            if Path(name).suffix.lower() in IMAGE_EXT and ("data" in name or "images" in name):
                yield source, name, z.read(name)


def reduce_photo(data: bytes) -> Image.Image | None:
    """Decode and reduce by an integer factor >= 2 (area filter); None when too small."""
    img = Image.open(io.BytesIO(data))
    img.load()
    if min(img.size) < MIN_SOURCE_SIDE:
        return None
    img = img.convert("RGB")
    factor = max(2, -(-max(img.size) // MAX_LONG_SIDE))
    return img.reduce(factor)


def is_heldout(key: str, percent: int) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100 < percent


def prepare(out: Path, cache: Path, heldout_percent: int = 20,
            contact_sheet: Path | None = None) -> dict:
    """Fetch everything, keep the largest file per picture and only photographs, write
    train/ and heldout/ PNGs (and, when asked, a contact sheet of every candidate)."""
    cache.mkdir(parents=True, exist_ok=True)
    items = []
    for deb in fetch_debs(cache, PACKAGES):
        items.extend(deb_images(deb, cache))
    for whl in fetch_wheels(cache, WHEELS):
        items.extend(wheel_images(whl))
    return write_photos(items, out, heldout_percent, contact_sheet)


def write_photos(items, out: Path, heldout_percent: int = 20,
                 contact_sheet: Path | None = None, not_photos: dict | None = None) -> dict:
    """From (source, path, bytes) items: the largest file per picture, reduced, without the
    ``not_photos`` (default ``NOT_PHOTOS``; every key must be among the items) and flat
    images, split by cluster into ``out``/train and ``out``/heldout, with manifest.json,
    excluded.json (each dropped picture and why) and version.txt."""
    not_photos = NOT_PHOTOS if not_photos is None else not_photos
    best: dict[str, tuple] = {}
    excluded = []
    for source, path, data in items:
        key = group_key(source, path)
        try:
            with Image.open(io.BytesIO(data)) as im:
                area = im.size[0] * im.size[1]
        except Exception as exc:  # a broken file in a package is skipped and reported
            print(f"skip {source}:{path}: {exc}", file=sys.stderr)
            excluded.append({"key": key, "source": source, "path": path,
                             "reason": f"unreadable: {type(exc).__name__}: {exc}"})
            continue
        if key not in best or area > best[key][0]:
            best[key] = (area, source, path, data)
    unknown = sorted(set(not_photos) - set(best))
    if unknown:
        raise RuntimeError(f"NOT_PHOTOS names images the sources do not hold: {unknown}")
    photos, candidates = {}, {}
    for key in sorted(best):
        img = reduce_photo(best[key][3])
        if img is None:
            excluded.append({"key": key, "source": best[key][1], "path": best[key][2],
                             "reason": f"too small: short side < {MIN_SOURCE_SIDE} px"})
            continue
        candidates[key] = img
        if key in not_photos:
            excluded.append({"key": key, "source": best[key][1], "path": best[key][2],
                             "reason": f"not a photo: {not_photos[key]}"})
            continue
        textured = float(np.mean(block_entropy(luma(np.asarray(img))) > 200))
        if textured < MIN_TEXTURED:
            print(f"skip {key}: flat ({textured:.0%} textured blocks)", file=sys.stderr)
            excluded.append({"key": key, "source": best[key][1], "path": best[key][2],
                             "reason": f"flat: {textured:.0%} textured blocks"})
            continue
        photos[key] = img
    if contact_sheet is not None:
        draw_contact_sheet(candidates, contact_sheet, not_photos)
    keys = sorted(photos)
    groups = group_by_hamming([image_hashes(photos[k]) for k in keys], threshold=10)
    manifest = []
    for split in ("train", "heldout"):
        (out / split).mkdir(parents=True, exist_ok=True)
        for old in (out / split).glob("*.png"):
            old.unlink()
    for key, g in zip(keys, groups):
        _, source, path, _ = best[key]
        img = photos[key]
        split = "heldout" if is_heldout(keys[g], heldout_percent) else "train"
        slug = re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_")
        dest = out / split / f"{slug}.png"
        img.save(dest, optimize=False, compress_level=3)
        manifest.append({"key": key, "cluster": keys[g], "source": source, "path": path,
                         "split": split, "file": str(dest.relative_to(out)),
                         "size": list(img.size)})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (out / "excluded.json").write_text(json.dumps(excluded, indent=1))
    (out / "version.txt").write_text(f"{PHOTOS_VERSION}\n")
    counts = {s: sum(m["split"] == s for m in manifest) for s in ("train", "heldout")}
    return {"photos": len(manifest), **counts, "excluded": len(excluded), "out": str(out)}


def is_current(out: Path) -> bool:
    """True when ``out`` holds photos prepared by this version of the selection."""
    v = out / "version.txt"
    return ((out / "manifest.json").is_file() and v.is_file()
            and v.read_text().strip() == str(PHOTOS_VERSION))


def draw_contact_sheet(images: dict, path: Path, not_photos: dict, cols: int = 8,
                       cell: tuple = (200, 150)) -> None:
    """Every candidate image as a labelled thumbnail on one PNG (keys in sorted order; a
    label starts with "x" when ``not_photos`` excludes it), for reviewing the photo list."""
    from PIL import ImageDraw
    keys = sorted(images)
    tw, th = cell
    rows = max(1, -(-len(keys) // cols))
    sheet = Image.new("RGB", (cols * tw, rows * (th + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, key in enumerate(keys):
        thumb = images[key].copy()
        thumb.thumbnail((tw - 4, th - 4))
        x, y = (i % cols) * tw, (i // cols) * (th + 14)
        sheet.paste(thumb, (x + 2, y + 2))
        label = ("x " if key in not_photos else "") + key.split(":", 1)[1]
        draw.text((x + 2, y + th), label[:32], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/scorer/photos")
    ap.add_argument("--cache", default="data/scorer/cache")
    ap.add_argument("--heldout-percent", type=int, default=20)
    ap.add_argument("--contact-sheet", help="also draw every candidate image, labelled, "
                    "into this PNG (to review NOT_PHOTOS)")
    ap.add_argument("--if-stale", action="store_true",
                    help="do nothing when --out already holds this version's photos")
    a = ap.parse_args(argv)
    if a.if_stale and is_current(Path(a.out)):
        print(json.dumps({"up_to_date": a.out, "version": PHOTOS_VERSION}))
        return 0
    sheet = Path(a.contact_sheet) if a.contact_sheet else None
    print(json.dumps(prepare(Path(a.out), Path(a.cache).resolve(), a.heldout_percent, sheet)))
    return 0
