"""A study to draw: its quality.json, the figure settings its recipe gives
comparison_figure_aggregator, figure levels and tiles, and the list of studies with
measurements."""
from __future__ import annotations

import glob
import json
import math
import os
from dataclasses import dataclass
from typing import Optional

QUALITY_SCHEMA = "imgjuicer.quality/2"
READABLE_SCHEMAS = ("imgjuicer.quality/1", QUALITY_SCHEMA)   # /1 lacks the "analysis" section
# comparison metric -> (quality.json key, label, higher is better)
METRICS = {
    "ssimulacra2": ("ssimulacra2", "SSIMULACRA2", True),
    "psnr": ("psnr", "PSNR", True),
    "ssim": ("ssim", "SSIM", True),
    "butteraugli": ("butteraugli_max", "Butteraugli", False),
    "bits_per_pixel": ("bpp", "BPP", True),
}
DEFAULT_TARGETS = ({"metric": "ssimulacra2", "values": [60, 70, 80]},
                   {"metric": "bits_per_pixel", "values": [0.5, 1.0, 1.5]})
# Output metric of the image selection when targeting size: the first one measured.
SIZE_OUTPUTS = ("ssimulacra2", "butteraugli", "psnr", "ssim")
FORMAT_ORDER = ("jpeg", "webp", "avif", "jxl")
FORMAT_LABELS = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "jxl": "JPEG XL"}


class StudyError(ValueError):
    """A study that cannot be drawn; the message says why and what to do."""


@dataclass
class TargetGroup:
    metric: str
    values: list

    @property
    def label(self) -> str:
        return METRICS[self.metric][1]


@dataclass
class Study:
    study_id: str
    quality: dict
    quality_path: Optional[str]
    work_dir: str
    recipe_path: Optional[str] = None
    dataset_dir: Optional[str] = None
    recipe: Optional[dict] = None        # the recipe as read (dj-compare takes its settings)

    @property
    def images(self) -> list:
        return self.quality.get("images") or []


def check_quality(doc: dict, where: str) -> dict:
    if not isinstance(doc, dict) or doc.get("schema") not in READABLE_SCHEMAS:
        raise StudyError(f"{where}: not a quality.json of schema {QUALITY_SCHEMA} "
                         f"(got {doc.get('schema') if isinstance(doc, dict) else type(doc)})")
    if not doc.get("images"):
        raise StudyError(f"{where}: no measured images; run the study first")
    return doc


def read_json(path: str) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise StudyError(f"{path}: invalid JSON: {exc}") from None


def recipe_info(path: str) -> dict:
    """work_dir, quality.json path (from quality_report_aggregator's output_path), the recipe
    itself and dataset dir of a study recipe (paths relative to the current directory, as
    dj-process resolves them)."""
    import yaml
    with open(path) as fh:
        cfg = yaml.safe_load(fh) or {}
    if not isinstance(cfg, dict):
        raise StudyError(f"{path}: not a recipe (expected a mapping)")
    work_dir = cfg.get("work_dir") or os.path.join("outputs", cfg.get("project_name", "imgjuicer"))
    qpath = None
    for item in cfg.get("process") or []:
        name, params = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        if name == "quality_report_aggregator":
            qpath = (params or {}).get("output_path", "quality.json")
    if qpath is not None and not os.path.isabs(qpath):
        qpath = os.path.join(work_dir, qpath)
    ds = cfg.get("dataset_path")
    return {"work_dir": os.path.abspath(work_dir),
            "quality_path": os.path.abspath(qpath) if qpath else None,
            "recipe": cfg, "project_name": cfg.get("project_name"),
            "dataset_dir": os.path.dirname(os.path.abspath(ds)) if ds else None}


