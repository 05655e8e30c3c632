"""Comparison figures for codec studies: matched-quality / matched-size grids, distortion maps,
fragment choice, BD-rate and matched-quality analysis and an interactive HTML report, from a
study's quality document (docs/comparison-figures.md, docs/codec-studies.md).

``dj-compare`` (``pipelines.cli.compare.main``) and the ``comparison_figure_aggregator`` op both call
``ops.compare.generate.generate_figures`` with ``ops.compare.options.FigureOptions``.
Importing this package is cheap.
"""
