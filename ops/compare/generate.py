"""Per study level and target group, the steps docs/comparison-figures.md numbers: 1 choose
the image, 2 re-encode it at the interpolated settings and measure, 3 choose the fragment
(4 in the common frame of crop studies), 5 draw the figures, 6 write the report."""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .options import FigureOptions
from .reencode import linear_pair, reach_target
from .select import anisotropic_map, best_window, centred_window, select_image
from .study import (SIZE_OUTPUTS, Study, StudyError, TargetGroup, check_tile_parameter,
                    has_metric, is_excluded, level_of, metric_value, study_levels, study_tiles,
                    tile_of)

logger = logging.getLogger("imgjuicer")


Options = FigureOptions      # the figure settings (ops/compare/options.py)


@dataclass
class Tile:
    """One tile of a group on the chosen image: its sweep and its view of the source."""

    key: tuple
    variants: list
    view: Optional[np.ndarray] = None        # the source pixels (sRGB) the variants measured
    own: Optional[tuple] = None              # (own numbers, ICC profile, keep) of a
                                             # colour-managed source (see reach_target)
    offset: tuple = (0, 0)                   # view origin in the group's common frame

    def curve(self, metric: str) -> tuple[list, list]:
        pts = [(v["setting"]["value"], metric_value(v, metric)) for v in self.variants
               if _numeric(v["setting"]["value"])]
        return [p[0] for p in pts], [p[1] for p in pts]