def _named(spec: str, recipes_dir: str, outputs_dir: str) -> Optional[str]:
    """The recipe or quality.json a study name means, first found of: recipes/<name>.yaml,
    a recipe whose project name or study id is ``name`` (the name ``dj-compare --list``
    shows), outputs/<name>/quality.json, a quality.json whose study id is ``name``."""
    direct = os.path.join(recipes_dir, spec + ".yaml")
    if os.path.exists(direct):
        return direct
    rows = list_studies(recipes_dir, outputs_dir)
    for row in rows:
        if row["recipe"] and spec in (row["study"], row.get("project_name")):
            return row["recipe"]
    q = os.path.join(outputs_dir, spec, "quality.json")
    if os.path.exists(q):
        return q
    return next((row["quality_json"] for row in rows if row["study"] == spec), None)


def load_study(spec: str, recipes_dir: str = "recipes", outputs_dir: str = "outputs") -> Study:
    """STUDY = a recipe .yaml, a quality.json, or a study name (recipes/<name>.yaml,
    outputs/<name>/quality.json, or a project name / study id that --list shows)."""
    if not spec.endswith((".yaml", ".yml", ".json")) and not os.path.exists(spec):
        found = _named(spec, recipes_dir, outputs_dir)
        if found is not None:
            spec = found
        else:
            raise StudyError(f"study '{spec}': no {recipes_dir}/{spec}.yaml and no "
                             f"{outputs_dir}/{spec}/quality.json (dj-compare --list shows "
                             "what is available)")
    if not os.path.exists(spec):
        raise StudyError(f"study '{spec}' does not exist")
    if spec.endswith((".yaml", ".yml")):
        info = recipe_info(spec)
        if info["quality_path"] is None:
            raise StudyError(f"{spec}: the recipe has no quality_report_aggregator, so it "
                             "writes no quality.json")
        if not os.path.exists(info["quality_path"]):
            raise StudyError(f"{spec}: {info['quality_path']} does not exist yet; run "
                             f"`dj-process --config {spec}` first")
        doc = check_quality(read_json(info["quality_path"]), info["quality_path"])
        return Study(doc.get("study_id") or info["project_name"], doc, info["quality_path"],
                     info["work_dir"], os.path.abspath(spec), info["dataset_dir"], info["recipe"])
    doc = check_quality(read_json(spec), spec)
    recipe, cfg, ds = doc.get("recipe"), None, None
    if recipe and os.path.exists(recipe):       # the recipe that wrote it, when still there
        info = recipe_info(recipe)
        cfg, ds = info["recipe"], info["dataset_dir"]
    path = os.path.abspath(spec)
    return Study(doc.get("study_id") or "study", doc, path, os.path.dirname(path),
                 recipe if cfg is not None else None, ds, cfg)


def list_studies(recipes_dir: str = "recipes", outputs_dir: str = "outputs") -> list[dict]:
    """Every study recipe and every outputs/*/quality.json, with whether it has measurements."""
    rows, seen = [], set()
    for r in sorted(glob.glob(os.path.join(recipes_dir, "*.y*ml"))):
        try:
            info = recipe_info(r)
        except Exception:
            continue
        if info["quality_path"] is None:
            continue
        seen.add(info["quality_path"])
        rows.append(_list_row(os.path.splitext(os.path.basename(r))[0], r, info["quality_path"]))
        rows[-1]["project_name"] = info["project_name"]
    for q in sorted(glob.glob(os.path.join(outputs_dir, "*", "quality.json"))):
        if os.path.abspath(q) not in seen:
            rows.append(_list_row(os.path.basename(os.path.dirname(q)), None, os.path.abspath(q)))
    return rows


def _list_row(name: str, recipe: Optional[str], qpath: str) -> dict:
    row = {"study": name, "recipe": recipe, "quality_json": qpath, "images": 0, "variants": 0,
           "measured": False}
    if os.path.exists(qpath):
        try:
            doc = read_json(qpath)
            row.update(images=len(doc.get("images") or []),
                       variants=sum(len(i.get("variants") or []) for i in doc.get("images") or []),
                       measured=bool(doc.get("images")), study=doc.get("study_id") or name)
        except (StudyError, OSError):
            pass
    return row


