"""Comparison figures and the interactive HTML report at the end of a study recipe (see
docs/comparison-figures.md)."""
from __future__ import annotations

import json
import os
from typing import Optional

from ops.base import Aggregator
from ops.compare.options import OPTION_NAMES, FigureOptions, with_option_parameters
from ops.registry import OPERATORS


@OPERATORS.register_module("comparison_figure_aggregator")
class ComparisonFigureAggregator(Aggregator):
    """Draw the study's comparison figures and report under ``<work_dir>/comparison/`` (or
    ``<output_dir>/comparison/``).

    The figure settings (targets, tile_parameter, exclude_images, crop_size, zoom,
    max_columns, source_image, threads, refine, interpolation, report, index_dir) are this
    op's own parameters; dj-compare takes the same ones from the recipe and its flags.  The
    measurements are the quality document quality_report_aggregator built earlier in the same
    run (handed over in memory), else one built here from the sweep rows this op sees, or
    ``quality_json`` when that is set (relative paths are under work_dir).
    """

    @with_option_parameters
    def __init__(self, output_dir: Optional[str] = None, quality_json: Optional[str] = None,
                 **kwargs):
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in OPTION_NAMES}
        super().__init__(**kwargs)
        self.options = FigureOptions(**own)
        self.output_dir = output_dir
        self.quality_json = quality_json
        self._m_rows = None

    def _collector(self):
        if self._m_rows is None:
            from ops.compare.quality_doc import QualityCollector
            self._m_rows = QualityCollector()
        return self._m_rows

    def aggregate_batched(self, samples: list[dict]) -> None:
        if self.quality_json is None:
            self._collector().add(samples)

    def _document(self) -> tuple[dict, str]:
        from ops.compare.quality_doc import QUALITY_DOCUMENT
        if self.quality_json is not None:
            path = self.quality_json if os.path.isabs(self.quality_json) else \
                os.path.join(self.context.work_dir, self.quality_json)
            if not os.path.exists(path):
                raise FileNotFoundError(f"{self.name}: quality_json {path} does not exist")
            with open(path) as fh:
                return json.load(fh), path
        handed = self.context.documents.get(QUALITY_DOCUMENT)
        if handed is not None:                       # quality_report_aggregator ran first
            return handed["document"], handed["path"]
        doc = self._collector().document(recipe_path=self.context.config_path)
        return doc, os.path.join(self.context.work_dir, "quality.json")

    def finalize(self) -> dict:
        from ops.compare.generate import generate_figures
        from ops.compare.study import Study, check_quality
        doc, path = self._document()
        check_quality(doc, path)
        study = Study(doc.get("study_id") or "study", doc, path, self.context.work_dir,
                      self.context.config_path, self.context.dataset_dir)
        out = self.output_dir or self.context.work_dir
        if not os.path.isabs(out):
            out = os.path.join(self.context.work_dir, out)
        manifest = generate_figures(study, out, self.options)
        comp = os.path.join(out, "comparison")
        result = {"comparison_dir": comp,
                  "figure_groups": sum(1 for g in manifest["groups"] if not g.get("skipped")),
                  "report": os.path.join(comp, manifest["report"]) if manifest.get("report")
                  else None}
        if manifest.get("report") and self.options.index_dir:
            from ops.compare.interactive import write_index
            result["index"] = write_index(self.options.index_dir)
        return result