def _numeric(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def resolve_source(image: dict, study: Study) -> str:
    """The source file of a quality.json image: as written, or relative to the dataset, the
    quality.json or the current directory."""
    src = image["source"]
    bases = ["", study.dataset_dir, os.path.dirname(study.quality_path or ""), os.getcwd()]
    tried = []
    for b in bases:
        if b is None:
            continue
        p = os.path.join(b, src) if b else src
        tried.append(p)
        if os.path.isfile(p):
            return p
    raise StudyError(f"source image '{src}' not found (tried {tried}); the figures re-encode the "
                     "source, so it must be on disk")


def view_of(src: np.ndarray, variant: dict) -> np.ndarray:
    """The pixels a variant encoded: its crop of the source, resized to its resolution."""
    from PIL import Image
    crop, res = variant.get("crop"), variant.get("resolution")
    out = src
    if crop:
        out = out[crop["y"]:crop["y"] + crop["height"], crop["x"]:crop["x"] + crop["width"]]
    if res:
        size = (int(res["width"]), int(res["height"]))
        if size != (out.shape[1], out.shape[0]):
            out = np.asarray(Image.fromarray(out).resize(size, Image.Resampling.LANCZOS))
    return np.ascontiguousarray(out)


def _measured_metrics(group: TargetGroup) -> tuple:
    from ops.image.metrics import available_metrics
    avail = available_metrics()
    if avail.get("butteraugli"):
        raise StudyError(f"the distortion maps need Butteraugli: {avail['butteraugli']}")
    names = ["butteraugli"]
    if avail.get("ssimulacra2") is None:
        names.append("ssimulacra2")
    if group.metric not in ("bits_per_pixel", "butteraugli") and group.metric not in names:
        if avail.get(group.metric):
            raise StudyError(f"metric {group.metric} cannot run here: {avail[group.metric]}")
        names.append(group.metric)
    return tuple(names)


def image_curves(image: dict, level: str, tile_param: str, target: str, output: str) -> dict:
    tiles: dict = {}
    for v in image["variants"]:
        if level_of(v, tile_param) == level and _numeric(v["setting"]["value"]):
            tiles.setdefault(tile_of(v, tile_param), []).append(v)
    return {k: ([v["setting"]["value"] for v in vs], [metric_value(v, target) for v in vs],
                [metric_value(v, output) for v in vs]) for k, vs in tiles.items()}


def _pick_image(candidates: list, opts: FigureOptions, level, tile_param, group, output):
    if opts.source_image:
        want = os.path.realpath(opts.source_image)
        for img in candidates:
            if os.path.realpath(img["source"]) == want or \
                    os.path.basename(img["source"]) == os.path.basename(opts.source_image):
                return img, None
        raise StudyError(f"--source-image {opts.source_image}: not among the measured images "
                         f"of this level ({[os.path.basename(i['source']) for i in candidates]})")
    curves_of = lambda img: image_curves(img, level, tile_param, group.metric, output)  # noqa: E731
    best, scores = select_image(candidates, curves_of, group.values, opts.interpolation)
    if best is None:               # no image has two tiles reaching a target: take the first
        best = candidates[0]
    return best, dict(zip((os.path.basename(c["source"]) for c in candidates), scores))


def generate_figures(study: Study, out_root: str, opts: Optional[FigureOptions] = None) -> dict:
    """Write every figure of ``study`` under ``<out_root>/comparison/`` plus manifest.json
    (and the HTML report unless ``opts.report`` is off); returns the manifest."""
    from . import render
    opts = opts or FigureOptions()
    opts.check()
    tile_param = opts.tile_parameter
    images = [i for i in study.images if not is_excluded(i, opts.exclude_images)]
    if not images:
        raise StudyError(f"every image of {study.study_id} is excluded by exclude_images")
    check_tile_parameter(images, tile_param)
    tiles = study_tiles(study.images, tile_param)
    comp_dir = os.path.join(out_root, "comparison")
    t0 = time.perf_counter()
    manifest = {"study_id": study.study_id, "quality_json": study.quality_path,
                "tile_parameter": tile_param, "crop_size": opts.crop_size, "zoom": opts.zoom,
                "tiles": [list(t) for t in tiles], "groups": []}
    for level in study_levels(images, tile_param):
        for group in opts.target_groups:
            where = os.path.join(level, group.metric) if level else group.metric
            if not has_metric(images, group.metric):
                logger.warning("comparison: %s skipped: quality.json has no %s measurements",
                               where, group.metric)
                manifest["groups"].append({"level": level, "metric": group.metric,
                                           "values": group.values, "skipped":
                                           f"quality.json has no {group.metric} measurements"})
                continue
            tg = time.perf_counter()
            entry = GroupRun(study, images, level, group, tiles, tile_param, opts).run()
            tr = time.perf_counter()
            # step 5: the figures
            entry.update(render.write_group(entry, os.path.join(comp_dir, where), opts))
            entry["seconds"] = {"select_encode_measure": round(tr - tg, 2),
                                "figures": round(time.perf_counter() - tr, 2)}
            for k in ("records", "frame_maps", "aniso", "source_pixels", "tile_views"):
                entry.pop(k, None)
            manifest["groups"].append(entry)
            logger.info("comparison: %s done (%s)", where, entry["image"])
    manifest["seconds"] = round(time.perf_counter() - t0, 2)
    os.makedirs(comp_dir, exist_ok=True)
    _relativise(manifest, comp_dir)
    with open(os.path.join(comp_dir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
    if opts.report:                                    # step 6: the report
        from .html_report import write_report
        manifest["report"] = os.path.relpath(write_report(study, manifest, comp_dir), comp_dir)
    return manifest


def _relativise(manifest: dict, comp_dir: str) -> None:
    for g in manifest["groups"]:
        for k, v in (g.get("figures") or {}).items():
            if isinstance(v, dict):
                g["figures"][k] = {kk: os.path.relpath(p, comp_dir) for kk, p in v.items()}
            else:
                g["figures"][k] = os.path.relpath(v, comp_dir)


class GroupRun:
    """One level and target group, one method per step of the algorithm."""

    def __init__(self, study, images, level, group, tiles, tile_param, opts):
        self.study, self.images, self.level, self.group = study, images, level, group
        self.tiles, self.tile_param, self.opts = tiles, tile_param, opts

    def run(self) -> dict:
        image, scores, output = self.step1_select_image()
        src, present = self.load_tiles(image)
        frame = step4_frame(present, image)
        records = self.step2_reencode(image, present)
        window, window_from, frame_maps, aniso = self.step3_fragment(frame, present, records)
        return {"level": self.level, "metric": self.group.metric, "label": self.group.label,
                "values": self.group.values, "image": image["source"], "image_scores": scores,
                "selection_output": output, "tile_parameter": self.tile_param,
                "interpolation": self.opts.interpolation,
                "frame": frame, "window": list(window), "window_from": window_from,
                "tiles": [list(k) for k in self.tiles], "present": [list(t.key) for t in present],
                "records": records, "frame_maps": frame_maps, "aniso": aniso,
                "source_pixels": src, "tile_views": present,
                "crops": sorted({(v["crop"]["size"], v["crop"]["x"], v["crop"]["y"],
                                  v["crop"]["width"], v["crop"]["height"])
                                 for v in image["variants"] if v.get("crop")}, reverse=True),
                "source_fragment": image.get("fragment")}

    # ------------------------------------------------------------------ 1. image selection
    def step1_select_image(self):
        images, group, level = self.images, self.group, self.level
        output = "bits_per_pixel"
        if group.metric == "bits_per_pixel":
            output = next((m for m in SIZE_OUTPUTS if has_metric(images, m)), None)
            if output is None:
                raise StudyError("targeting bits_per_pixel needs a quality metric in "
                                 "quality.json")
        candidates = [i for i in images if any(level_of(v, self.tile_param) == level
                                               for v in i["variants"])]
        image, scores = _pick_image(candidates, self.opts, level, self.tile_param, group,
                                    output)
        return image, scores, output

    def load_tiles(self, image: dict):
        """The chosen source (colour-managed to sRGB, as the sweep measured it) and its tiles'
        views."""
        from ops.image.io import load_image
        path = resolve_source(image, self.study)
        if image.get("sha256"):
            from ops.image.sweep_plan import file_sha256
            if file_sha256(path) != image["sha256"]:
                logger.warning("comparison: %s changed since it was measured (sha256 "
                               "differs); the interpolated settings may miss their targets",
                               path)
        raw = load_image(path, "RGB")
        icc = raw.info.get("icc_profile") if image.get("colour") else None
        from ops.image.colour import ColourError, to_srgb
        try:
            src = np.asarray(to_srgb(raw, raw.info.get("icc_profile"), path))
        except ColourError as exc:
            raise StudyError(str(exc)) from None
        if src.shape[:2] != (image["height"], image["width"]):
            raise StudyError(f"{image['source']}: is {src.shape[1]}x{src.shape[0]} on disk "
                             f"but {image['width']}x{image['height']} in quality.json")
        by_tile: dict = {}
        for v in image["variants"]:
            if level_of(v, self.tile_param) == self.level and _numeric(v["setting"]["value"]):
                by_tile.setdefault(tile_of(v, self.tile_param), []).append(v)
        own = np.asarray(raw) if icc else None
        present = [Tile(k, by_tile[k], view_of(src, by_tile[k][0]),
                        own=(view_of(own, by_tile[k][0]), icc, image["colour"] == "keep")
                        if icc else None)
                   for k in self.tiles if k in by_tile]
        return src, present

    # ------------------------------------------------------------------ 2. re-encoding
    def step2_reencode(self, image: dict, present: list) -> dict:
        """Per target and tile: interpolate the setting, re-encode, measure."""
        from ops.image.metrics import measure
        group, opts = self.group, self.opts
        metrics = _measured_metrics(group)
        records: dict = {}          # (tile key, target value) -> record
        cache: dict = {}
        for t in group.values:
            for tile in present:
                s, vals = tile.curve(group.metric)
                known = [x for x in vals if x is not None]
                lo, hi = (min(known), max(known)) if known else (None, None)
                rec = {"tile": list(tile.key), "target": t, "measured_range": [lo, hi]}
                records[(tile.key, t)] = rec
                v0 = tile.variants[0]
                name = v0["setting"]["name"]
                got = reach_target(tile.view, v0["format"], v0["params"], name, s, vals,
                                   group.metric, t, refine=opts.refine, threads=opts.threads,
                                   method=opts.interpolation, own=tile.own)
                if got is None:
                    continue
                key = (tile.key, got.setting)
                if key not in cache:
                    cache[key] = measure(tile.view, got.encoded.decoded, got.encoded.data,
                                         metrics, distmap=True, threads=opts.threads,
                                         linear=linear_pair(tile.own, got.encoded))
                m = cache[key]
                rec.update(setting_name=name, interpolated=round(got.interpolated, 4),
                           setting=got.setting, tries=got.tries, bpp=m["bpp"],
                           bytes=m["bytes"],
                           metrics={k: m[k] for k in m if k not in (
                               "seconds", "bytes", "bpp", "butteraugli_distmap")},
                           decoded=got.encoded.decoded, distmap=m["butteraugli_distmap"])
        if not any("distmap" in r for r in records.values()):
            logger.warning("comparison: %s on %s: no tile's measurements reach any %s target "
                           "%s (a tile needs 2+ settings spanning the target); all tiles are "
                           "placeholders", self.level or "study",
                           os.path.basename(image["source"]), group.metric, group.values)
        return records

    # ------------------------------------------------------------------ 3. fragment
    def step3_fragment(self, frame: dict, present: list, records: dict):
        """The anisotropic map (std of the tiles' Butteraugli maps, mean over targets) and the
        crop window: the largest-sum window, or centred on a stored analysis fragment."""
        fx, fy, fw, fh = frame["region"]

        def in_frame(tile, arr):
            ox, oy = tile.offset
            return arr[fy - oy:fy - oy + fh, fx - ox:fx - ox + fw]

        frame_maps = {k: in_frame(next(x for x in present if x.key == k[0]), r["distmap"])
                      for k, r in records.items() if "distmap" in r}
        aniso = anisotropic_map([[frame_maps[(tile.key, t)] for tile in present
                                  if (tile.key, t) in frame_maps] for t in self.group.values]) \
            if frame_maps else np.zeros((fh, fw), np.float32)
        crop = self.opts.crop_size
        if frame["fragment_centre"] is not None:
            cx, cy = frame["fragment_centre"]
            return centred_window(cx, cy, crop, frame["region"]), "stored analysis fragment", \
                frame_maps, aniso
        x, y, w, h = best_window(aniso, crop, crop)
        return (x + fx, y + fy, w, h), "anisotropic map", frame_maps, aniso


def step4_frame(present: list, image: dict) -> dict:
    """Step 4: the common frame the tiles are compared in.  Tiles that encoded the same view
    share its pixel grid; tiles that encoded different crops (crop-impact studies with
    tile_parameter crop) are placed in source coordinates and compared over the intersection
    of their crops.
    ``to_source`` maps frame pixels to source pixels: (x0, y0, sx, sy)."""
    if not present:
        raise StudyError(f"{image['source']}: no variant with a numeric setting at this level")
    geoms = {(json.dumps(t.variants[0].get("crop"), sort_keys=True),
              json.dumps(t.variants[0].get("resolution"), sort_keys=True)) for t in present}
    v0 = present[0].variants[0]
    frag = v0.get("fragment")
    is_crop = bool(v0.get("crop"))
    if len(geoms) == 1:
        h, w = present[0].view.shape[:2]
        crop = v0.get("crop") or {"x": 0, "y": 0, "width": image["width"],
                                  "height": image["height"]}
        centre = (frag["x"] + frag["width"] / 2, frag["y"] + frag["height"] / 2) \
            if frag and is_crop else None
        return {"region": (0, 0, w, h), "fragment_centre": centre,
                "to_source": (crop["x"], crop["y"], crop["width"] / w, crop["height"] / h)}
    if any(t.variants[0].get("resolution") for t in present):
        raise StudyError("tiles that differ in both crop and resolution cannot share a frame; "
                         "use tile_parameter format, crop or resolution alone")
    boxes = []
    for t in present:
        c = t.variants[0].get("crop") or {"x": 0, "y": 0, "width": image["width"],
                                          "height": image["height"]}
        t.offset = (c["x"], c["y"])
        boxes.append((c["x"], c["y"], c["x"] + c["width"], c["y"] + c["height"]))
    x0, y0 = max(b[0] for b in boxes), max(b[1] for b in boxes)
    x1, y1 = min(b[2] for b in boxes), min(b[3] for b in boxes)
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise StudyError(f"{image['source']}: the tiles' crops do not overlap")
    sf = image.get("fragment")
    centre = (sf["x"] + sf["width"] / 2, sf["y"] + sf["height"] / 2) if sf else None
    return {"region": (x0, y0, x1 - x0, y1 - y0), "fragment_centre": centre,
            "to_source": (0, 0, 1.0, 1.0)}