# ---------------------------------------------------------------------- variants, tiles, levels
def metric_value(variant: dict, metric: str) -> Optional[float]:
    key = METRICS[metric][0]
    v = variant.get("bpp") if key == "bpp" else (variant.get("metrics") or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def has_metric(images: list, metric: str) -> bool:
    return any(metric_value(v, metric) is not None for i in images for v in i["variants"])


def resolution_name(res: Optional[dict]) -> Optional[str]:
    """'r75pct' for a scale of 0.75, 'r720' for a long side of 720 px."""
    if not res:
        return None
    if "long_side" in res:
        return f"r{int(res['long_side'])}"
    if "scale" in res:
        return f"r{round(float(res['scale']) * 100, 2):g}pct"
    return f"r{res.get('width')}x{res.get('height')}"


def crop_name(crop: Optional[dict]) -> Optional[str]:
    return f"c{int(crop['size'])}" if crop else None


def level_of(variant: dict, tile_parameter: str) -> str:
    """The folder level a variant's figures go to: '', 'c800', 'r75pct' or 'c800/r50pct'."""
    parts = []
    if tile_parameter != "crop" and variant.get("crop"):
        parts.append(crop_name(variant["crop"]))
    if tile_parameter != "resolution" and variant.get("resolution"):
        parts.append(resolution_name(variant["resolution"]))
    return "/".join(parts)


def tile_of(variant: dict, tile_parameter: str) -> tuple:
    """Tile key: (format,) or (format, value of the tile parameter)."""
    fmt = variant["format"]
    if tile_parameter == "format":
        return (fmt,)
    if tile_parameter == "crop":
        return (fmt, crop_name(variant.get("crop")) or "full")
    if tile_parameter == "resolution":
        return (fmt, resolution_name(variant.get("resolution")) or "full")
    params = variant.get("params") or {}
    if tile_parameter not in params:
        return (fmt, None)
    return (fmt, params[tile_parameter])


def tile_label(tile: tuple, tile_parameter: str) -> str:
    name = FORMAT_LABELS.get(tile[0], tile[0].upper())
    if len(tile) == 1 or tile[1] is None:
        return name
    if tile_parameter in ("crop", "resolution"):
        return f"{name} {tile[1]}"
    return f"{name} {tile_parameter}={tile[1]}"


def check_tile_parameter(images: list, tile_parameter: str) -> None:
    if tile_parameter in ("format", "crop", "resolution"):
        return
    names = sorted({k for i in images for v in i["variants"] for k in (v.get("params") or {})})
    if tile_parameter not in names:
        raise StudyError(f"tile_parameter '{tile_parameter}' is not a parameter of any variant; "
                         f"use format, crop, resolution or one of {names}")


def _distinct(images: list, key) -> list:
    """``key(variant)`` of every variant of every image, once each, in first-seen order."""
    seen: list = []
    for img in images:
        for v in img["variants"]:
            k = key(v)
            if k not in seen:
                seen.append(k)
    return seen


def study_tiles(images: list, tile_parameter: str) -> list[tuple]:
    """Every tile of the study in a fixed order (format order, then first appearance), so
    positions stay the same in every figure of a set whatever one image lacks."""
    seen = _distinct(images, lambda v: tile_of(v, tile_parameter))
    rank = {f: i for i, f in enumerate(FORMAT_ORDER)}
    return sorted(seen, key=lambda t: (rank.get(t[0], len(rank)), seen.index(t)))


def study_levels(images: list, tile_parameter: str) -> list[str]:
    return _distinct(images, lambda v: level_of(v, tile_parameter))


def is_excluded(image: dict, exclude: list) -> bool:
    src = image.get("source") or ""
    names = {src, os.path.basename(src), os.path.splitext(os.path.basename(src))[0],
             image.get("sha256")}
    return any(e in names for e in exclude)
