"""Where the two images of a pair sample live: two columns, or one list of two (Data-Juicer)."""
from __future__ import annotations

from typing import Optional

from .base import OpError

PAIR_COLUMNS = ("image_path1", "image_path2")


def _one_path(value, key: str) -> str:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise OpError(f"column '{key}' must hold one image path, got {len(value)}")
        value = value[0]
    if not isinstance(value, str) or not value:
        raise OpError(f"sample has no image path in column '{key}'")
    return value


def check_pair_keys(image_keys) -> Optional[tuple[str, str]]:
    """Validate an op's ``image_keys`` parameter (None: find the pair in each sample)."""
    if image_keys is None:
        return None
    if isinstance(image_keys, str) or len(image_keys) != 2:
        raise ValueError(f"image_keys must name two columns, got {image_keys!r}")
    return tuple(image_keys)


def pair_paths(sample: dict, image_keys: Optional[tuple], image_key: str) -> tuple[str, str]:
    """The two image paths of a pair sample.

    ``image_keys`` given: those two columns (each a path, or a one-item list).  None: the
    columns ``image_path1`` / ``image_path2`` when the sample has them, else Data-Juicer's
    layout, the list column ``image_key`` (``images: [a, b]``) holding exactly two paths."""
    if image_keys is not None:
        return _one_path(sample.get(image_keys[0]), image_keys[0]), \
            _one_path(sample.get(image_keys[1]), image_keys[1])
    if all(sample.get(k) is not None for k in PAIR_COLUMNS):
        return _one_path(sample[PAIR_COLUMNS[0]], PAIR_COLUMNS[0]), \
            _one_path(sample[PAIR_COLUMNS[1]], PAIR_COLUMNS[1])
    images = sample.get(image_key)
    if images is None:
        raise OpError(f"sample has neither columns '{PAIR_COLUMNS[0]}' and '{PAIR_COLUMNS[1]}' "
                      f"nor a list of two images in '{image_key}'")
    if isinstance(images, str) or len(images) != 2:
        n = 1 if isinstance(images, str) else len(images)
        raise OpError(f"column '{image_key}' must hold exactly two images for a pair, got {n}")
    return _one_path(images[0], f"{image_key}[0]"), _one_path(images[1], f"{image_key}[1]")
