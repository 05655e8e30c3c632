"""Data-Juicer's special tokens in text: ``<__dj__image>`` marks where an image belongs and
``<|__dj__eoc|>`` ends a chunk of text and images that belong together."""
from __future__ import annotations

import re

from .base import OpError

IMAGE = "<__dj__image>"
EOC = "<|__dj__eoc|>"
ALL = (IMAGE, "<__dj__audio>", "<__dj__video>", EOC)
_PATTERN = re.compile("|".join(re.escape(t) for t in ALL))


def remove_special_tokens(text: str) -> str:
    return _PATTERN.sub("", text).strip()


def only_special_tokens(text: str) -> str:
    return "".join(_PATTERN.findall(text))


def image_chunks(text: str, n_images: int) -> list[tuple[str, list[int], str]]:
    """``(text without tokens, indices of its images, the chunk as written)`` per chunk.

    With image tokens, chunks are split at ``<|__dj__eoc|>`` and the k-th image token of the
    text is the k-th image of the sample (Data-Juicer's rule; chunks without an image token are
    skipped).  A text without any image token is one chunk holding every image of the sample,
    so plain captions work too."""
    text = text or ""
    if IMAGE not in text:
        return [(remove_special_tokens(text), list(range(n_images)), text)] if n_images else []
    tokens = text.count(IMAGE)
    if tokens > n_images:
        raise OpError(f"the text has {tokens} image tokens but the sample has {n_images} "
                      "image(s)")
    out, offset = [], 0
    for chunk in text.split(EOC):
        count = chunk.count(IMAGE)
        if count == 0:
            continue
        out.append((remove_special_tokens(chunk), list(range(offset, offset + count)), chunk))
        offset += count
    return out
