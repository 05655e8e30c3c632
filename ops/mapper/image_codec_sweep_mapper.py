"""Encode every source image with every setting of a study grid, decode, measure: one row per
variant (fan-out), cached per (image sha256, variant) so a rerun resumes."""
from __future__ import annotations

import logging
import os
import time
from typing import Optional, Union

import numpy as np

from ops.base import Mapper, OpError
from ops.fields import Fields
from ops.image.io import DEFAULT_MAX_PIXELS, check_max_pixels, load_image
from ops.registry import OPERATORS

from ops.image.sweep_plan import (MIN_FRAGMENT, MeasurementCache, crop_box, expand_grid,
                                  file_sha256, parse_duration, parse_fragment, scaled_size,
                                  setting_of)

logger = logging.getLogger("imgjuicer")

VARIANT_KEY = "codec_variant"        # meta key of each output row
CACHE_DIRNAME = "codec_sweep_cache"
DISTMAP_DIRNAME = "distmaps"


@OPERATORS.register_module("image_codec_sweep_mapper")
class ImageCodecSweepMapper(Mapper):
    """For each image of each sample: every combination of crop size x resolution x format x
    encoder parameters in ``grid``; encode, decode, measure ``metrics``.  Output rows carry
    ``Fields.id`` ``"<parent>/<k>"``, the variant under ``meta.codec_variant`` and the
    measurements (bytes, bpp, metrics, timings) in ``stats``.

    grid: ``{format: {param: value | [values] | {start, stop, step}}}`` (stop inclusive),
        e.g. ``{avif: {quality: {start: 40, stop: 90, step: 5}, speed: [6]}}``.
    metrics: names from ``ops.image.metrics.METRICS`` (default psnr, ssim, ssimulacra2,
        butteraugli).
    crop_sizes: square crop sides (clipped to the image) centred on the sample's analysis
        fragment (column ``fragment_key``: ``[x, y, w, h]``, else ``fragment``, else the
        image centre).  Metrics are also measured on the fragment itself when there is one.
        Crops whose clipped box repeats a larger one (image smaller than the crop) are
        measured once, under the larger size.
    scales / long_sides: resize the (cropped) source by these factors in (0, 1] / to these
        long sides in pixels before encoding (Lanczos); the reference is the resized source;
        sizes that would upscale are skipped.
    center_fragment: side of a centred square fragment for samples that have none.
    time_budget: e.g. ``"30m"``; checked between images: past it, the remaining samples end
        as errors ("time budget exhausted") and what was measured is kept.  Measurements are
        cached under ``cache_dir`` (default ``<work_dir>/codec_sweep_cache``), so a rerun of
        the same recipe resumes where the budget stopped it.
    save_distmaps: write each variant's Butteraugli distortion map (float32 HxW .npy) under
        ``distmap_dir`` (default ``<work_dir>/distmaps``); its path goes to meta.distmap.
    threads: encoder / decoder / Butteraugli threads per worker (1 keeps timings comparable).
    colour: sources with a non-sRGB ICC profile (Display P3, Adobe RGB ...): ``keep``
        (default) encodes their own numbers with the profile embedded, as a publisher keeping
        the profile does; every copy is converted with the profile its file carries to sRGB
        and measured against the sRGB-converted source, so an encoder that drops the profile
        (JPEG XL here: a warning says so) is measured with the colour shift it causes.
        ``srgb`` converts the source to sRGB before encoding.  The profile is recorded per
        image in quality.json (``source.icc``).
    """

    batched = True
    _clock = staticmethod(time.time)      # wall clock of the time budget (tests may replace it)

    def __init__(self, grid: dict, study_id: str = "codec-sweep",
                 metrics: Optional[list[str]] = None,
                 crop_sizes: Optional[list[int]] = None, fragment: Optional[list[int]] = None,
                 fragment_key: str = "fragment",
                 center_fragment: Optional[int] = None,
                 scales: Optional[list[float]] = None, long_sides: Optional[list[int]] = None,
                 time_budget: Optional[Union[str, float]] = None,
                 cache_dir: Optional[str] = None, use_cache: bool = True,
                 save_distmaps: bool = False, distmap_dir: Optional[str] = None, threads: int = 1,
                 max_pixels: int = DEFAULT_MAX_PIXELS, colour: str = "keep",
                 batch_size: int = 1, **kwargs):
        super().__init__(batch_size=batch_size, **kwargs)
        from ops.image.metrics import DEFAULT_METRICS, METRICS
        self.settings = expand_grid(grid)
        self.grid = grid
        self.study_id = study_id
        self.metrics = tuple(metrics) if metrics is not None else DEFAULT_METRICS
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise ValueError(f"metrics: unknown {unknown}; known: {sorted(METRICS)}")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics: listed twice in {list(self.metrics)}")
        if crop_sizes is not None and (not crop_sizes or any(int(c) < 8 for c in crop_sizes)):
            raise ValueError(f"crop_sizes: need sizes >= 8, got {crop_sizes}")
        if scales is not None and (not scales or any(not 0 < f <= 1 for f in scales)):
            raise ValueError(f"scales: need factors in (0, 1], got {scales}")
        if long_sides is not None and (not long_sides or any(n < 8 for n in long_sides)):
            raise ValueError(f"long_sides: need sides >= 8 pixels, got {long_sides}")
        if center_fragment is not None and center_fragment < MIN_FRAGMENT:
            raise ValueError(f"center_fragment: need >= {MIN_FRAGMENT}, got {center_fragment}")
        if fragment is not None and len(fragment) != 4:
            raise ValueError(f"fragment: expected [x, y, width, height], got {fragment}")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.crop_sizes = [int(c) for c in crop_sizes] if crop_sizes else None
        self.fragment = list(fragment) if fragment is not None else None
        self.fragment_key = fragment_key
        self.center_fragment = center_fragment
        self.targets = [("scale", float(f)) for f in scales or []] + \
            [("long_side", int(n)) for n in long_sides or []]
        self.time_budget = time_budget
        self.budget_seconds = parse_duration(time_budget)
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        if save_distmaps and "butteraugli" not in self.metrics:
            raise ValueError("save_distmaps needs 'butteraugli' in metrics")
        self.save_distmaps = save_distmaps
        self.distmap_dir = distmap_dir
        self.threads = threads
        self.max_pixels = check_max_pixels(max_pixels)
        if colour not in ("keep", "srgb"):
            raise ValueError(f"colour must be 'keep' or 'srgb', got {colour!r}")
        self.colour = colour
        self._started: Optional[float] = None   # wall clock of the first batch (travels to workers)

    # ------------------------------------------------------------------ lifecycle
    def setup(self) -> None:
        from ops.image.codecs import codec_versions
        from ops.image.metrics import check_metrics, metric_versions
        check_metrics(self.metrics)       # clear error if a metric cannot run here
        self._versions = {**codec_versions(), "metrics": metric_versions(self.metrics)}

    def _cache(self) -> Optional[MeasurementCache]:
        if not self.use_cache:
            return None
        root = self.cache_dir or os.path.join(self.context.work_dir, CACHE_DIRNAME)
        return MeasurementCache(os.path.abspath(root))

    # ------------------------------------------------------------------ batches
    def process_batched(self, samples: list[dict]) -> list[dict]:
        if self._started is None:
            self._started = self._clock()
        memo = getattr(self, "_m_memo", None)
        if memo is None:
            memo = self._m_memo = {}
        out, failure = [], None
        for s in samples:
            key = s.get(Fields.id)
            if key in memo:              # per-row retry after another row of the batch failed
                out.extend(memo.pop(key))
                continue
            try:
                rows = self._sweep_sample(s)
            except Exception as exc:
                failure = failure or exc
                continue
            memo[key] = rows
            out.extend(rows)
        if failure is not None:
            raise failure    # the framework retries row by row; finished rows come from memo
        for s in samples:
            memo.pop(s.get(Fields.id), None)
        return out

    def _budget_left(self) -> bool:
        return self.budget_seconds is None or self._clock() - self._started < self.budget_seconds

    def _sweep_sample(self, sample: dict) -> list[dict]:
        parent = sample.get(Fields.id)
        if parent is None:
            raise OpError(f"sample has no {Fields.id}; the executor assigns one at load")
        rows = []
        for path in self.image_paths(sample):
            if not self._budget_left():
                raise OpError(f"time budget {self.time_budget} exhausted before {path}; "
                              "measurements so far are kept; rerun to resume from the cache")
            t0 = time.perf_counter()
            for variant, record in self._sweep_image(sample, path):
                row = dict(sample)
                row[Fields.id] = f"{parent}/{len(rows)}"
                row[Fields.meta] = {**(sample.get(Fields.meta) or {}), VARIANT_KEY: variant}
                row[Fields.stats] = {**(sample.get(Fields.stats) or {}), **record}
                rows.append(row)
            logger.info("%s: %s: %d variants in %.1fs", self.name, path, len(rows),
                        time.perf_counter() - t0)
        return rows

    # ------------------------------------------------------------------ one image
    def _views(self, src: np.ndarray, fragment: Optional[dict]):
        """(crop, resolution, pixels, fragment inside the view) for every crop x resolution."""
        from PIL import Image
        h, w = src.shape[:2]
        crops, boxes = [], set()
        for c in self.crop_sizes or []:
            box = crop_box(w, h, c, fragment)
            key = (box["x"], box["y"], box["width"], box["height"])
            if key in boxes:
                logger.info("%s: crop %d is the same %dx%d box as a larger crop; measured once",
                            self.name, c, box["width"], box["height"])
                continue
            boxes.add(key)
            crops.append(box)
        for crop in crops or [None]:
            base, frag = src, fragment
            if crop is not None:
                y0, x0 = crop["y"], crop["x"]
                base = src[y0:y0 + crop["height"], x0:x0 + crop["width"]]
                frag = _intersect(fragment, crop)
            bh, bw = base.shape[:2]
            for kind, target in self.targets or [(None, None)]:
                if kind is None:
                    yield crop, None, base, frag
                    continue
                size = scaled_size(bw, bh, kind, target)
                if size is None:
                    logger.info("%s: %s %s skipped for a %dx%d image (no upscaling)",
                                self.name, kind, target, bw, bh)
                    continue
                pixels = np.asarray(Image.fromarray(base).resize(size, Image.Resampling.LANCZOS))
                res = {kind: target, "width": size[0], "height": size[1]}
                yield crop, res, pixels, _scale_fragment(frag, size[0] / bw, size[1] / bh,
                                                          size)

    def _sweep_image(self, sample: dict, path: str):
        from ops.image.metrics import HIGHER_IS_BETTER
        from ops.image.colour import VERSION as COLOUR_VERSION
        from ops.image.colour import ColourError, check_kept, describe, to_srgb
        sha = file_sha256(path)
        img = load_image(path, "RGB", self.max_pixels)
        icc = img.info.get("icc_profile")
        try:
            info = describe(icc)
            src = np.asarray(to_srgb(img, icc, path))      # what is measured against
        except ColourError as exc:
            raise OpError(str(exc)) from None
        managed = info is not None and not info["is_srgb"]
        keep = managed and self.colour == "keep"
        own = np.asarray(img) if managed else None          # the file's own numbers
        h, w = src.shape[:2]
        raw = sample.get(self.fragment_key)
        raw = raw if raw is not None else self.fragment
        if raw is None and self.center_fragment:
            side = min(self.center_fragment, w, h)
            raw = [(w - side) // 2, (h - side) // 2, side, side]
        try:
            fragment = parse_fragment(raw, w, h)
        except ValueError as exc:
            raise OpError(f"{path}: {exc}") from None
        cache = self._cache()
        source = {"path": path, "sha256": sha, "width": w, "height": h, "fragment": fragment,
                  "icc": info, "colour": self.colour if managed else None}
        if keep:
            for fmt in sorted({st.format for st in self.settings}):
                check_kept(fmt, icc, path)
        views = self._views(src, fragment)
        own_views = self._views(own, fragment) if managed else None
        for crop, res, pixels, frag in views:
            own_pixels = next(own_views)[2] if managed else None
            colour = (own_pixels, icc, keep) if managed else None
            for setting in self.settings:
                variant = {"format": setting.format, "params": setting.params, "crop": crop,
                           "resolution": res, "fragment": frag, "metrics": list(self.metrics),
                           "versions": self._versions}
                if managed:       # caches of untagged / sRGB sources keep their keys
                    variant["colour"] = [self.colour, info["sha256"], COLOUR_VERSION]
                dm_path = self._distmap_path(sha, variant)
                record = cache.get(sha, variant) if cache else None
                if record is not None and dm_path and not os.path.exists(dm_path):
                    record = None                # the distortion map is wanted and missing
                cached = record is not None
                if record is None:
                    record = self._measure(pixels, setting, frag, dm_path, colour)
                    if cache:
                        cache.put(sha, variant, record)
                else:
                    record = {k: v for k, v in record.items() if k != "variant"}
                meta = {"study_id": self.study_id, "source": source, "format": setting.format,
                        "setting": setting_of(setting), "params": setting.params, "crop": crop,
                        "resolution": res, "fragment": frag,
                        "width": pixels.shape[1], "height": pixels.shape[0],
                        "metrics": [k for k in HIGHER_IS_BETTER if k in record],
                        "distmap": dm_path, "cached": cached, "tools": self._versions}
                yield meta, record

    def _distmap_path(self, sha: str, variant: dict) -> Optional[str]:
        if not self.save_distmaps:
            return None
        root = self.distmap_dir or os.path.join(self.context.work_dir, DISTMAP_DIRNAME)
        return os.path.join(os.path.abspath(root), sha[:16],
                            MeasurementCache.key(variant) + ".npy")

    def _measure(self, pixels: np.ndarray, setting, frag: Optional[dict],
                 dm_path: Optional[str], colour: Optional[tuple] = None) -> dict:
        """Encode, decode to sRGB and measure against ``pixels`` (the sRGB source view), and
        on the fragment.  ``colour`` = (the view's own numbers, their ICC profile, keep):
        with keep the own numbers are encoded with the profile embedded; SSIMULACRA2 and
        Butteraugli then compare the float linear-sRGB conversions of source and copy."""
        from ops.image.codecs import encode
        from ops.image.colour import linear_srgb
        from ops.image.metrics import measure
        own, icc, keep = colour if colour is not None else (None, None, False)
        enc = encode(own if keep else pixels, setting.format, threads=self.threads,
                     icc_profile=icc if keep else None, **setting.params)
        linear = None
        if own is not None and {"ssimulacra2", "butteraugli"} & set(self.metrics):
            copy = enc.raw if enc.raw is not None else enc.decoded
            linear = (linear_srgb(own, icc), linear_srgb(copy, enc.icc_profile))
        m = measure(pixels, enc.decoded, enc.data, self.metrics, threads=self.threads,
                    distmap=dm_path is not None, linear=linear)
        record = {"bytes": m.pop("bytes"), "bpp": m.pop("bpp"),
                  "encode_seconds": enc.encode_seconds, "decode_seconds": enc.decode_seconds,
                  "metric_seconds": m.pop("seconds")}
        distmap = m.pop("butteraugli_distmap", None)
        record.update(m)
        if keep:
            record["icc_kept"] = enc.icc_profile is not None
        if dm_path is not None:
            os.makedirs(os.path.dirname(dm_path), exist_ok=True)
            tmp = f"{dm_path}.{os.getpid()}.tmp.npy"
            np.save(tmp, distmap)
            os.replace(tmp, dm_path)
        if frag is not None:
            y0, x0, fh, fw = frag["y"], frag["x"], frag["height"], frag["width"]
            box = (slice(y0, y0 + fh), slice(x0, x0 + fw))
            fm = measure(pixels[box], enc.decoded[box], None, self.metrics, threads=self.threads,
                         linear=(linear[0][box], linear[1][box]) if linear else None)
            fm.pop("seconds")
            record["fragment_metrics"] = fm
        return record


def _intersect(fragment: Optional[dict], crop: dict) -> Optional[dict]:
    """The fragment in crop coordinates (clipped); None if too little of it is inside."""
    if fragment is None:
        return None
    x0 = max(fragment["x"], crop["x"])
    y0 = max(fragment["y"], crop["y"])
    x1 = min(fragment["x"] + fragment["width"], crop["x"] + crop["width"])
    y1 = min(fragment["y"] + fragment["height"], crop["y"] + crop["height"])
    if min(x1 - x0, y1 - y0) < MIN_FRAGMENT:
        return None
    return {"x": x0 - crop["x"], "y": y0 - crop["y"], "width": x1 - x0, "height": y1 - y0}


def _scale_fragment(frag: Optional[dict], sx: float, sy: float, size: tuple) -> Optional[dict]:
    if frag is None:
        return None
    x, y = int(round(frag["x"] * sx)), int(round(frag["y"] * sy))
    w = min(int(round(frag["width"] * sx)), size[0] - x)
    h = min(int(round(frag["height"] * sy)), size[1] - y)
    if min(w, h) < MIN_FRAGMENT:
        return None
    return {"x": x, "y": y, "width": w, "height": h}
