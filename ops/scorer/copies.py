"""One copy of a picture as group mode sees it: decoded pixels and what its file says about
how it is coded (JPEG tables and subsampling, palette, lossy WebP / AVIF)."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image


def turn_pixels(px: np.ndarray, t: int) -> np.ndarray:
    """Dihedral turn ``t`` in 0..7: ``t % 4`` quarter turns counter-clockwise (np.rot90),
    then a left-right mirror when ``t >= 4``."""
    out = np.rot90(px, t % 4)
    return np.ascontiguousarray(out[:, ::-1] if t >= 4 else out)


@dataclass
class Copy:
    """One copy: decoded pixels (as displayed) and what its file says about its coding."""

    name: str
    pixels: np.ndarray                     # (H, W, 3) uint8
    format: str
    qtables: list | None = None            # JPEG tables, as Pillow reads / writes them
    subsampling: int = -1                  # JPEG: 0 4:4:4, 1 4:2:2, 2 4:2:0
    palette: Image.Image | None = None     # palette image of GIF / P-mode copies
    lossless: bool = True                  # False for lossy WebP / AVIF / JPEG
    file_size: int = 0
    colors: int = 256                      # colours a palette copy uses
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def turned(self, t: int) -> np.ndarray:
        """The pixels under dihedral turn ``t`` (``turn_pixels``), cached."""
        if ("px", t) not in self._cache:
            self._cache["px", t] = turn_pixels(self.pixels, t)
        return self._cache["px", t]

    def turned_image(self, t: int, reduce: int = 1) -> Image.Image:
        """``turned(t)`` as a PIL image (``reduce``: shrunk by that integer factor with
        ``Image.reduce``, as area resamplers do first), cached."""
        key = ("img", t, reduce)
        if key not in self._cache:
            img = Image.fromarray(self.turned(t))
            self._cache[key] = img if reduce == 1 else img.reduce(reduce)
        return self._cache[key]

    def grey(self, t: int = 0) -> np.ndarray:
        """Luma of ``turned(t)`` as float32, cached."""
        if ("grey", t) not in self._cache:
            self._cache["grey", t] = np.asarray(self.turned_image(t).convert("L"), np.float32)
        return self._cache["grey", t]

    def digest(self) -> tuple:
        """Shape and CRC-32 of a sample of the pixels, cached (equal digests: compare all
        the pixels)."""
        import zlib
        return self.memo("digest", lambda: (self.pixels.shape, zlib.crc32(
            np.ascontiguousarray(self.pixels.reshape(-1)[::97]).data)))

    def same_pixels(self, other: "Copy") -> bool:
        return self.digest() == other.digest() and np.array_equal(self.pixels, other.pixels)

    def memo(self, key, make):
        """A value computed once per copy (keypoints, thumbnails)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


def copy_from_image(raw: Image.Image, name: str, rgb: Image.Image | None = None,
                    head: bytes = b"", file_size: int = 0) -> Copy:
    """A ``Copy`` of an opened (not yet converted) image; ``rgb``: its decoded RGB version
    when the caller already has it; ``head``: the file's first bytes (WebP lossless flag)."""
    fmt = (raw.format or "").upper()
    c = Copy(name, np.asarray(rgb if rgb is not None else raw.convert("RGB")), fmt,
             file_size=file_size)
    if fmt == "JPEG" and getattr(raw, "quantization", None):
        from PIL import JpegImagePlugin
        c.qtables = [list(raw.quantization[k]) for k in sorted(raw.quantization)]
        c.subsampling = JpegImagePlugin.get_sampling(raw)
        c.lossless = False
    elif raw.mode == "P" or fmt == "GIF":
        pal = Image.new("P", (1, 1))
        pal.putpalette(raw.getpalette() or [])
        c.palette = pal
        used = raw.getcolors(256) if raw.mode == "P" else None
        c.colors = len(used) if used else 256
    elif fmt in ("WEBP", "AVIF"):
        c.lossless = fmt == "WEBP" and b"VP8L" in head
    return c


def copy_from_bytes(data: bytes, name: str) -> Copy:
    with Image.open(io.BytesIO(data)) as raw:
        raw.load()
        return copy_from_image(raw, name, head=data[:4096], file_size=len(data))
