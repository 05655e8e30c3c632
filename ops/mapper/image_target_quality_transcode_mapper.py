"""Re-encode every image at the fewest bytes that still reach a perceptual-quality target."""
from __future__ import annotations

import hashlib
import os
import shutil
from typing import Literal, Optional

from ops.base import Mapper, OpError
from ops.fields import Fields
from ops.registry import OPERATORS

META_KEY = "transcode"
STATS_KEY = "transcode_bytes_saved"


@OPERATORS.register_module("image_target_quality_transcode_mapper")
class ImageTargetQualityTranscodeMapper(Mapper):
    """For each image: the format (``formats``) and quality setting that reach ``target`` at
    the fewest bytes, measured against the decoded source: SSIMULACRA2 >= target (``metric:
    ssimulacra2``; 90 is visually lossless, 70 high quality) or Butteraugli max-norm distance
    <= target (``metric: butteraugli``; 1.0 is visually lossless).  Probe settings per format
    (``probes``) are encoded and measured, the setting reaching the target interpolated
    (monotone cubic) and checked by a real encode; only measured encodes are kept, so every
    written file reaches the target.

    Writes each file into ``output_dir`` (relative: under the run's work_dir) named
    ``<stem>-<hash of the source path>.<ext>`` and rewrites the ``image_keys`` columns to the new
    paths.  ``meta.transcode``: per image source, output, format, quality, metric value, source
    and output bytes; ``stats.transcode_bytes_saved``: bytes saved by the sample.  When no
    encoding is smaller than the source (``never_larger``) or none reaches the target, the
    source file is copied unchanged and the reason recorded.  An unreadable image makes its
    sample an error.  A source with a non-sRGB ICC profile (Display P3, Adobe RGB ...) is
    encoded with its profile embedded where the format keeps it (else from its sRGB
    conversion) and measured in float linear sRGB like the codec sweep; ``meta.transcode``
    then names the profile (``icc``) and what became of it (``colour``)."""

    batched = False

    def __init__(self, metric: Literal["ssimulacra2", "butteraugli"] = "ssimulacra2",
                 target: float = 80.0,
                 formats: list[str] = ["jpeg", "webp", "avif", "jxl"],  # noqa: B006
                 probes: Optional[dict] = None, params: Optional[dict] = None,
                 output_dir: str = "transcoded", image_keys: Optional[list[str]] = None,
                 never_larger: bool = True, threads: int = 1, **kwargs):
        super().__init__(**kwargs)
        from ops.image.target_quality import TargetSearch
        from ops.image.codecs import CodecError
        try:
            self.search = TargetSearch(metric, target, list(formats), probes, params, threads)
        except CodecError as exc:
            raise ValueError(str(exc)) from None
        if metric == "ssimulacra2" and not -100 < target <= 100:
            raise ValueError(f"an SSIMULACRA2 target lies in (-100, 100], got {target}")
        if metric == "butteraugli" and not target > 0:
            raise ValueError(f"a Butteraugli distance target must be > 0, got {target}")
        self.metric, self.target = metric, float(target)
        self.output_dir = output_dir
        self.image_keys = list(image_keys) if image_keys else [self.image_key]
        self.never_larger = never_larger

    def _out_dir(self) -> str:
        d = self.output_dir
        return d if os.path.isabs(d) else os.path.join(self.context.work_dir, d)

    def _transcode(self, path: str) -> dict:
        from ops.image.io import ImageLoadError, load_image
        from ops.image.target_quality import EXTENSIONS
        import numpy as np

        from ops.image.colour import ColourError, describe, profile_of, to_srgb
        from ops.image.remote import is_url, stat_size
        from ops.image.target_quality import Source
        try:
            src_bytes = stat_size(path) if is_url(path) else os.path.getsize(path)
            img = load_image(path, "RGB")
            icc = profile_of(img)
            info = describe(icc)
            managed = info is not None and not info["is_srgb"]
            ref = Source(np.asarray(to_srgb(img, icc, path)), np.asarray(img), icc) \
                if managed else Source(np.asarray(img))
        except (OSError, ImageLoadError, ColourError) as exc:
            raise OpError(f"cannot transcode {path}: {exc}") from None
        choice = self.search.run(ref)
        best = choice.best
        stem = os.path.splitext(os.path.basename(path))[0]   # s3://b/k/x.jpg -> x
        key = path if is_url(path) else os.path.abspath(path)
        tag = hashlib.sha1(key.encode()).hexdigest()[:10]
        out_dir = self._out_dir()
        os.makedirs(out_dir, exist_ok=True)
        rec = {"source": path, "source_bytes": src_bytes, "metric": self.metric,
               "target": self.target, "encodes": choice.encodes,
               "icc": info["description"] if managed else None}
        if best is None or (self.never_larger and best.nbytes >= src_bytes):
            out = os.path.join(out_dir, f"{stem}-{tag}{os.path.splitext(path)[1].lower()}")
            _atomic_copy(path, out)
            rec.update(output=out, format="source", quality=None, bytes=src_bytes, value=None,
                       saved_bytes=0, reason=("no format reaches the target" if best is None
                                              else "no encoding reaching the target is smaller "
                                                   "than the source"))
            return rec
        out = os.path.join(out_dir, f"{stem}-{tag}{EXTENSIONS[best.format]}")
        _atomic_write(out, best.data)
        rec.update(output=out, format=best.format, quality=best.quality, bytes=best.nbytes,
                   value=round(best.value, 4), saved_bytes=src_bytes - best.nbytes)
        if managed:     # wide gamut kept with the profile, or converted to sRGB (JPEG XL)
            rec["colour"] = "profile kept" if ref.keeps_profile(best.format) else \
                "converted to sRGB"
        return rec

    def process_single(self, sample: dict) -> dict:
        done: dict = {}
        for key in self.image_keys:
            value = sample.get(key)
            if value is None:
                raise OpError(f"sample has no '{key}' column")
            paths = [value] if isinstance(value, str) else list(value)
            for p in paths:
                if p not in done:
                    done[p] = self._transcode(p)
            new = [done[p]["output"] for p in paths]
            sample[key] = new[0] if isinstance(value, str) else new
        meta = dict(sample.get(Fields.meta) or {})
        meta[META_KEY] = list(done.values())
        sample[Fields.meta] = meta
        stats = dict(sample.get(Fields.stats) or {})
        stats[STATS_KEY] = int(sum(r["saved_bytes"] for r in done.values()))
        sample[Fields.stats] = stats
        return sample


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _atomic_copy(src: str, dest: str) -> None:
    from ops.image.remote import is_url, read_bytes
    if is_url(src):  # an object-storage source kept as it is: downloaded once
        _atomic_write(dest, read_bytes(src))
        return
    tmp = f"{dest}.{os.getpid()}.tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
