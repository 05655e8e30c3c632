"""Drop samples where one image is a heavily degraded copy of another (generation-loss gap)."""
from __future__ import annotations

from ops.base import Filter, OpError
from ops.fields import Fields, StatsKeys
from ops.registry import OPERATORS


@OPERATORS.register_module("generation_loss_gap_filter")
class GenerationLossGapFilter(Filter):
    """Reads ``stats.generation_loss`` (one score per image, written by
    ``generation_loss_scorer_mapper``; run it first).  Scores are only comparable between
    versions of one picture, which is what the images of a near-identical pair are: a sample
    is dropped when its worst image scores more than ``max_gap`` above its best (one side is a
    heavily degraded copy), or, with ``max_score`` below 1, when any image scores above it.
    Samples with fewer than two images are judged by ``max_score`` alone."""

    def __init__(self, max_gap: float = 0.5, max_score: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= max_gap <= 1.0 or not 0.0 < max_score <= 1.0:
            raise ValueError("max_gap must lie in [0, 1] and max_score in (0, 1]")
        self.max_gap, self.max_score = float(max_gap), float(max_score)

    def process_single(self, sample: dict):
        scores = sample[Fields.stats].get(StatsKeys.generation_loss)
        if scores is None:
            raise OpError("no stats.generation_loss: run generation_loss_scorer_mapper first")
        if not scores:
            return True
        worst, best = max(scores), min(scores)
        # the common interval settings apply to each bound, as image_shape_filter's to each side
        if not self.in_range(worst, None, self.max_score):
            return False, (f"generation_loss {worst:.3f} "
                           f"{self.range_miss(None, self.max_score)} (max_score)")
        if not self.in_range(worst - best, None, self.max_gap):
            return False, (f"generation_loss gap {worst - best:.3f} "
                           f"{self.range_miss(None, self.max_gap)} (max_gap; scores "
                           f"{', '.join(f'{s:.3f}' for s in scores)}): a degraded copy")
        return True
