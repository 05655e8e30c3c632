"""Collect the rows of image_codec_sweep_mapper into one self-describing quality.json, with
the study's matched-quality aggregation, setting statistics and BD-rates (also as CSV)."""
from __future__ import annotations

import json
import os
from typing import Optional

from ops.base import Aggregator
from ops.compare.quality_doc import QUALITY_DOCUMENT, QualityCollector
from ops.registry import OPERATORS


@OPERATORS.register_module("quality_report_aggregator")
class QualityReportAggregator(Aggregator):
    """Write ``quality.json`` (schema ``imgjuicer.quality/2``, docs/codec-studies.md): study
    id, tool versions, metric definitions, per source image every variant (format, setting,
    encoder params, crop / resolution / fragment, bytes, bpp, metrics, timings, colour
    profile), and an ``analysis`` section: per-image matched-quality bpp at ``quality_levels``
    of SSIMULACRA2 aggregated over images, statistics per format and setting, and BD-rates
    against ``baseline``; the three tables also go to CSV files next to quality.json.  The
    document is handed in memory to later aggregators of the run (comparison figures).

    output_path: file name; relative paths are under the run's work_dir.
    study_id: overrides the study id the sweep rows carry.
    baseline: format (or curve label, e.g. "AVIF speed=6") the BD-rates are measured against;
        when the study lacks it, the first curve.
    quality_levels: SSIMULACRA2 values at which each image's bpp is interpolated.
    interpolation: pchip (monotone cubic) or linear (between the two bracketing settings).
    bootstrap: resamples of the images for the 95 % intervals (0 = none).
    """

    def __init__(self, output_path: str = "quality.json", study_id: Optional[str] = None,
                 baseline: str = "jpeg",
                 quality_levels: list[float] = [50, 60, 70, 80, 90],  # noqa: B006
                 interpolation: str = "pchip", bootstrap: int = 1000, csv: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        if not output_path:
            raise ValueError("output_path must not be empty")
        if interpolation not in ("pchip", "linear"):
            raise ValueError(f"interpolation must be pchip or linear, got {interpolation!r}")
        if not quality_levels:
            raise ValueError("quality_levels must not be empty")
        if bootstrap < 0:
            raise ValueError("bootstrap must be >= 0")
        self.output_path = output_path
        self.study_id = study_id
        self.baseline = baseline
        self.quality_levels = [float(x) for x in quality_levels]
        self.interpolation = interpolation
        self.bootstrap = bootstrap
        self.csv = csv
        self._collector = QualityCollector()

    def aggregate_batched(self, samples: list[dict]) -> None:
        self._collector.add(samples)

    def _path(self) -> str:
        if os.path.isabs(self.output_path):
            return self.output_path
        return os.path.join(self.context.work_dir, self.output_path)

    def finalize(self) -> dict:
        from ops.compare.analysis import csv_tables
        doc = self._collector.document(self.study_id, self.context.config_path, self.baseline,
                                       self.quality_levels, self.interpolation, self.bootstrap)
        path = self._path()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh, indent=1, allow_nan=False)
        os.replace(tmp, path)
        out = {"quality_json": path, "images": len(doc["images"]),
               "variants": self._collector.rows}
        if self.csv:
            stem = os.path.splitext(path)[0]
            for name, text in csv_tables(doc["analysis"]).items():
                with open(f"{stem}_{name}", "w", newline="") as fh:
                    fh.write(text)
            out["csv"] = [f"{stem}_{n}" for n in csv_tables(doc["analysis"])]
        self.context.documents[QUALITY_DOCUMENT] = {"document": doc, "path": path}
        return out
