"""The quality document of a codec study (quality.json), built in one place: rows of
image_codec_sweep_mapper in, the self-describing document (with its analysis section) out.
quality_report_aggregator writes it; comparison_figure_aggregator receives it in memory."""
from __future__ import annotations

import math
import platform
import time
from typing import Optional

from ops.fields import Fields

from .study import QUALITY_SCHEMA

SCHEMA = QUALITY_SCHEMA
QUALITY_DOCUMENT = "quality"        # key of RunContext.documents
VARIANT_KEY = "codec_variant"
MEASURE_KEYS = ("bytes", "bpp")
TIMING_KEYS = ("encode_seconds", "decode_seconds", "metric_seconds")
METRIC_INFO = {
    "psnr": ("dB", "PSNR over R, G, B (MSE of all channels), peak 255; null = identical"),
    "psnr_y": ("dB", "PSNR of BT.601 luma, peak 255; null = identical"),
    "ssim": ("", "SSIM (Wang 2004: Gaussian sigma 1.5, 11x11, K1 .01, K2 .03, range 255), "
                 "mean of the R, G, B channel SSIMs"),
    "ssim_y": ("", "SSIM as above on BT.601 luma"),
    "butteraugli_max": ("", "Butteraugli max-norm distance (libjxl, intensity target 80)"),
    "butteraugli_p3": ("", "Butteraugli 3-norm distance (libjxl, intensity target 80)"),
    "ssimulacra2": ("", "SSIMULACRA 2.1 score (100 = identical)"),
}


def _finite(value):
    """JSON has no inf / NaN: write them as null (PSNR of identical images is +inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class QualityCollector:
    """Collects sweep rows (any order, any batching) and builds the quality document."""

    def __init__(self):
        self._images: dict = {}
        self._studies: set = set()
        self._tools: list = []
        self.rows = 0

    def add(self, samples: list[dict]) -> None:
        for s in samples:
            meta = s.get(Fields.meta) or {}
            v = meta.get(VARIANT_KEY)
            if v is None:
                continue             # not a sweep row: nothing to report
            stats = s.get(Fields.stats) or {}
            self.rows += 1
            self._studies.add(v.get("study_id"))
            if v.get("tools") not in self._tools:
                self._tools.append(v.get("tools"))
            src = v["source"]
            img = self._images.setdefault((src["sha256"], src["path"]), {
                "source": src["path"], "sha256": src["sha256"], "width": src["width"],
                "height": src["height"], "fragment": src.get("fragment"),
                "icc": src.get("icc"), "colour": src.get("colour"),
                "sample_id": str(s.get(Fields.id, "")).rsplit("/", 1)[0], "variants": []})
            metric_keys = v.get("metrics") or []
            img["variants"].append({
                "id": s.get(Fields.id),
                "format": v["format"],
                "setting": v["setting"],
                "params": v["params"],
                "crop": v.get("crop"),
                "resolution": v.get("resolution"),
                "fragment": v.get("fragment"),
                "width": v["width"], "height": v["height"],
                **{k: stats.get(k) for k in MEASURE_KEYS},
                "metrics": {k: stats.get(k) for k in metric_keys},
                "fragment_metrics": stats.get("fragment_metrics"),
                "timings": {k: stats.get(k) for k in TIMING_KEYS},
                "distmap": v.get("distmap"),
                "cached": bool(v.get("cached")),
                **({"icc_kept": stats["icc_kept"]} if "icc_kept" in stats else {}),
            })

    def document(self, study_id: Optional[str] = None, recipe_path: Optional[str] = None,
                 baseline: str = "jpeg", levels=None, interpolation: str = "pchip",
                 bootstrap: int = 1000) -> dict:
        """The quality document, JSON-ready (inf / NaN written as null)."""
        from .analysis import DEFAULT_LEVELS, analyse
        studies = sorted(s for s in self._studies if s is not None)
        study = study_id or (studies[0] if len(studies) == 1 else
                             "+".join(studies) if studies else None)
        images = sorted(self._images.values(), key=lambda d: (d["source"], d["sha256"]))
        metric_keys: list = []
        for img in images:
            img["variants"].sort(key=lambda v: _id_order(v["id"]))
            for v in img["variants"]:
                metric_keys += [k for k in v["metrics"] if k not in metric_keys]
        from ops.image.metrics import HIGHER_IS_BETTER
        doc = {
            "schema": SCHEMA,
            "study_id": study,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "recipe": recipe_path,
            "tools": {"imgjuicer": _own_version(), "python": platform.python_version(),
                      **(self._tools[0] if len(self._tools) == 1 else {"runs": self._tools})},
            "metrics": {k: {"higher_is_better": HIGHER_IS_BETTER.get(k),
                            "unit": METRIC_INFO.get(k, ("", ""))[0],
                            "description": METRIC_INFO.get(k, ("", k))[1]}
                        for k in metric_keys},
            "formats": sorted({v["format"] for i in images for v in i["variants"]}),
            "summary": {"images": len(images), "variants": self.rows},
            "images": images,
        }
        doc["analysis"] = analyse(images, baseline, levels or DEFAULT_LEVELS, interpolation,
                                  bootstrap)
        return _finite(doc)


def _own_version() -> Optional[str]:
    from importlib import metadata
    try:
        return metadata.version("imgjuicer")
    except metadata.PackageNotFoundError:
        return None


def _id_order(sample_id) -> tuple:
    """'12/3' sorts as (12, 3) when the parts are numbers."""
    parts = str(sample_id).split("/")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)
