"""Comparison figures for codec studies: matched-quality / matched-size grids, distortion maps,
fragment choice and an HTML report, from a study's ``quality.json`` (see docs/comparison-figures.md).

``dj-compare`` (``pipelines.cli.compare.main``) and the ``comparison_figure_aggregator`` op both call
``ops.compare.generate.generate_figures``.  Importing this package is cheap.
"""
