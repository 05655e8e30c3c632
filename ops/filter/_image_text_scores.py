"""What the two image-text score filters (CLIP similarity, BLIP matching) share: how scores of
one sample's chunks are reduced to one value, and the check of their common settings."""
from __future__ import annotations

REDUCE = {"avg": lambda v: sum(v) / len(v), "max": max, "min": min}


def check_score_settings(min_score: float, max_score: float, lowest: float, reduce_mode: str,
                         any_or_all: str, model_batch_size: int) -> None:
    """Raise ValueError naming the first setting out of range (scores lie in [lowest, 1])."""
    if not lowest <= min_score <= max_score <= 1.0:
        raise ValueError(f"need {lowest:g} <= min_score <= max_score <= 1, got [{min_score}, "
                         f"{max_score}]")
    if reduce_mode not in REDUCE:
        raise ValueError(f"reduce_mode must be one of {sorted(REDUCE)}, got {reduce_mode!r}")
    if any_or_all not in ("any", "all"):
        raise ValueError(f"any_or_all must be 'any' or 'all', got {any_or_all!r}")
    if model_batch_size < 1:
        raise ValueError("model_batch_size must be >= 1")
