"""Collect the rows of image_codec_sweep_mapper into one self-describing quality.json."""
from __future__ import annotations

import json
import math
import os
import platform
import time
from typing import Optional

from ops.base import Aggregator
from ops.fields import Fields
from ops.registry import OPERATORS

SCHEMA = "imgjuicer.quality/1"
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


@OPERATORS.register_module("quality_report_aggregator")
class QualityReportAggregator(Aggregator):
    """Write ``quality.json`` (schema ``imgjuicer.quality/1``, documented in docs/codec-studies.md):
    study id, tool versions, metric definitions, and per source image every variant with its
    format, headline setting, full encoder params, crop / resolution / fragment, bytes, bpp,
    metrics, fragment metrics and timings.

    output_path: file name; relative paths are under the run's work_dir.
    study_id: overrides the study id the sweep rows carry.
    """

    def __init__(self, output_path: str = "quality.json", study_id: Optional[str] = None,
                 **kwargs):
        super().__init__(**kwargs)
        if not output_path:
            raise ValueError("output_path must not be empty")
        self.output_path = output_path
        self.study_id = study_id
        self._images: dict = {}
        self._studies: set = set()
        self._tools: list = []
        self._rows = 0

    def aggregate_batched(self, samples: list[dict]) -> None:
        for s in samples:
            meta = s.get(Fields.meta) or {}
            v = meta.get(VARIANT_KEY)
            if v is None:
                continue             # not a sweep row: nothing to report
            stats = s.get(Fields.stats) or {}
            self._rows += 1
            self._studies.add(v.get("study_id"))
            if v.get("tools") not in self._tools:
                self._tools.append(v.get("tools"))
            src = v["source"]
            img = self._images.setdefault((src["sha256"], src["path"]), {
                "source": src["path"], "sha256": src["sha256"], "width": src["width"],
                "height": src["height"], "fragment": src.get("fragment"),
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
            })

    def _path(self) -> str:
        if os.path.isabs(self.output_path):
            return self.output_path
        return os.path.join(self.context.work_dir, self.output_path)

    def finalize(self) -> dict:
        studies = sorted(s for s in self._studies if s is not None)
        study = self.study_id or (studies[0] if len(studies) == 1 else
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
            "recipe": (self.context.recipe or {}).get("config_path"),
            "tools": {"imgjuicer": _own_version(), "python": platform.python_version(),
                      **(self._tools[0] if len(self._tools) == 1 else {"runs": self._tools})},
            "metrics": {k: {"higher_is_better": HIGHER_IS_BETTER.get(k),
                            "unit": METRIC_INFO.get(k, ("", ""))[0],
                            "description": METRIC_INFO.get(k, ("", k))[1]}
                        for k in metric_keys},
            "formats": sorted({v["format"] for i in images for v in i["variants"]}),
            "summary": {"images": len(images), "variants": self._rows},
            "images": images,
        }
        path = self._path()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(_finite(doc), fh, indent=1, allow_nan=False)
        os.replace(tmp, path)
        return {"quality_json": path, "images": len(images), "variants": self._rows}


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
