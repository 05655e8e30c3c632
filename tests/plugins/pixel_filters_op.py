"""Test ops: three filters that read pixels through ops.image.io.load_image (the path every
pixel op uses), to check that a fused pass decodes each file once."""
import time

import numpy as np

from ops import OPERATORS, Fields, Filter
from ops.image.io import load_image


class _PixelFilter(Filter):
    key = ""

    def __init__(self, low: float = 0.0, high: float = 1e12, delay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high, self.delay = low, high, delay

    def measure(self, pixels: np.ndarray) -> float:
        raise NotImplementedError

    def compute_stats_single(self, sample):
        time.sleep(self.delay)
        sample[Fields.stats][self.key] = [
            self.measure(np.asarray(load_image(p, "RGB"))) for p in self.image_paths(sample)]
        return sample

    def process_single(self, sample):
        return all(self.low <= v <= self.high for v in sample[Fields.stats][self.key])


@OPERATORS.register_module("pixel_mean_filter")
class PixelMeanFilter(_PixelFilter):
    key = "pixel_mean"

    def measure(self, pixels):
        return float(pixels[::4, ::4].mean())   # a sparse grid: the decode is what counts


@OPERATORS.register_module("pixel_area_filter")
class PixelAreaFilter(_PixelFilter):
    key = "pixel_area"

    def measure(self, pixels):
        return float(pixels.shape[0] * pixels.shape[1])


@OPERATORS.register_module("pixel_std_filter")
class PixelStdFilter(_PixelFilter):
    key = "pixel_std"

    def measure(self, pixels):
        return float(pixels[::4, ::4].std())
