"""The console scripts, one module each: ``dj-process`` (process.py: run a recipe),
``dj-analyze`` (analyze.py: stats, tables and plots of a recipe without dropping anything),
``dj-compare`` (compare.py: comparison figures of a codec study) and ``dj-score``
(score.py: rank copies of a picture).  pyproject's entry points name the functions here;
``python -m pipelines.cli`` runs dj-process."""
from __future__ import annotations

import sys
from typing import Optional

# The dj-process functions are imported on first use (PEP 562), not here: importing
# process.py with the package would make ``python -m pipelines.cli.process`` find its own
# module already loaded (runpy warns and would run a second copy of it).
_FROM_PROCESS = ("main", "process_main", "run_recipe", "setup_logging")


def __getattr__(name: str):
    if name in _FROM_PROCESS:
        from . import process
        return getattr(process, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["analyze_main", "compare_main", "main", "process_main", "run_recipe", "score_main", "setup_logging"]


def analyze_main(argv: Optional[list[str]] = None) -> int:
    """dj-analyze --config recipe.yaml: see pipelines/analyze.py."""
    from .analyze import main as analyze
    return analyze(argv)


def compare_main(argv: Optional[list[str]] = None) -> int:
    """dj-compare STUDY ...: comparison figures (see ops/compare)."""
    try:
        from .compare import main as compare
    except ImportError as exc:
        print(f"dj-compare: comparison figures are not installed: {exc}", file=sys.stderr)
        return 2
    return compare(sys.argv[1:] if argv is None else argv)


def score_main(argv: Optional[list[str]] = None) -> int:
    """dj-score FILE...: rank copies of an image, best first."""
    from ops.extras import missing_extra_message, missing_modules

    missing = missing_modules("scorer")
    if missing:
        print(f"dj-score: {missing_extra_message('the generation-loss scorer', 'scorer', missing)}",
              file=sys.stderr)
        return 2
    from .score import main as score
    return score(sys.argv[1:] if argv is None else argv)
