"""Write each image's header facts to meta (no pixel is decoded)."""
from __future__ import annotations

from ops.base import Mapper
from ops.fields import Fields, MetaKeys
from ops.image.io import DEFAULT_MAX_PIXELS, check_max_pixels, read_header
from ops.registry import OPERATORS


@OPERATORS.register_module("image_metadata_mapper")
class ImageMetadataMapper(Mapper):
    """``meta.image_metadata``: one dict per image with width, height (as displayed),
    raw_width, raw_height, format, mode, frames, orientation (EXIF, 1 if none), file_size."""

    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS, **kwargs):
        super().__init__(**kwargs)
        self.max_pixels = check_max_pixels(max_pixels)

    def process_single(self, sample: dict) -> dict:
        paths = self.image_paths(sample, none_ok=True)
        infos = []
        for p in paths:
            d = read_header(p, self.max_pixels).as_dict()
            d.pop("path")
            infos.append(d)
        sample[Fields.meta][MetaKeys.image_metadata] = infos
        return sample
