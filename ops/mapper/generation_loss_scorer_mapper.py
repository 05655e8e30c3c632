"""Score how far each image is from its original (generation loss) into stats.generation_loss."""
from __future__ import annotations

from typing import Optional

from ops.base import Mapper
from ops.fields import Fields, StatsKeys
from ops.registry import OPERATORS


@OPERATORS.register_module("generation_loss_scorer_mapper")
class GenerationLossScorerMapper(Mapper):
    """Writes ``stats.generation_loss``: one score in (0, 1) per image of the sample (a list),
    higher = further from the original.  Only comparable between versions of one picture.
    ``weights``: a scorer.pt file; default the shipped assets_cache/generation_loss/scorer.pt.
    An unreadable image makes its sample an error (the run goes on)."""

    batched = True
    extra = "scorer"          # torch, numba, threadpoolctl: see ops/extras.py

    def __init__(self, weights: Optional[str] = None, threads: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.weights = weights
        self.threads = threads

    def setup(self) -> None:
        from ops.scorer.weights import Scorer
        self._m_scorer = Scorer(self.weights, device=self.device, threads=self.threads)

    def process_batched(self, samples: list[dict]) -> list[dict]:
        from ops.scorer.features import blas_one_thread
        from ops.scorer.weights import file_features
        k = self._m_scorer.k
        feats, owner, todo = [], [], []
        with blas_one_thread():
            for i, s in enumerate(samples):
                stats = s.setdefault(Fields.stats, {})
                if StatsKeys.generation_loss in stats:
                    continue
                todo.append(i)
                paths = self.image_paths(s, none_ok=True)
                for p in paths:
                    feats.append(file_features(p, k))   # ImageLoadError -> this sample errors
                    owner.append(i)
        # nothing is written before every image of the batch decoded (the framework retries
        # a failing batch row by row, and must find the other rows untouched)
        scores = {i: [] for i in todo}
        for i, score in zip(owner, self._m_scorer.score_features(feats)):
            scores[i].append(float(score))
        for i, values in scores.items():
            samples[i][Fields.stats][StatsKeys.generation_loss] = values
        return samples
