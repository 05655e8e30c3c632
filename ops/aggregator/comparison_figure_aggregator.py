"""Comparison figures and the HTML report at the end of a study recipe (see docs/comparison-figures.md)."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Optional

from ops.base import Aggregator
from ops.registry import OPERATORS


@OPERATORS.register_module("comparison_figure_aggregator")
class ComparisonFigureAggregator(Aggregator):
    """Draw the study's comparison figures under ``<work_dir>/comparison/`` (or
    ``<output_dir>/comparison/``), configured by the recipe's ``comparison:`` section.

    The measurements come from the sweep rows this op sees (the same document
    quality_report_aggregator writes), or from ``quality_json`` when that is set (relative
    paths are under work_dir).  Other arguments are those of dj-compare.
    """

    def __init__(self, crop_size: int = 128, zoom: int = 3, max_columns: int = 4,
                 tile_parameter: Optional[str] = None, source_image: Optional[str] = None,
                 output_dir: Optional[str] = None, quality_json: Optional[str] = None,
                 report: bool = True, threads: int = 1, refine: int = 2, **kwargs):
        super().__init__(**kwargs)
        from ops.compare.generate import Options
        self.options = Options(crop_size=crop_size, zoom=zoom, max_columns=max_columns,
                               tile_parameter=tile_parameter, source_image=source_image,
                               threads=threads, report=report, refine=refine)
        self.options.check()
        self.output_dir = output_dir
        self.quality_json = quality_json
        self._m_rows = None

    def _collector(self):
        if self._m_rows is None:
            from .quality_report_aggregator import QualityReportAggregator
            self._m_rows = QualityReportAggregator()
            self._m_rows.bind(self.context)
        return self._m_rows

    def aggregate_batched(self, samples: list[dict]) -> None:
        if self.quality_json is None:
            self._collector().aggregate_batched(samples)

    def _document(self) -> tuple[dict, str]:
        if self.quality_json is not None:
            path = self.quality_json if os.path.isabs(self.quality_json) else \
                os.path.join(self.context.work_dir, self.quality_json)
            if not os.path.exists(path):
                raise FileNotFoundError(f"{self.name}: quality_json {path} does not exist")
            with open(path) as fh:
                return json.load(fh), path
        collector = self._collector()
        with tempfile.TemporaryDirectory() as tmp:     # the same document, never left behind
            collector.output_path = os.path.join(tmp, "quality.json")
            collector.finalize()
            with open(collector.output_path) as fh:
                doc = json.load(fh)
        return doc, os.path.join(self.context.work_dir, "quality.json")

    def finalize(self) -> dict:
        from ops.compare.generate import generate_figures
        from ops.compare.study import Study, check_quality, parse_comparison
        doc, path = self._document()
        recipe = self.context.recipe or {}
        check_quality(doc, path)
        ds = recipe.get("dataset_path")
        study = Study(doc.get("study_id") or recipe.get("project_name") or "study", doc, path,
                      parse_comparison(recipe.get("comparison")), self.context.work_dir,
                      recipe.get("config_path"), os.path.dirname(ds) if ds else None)
        out = self.output_dir or self.context.work_dir
        if not os.path.isabs(out):
            out = os.path.join(self.context.work_dir, out)
        manifest = generate_figures(study, out, self.options)
        comp = os.path.join(out, "comparison")
        return {"comparison_dir": comp,
                "figure_groups": sum(1 for g in manifest["groups"] if not g.get("skipped")),
                "report": os.path.join(comp, manifest["report"]) if manifest.get("report")
                else None}
